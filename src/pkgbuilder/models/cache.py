"""Models of the build cache: task manifests, lookups, restores and saves."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from pkgbuilder.config import BuildSettings
from pkgbuilder.models.build import PackageNode
from pkgbuilder.models.cache_info import CacheInfo, CacheSource, PackageHashes
from pkgbuilder.models.common import Model, PackageManager
from pkgbuilder.models.steps import StepResult


class TaskManifest(Model):
    """Everything one task hash covers (stored next to the cache, see docs/cache.md)."""

    format: int
    package: str
    step: str
    files: dict[str, str] = Field(default_factory=dict)  # path in package → git blob id
    package_json: str = ""
    global_files: dict[str, str] = Field(default_factory=dict)
    lockfile: dict[str, str] = Field(default_factory=dict)
    dependencies: dict[str, str] = Field(default_factory=dict)  # name → build hash
    command: list[str] = Field(default_factory=list)
    runner: str = ""
    node: str = ""
    env: dict[str, str] = Field(default_factory=dict)  # NAME → digest of the value
    outputs: list[str] = Field(default_factory=list)
    settings: dict[str, Any] = Field(default_factory=dict)
    hash: str = ""


class ManifestDiff(Model):
    package: str
    step: str
    old_hash: str
    new_hash: str
    changes: list[str] = Field(default_factory=list)


class CachedSteps(Model):
    """The step results a hit restores (they become the package's report)."""

    build: StepResult
    test: StepResult | None = None  # None: a build-only entry (the lifecycle gate's)
    quality: StepResult | None = None


class ResolveCacheInput(Model):
    """Look up (and restore) many packages at once."""

    workspace_root: str
    packages: list[PackageNode]  # the whole graph (dependency hashes need it)
    names: list[str]  # the packages to look up
    package_manager: PackageManager = PackageManager.NPM
    settings: BuildSettings
    build_id: str
    log_root: str | None = None  # <reports>/<date>/logs/<buildId>; cached logs land there
    build_only: bool = False  # a hit needs the build artifact only (tests are not wanted)


class PackageLookup(Model):
    package: str
    hashes: PackageHashes
    hit: bool = False
    source: CacheSource | None = None
    restore_ms: int = 0
    steps: CachedSteps | None = None
    reason: str | None = None


class ResolveCacheResult(Model):
    lookups: list[PackageLookup] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    hash_ms: int = 0
    restore_ms: int = 0


class SaveCacheInput(Model):
    workspace_root: str
    package: PackageNode
    hashes: PackageHashes
    steps: CachedSteps
    settings: BuildSettings
    log_dir: str | None = None


class SaveCacheResult(Model):
    stored: bool = False
    uploaded: bool = False
    warnings: list[str] = Field(default_factory=list)
    reason: str | None = None


class DryRunPackage(Model):
    name: str
    build_hash: str
    test_hash: str
    cache: str = "miss"  # "local", "remote" or "miss"
    would_run: bool = True
    reason: str | None = None


class DryRunPlan(Model):
    """``pkgbuilder build --dry=json``: one document, nothing ran."""

    dry_run: bool = True
    cache_dir: str
    compared_with: str | None = None  # the build whose manifests explain the misses
    packages: list[DryRunPackage] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


__all__ = ["CacheInfo", "CacheSource", "PackageHashes"]
