"""The build-cache facts that travel in package reports and workflow inputs (kept apart
from models/cache.py so models/build.py can use them without an import cycle)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from pkgbuilder.models.common import Model


class CacheSource(StrEnum):
    LOCAL = "local"
    REMOTE = "remote"


class PackageHashes(Model):
    """The task hashes of one package (what the workflows carry: hashes, never files)."""

    package: str
    build: str
    test: str
    outputs: list[str] = Field(default_factory=list)
    test_outputs: list[str] = Field(default_factory=list)


class CacheInfo(Model):
    """What the cache did for one package (in its report)."""

    build_hash: str | None = None
    test_hash: str | None = None
    hit: bool = False
    source: CacheSource | None = None
    restore_ms: int = 0
    saved_ms: int = 0  # how long the cached steps took when they ran
    stored: bool = False
    uploaded: bool = False
    reason: str | None = None  # why it ran (a miss) or why it was not stored
    worker: str | None = None
    warnings: list[str] = Field(default_factory=list)
