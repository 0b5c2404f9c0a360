"""Models of the publish step: inputs and results of the publish activities.

No model here ever holds a credential: the publish activity reads ``NPM_TOKEN`` from its own
environment, so tokens cannot reach workflow histories.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from pkgbuilder.config import PublishingSettings
from pkgbuilder.models.build import PackageNode, PublishOutcome
from pkgbuilder.models.common import Model, PackageManager


class PackedTarball(Model):
    """A tarball produced by the package manager's ``pack`` for one package."""

    name: str
    version: str
    filename: str
    path: str  # absolute; lives in a temporary directory owned by the activity
    size: int  # bytes
    integrity: str  # sha512 subresource-integrity string, as the registry stores it
    shasum: str  # sha1 hex, the registry's legacy checksum


class PublishedVersion(Model):
    """What the registry knows about ``name@version`` (``dist`` of the packument)."""

    name: str
    version: str
    integrity: str | None = None
    shasum: str | None = None
    tarball: str | None = None  # download URL
    published_at: str | None = None  # ISO time from the packument's ``time`` map


class PublishDecision(StrEnum):
    """What to do with a freshly packed tarball, given the registry's answer."""

    PUBLISH = "publish"  # the version is absent
    IDENTICAL = "identical"  # same version with the same content is already there
    CONFLICT = "conflict"  # same version with different content: the version must be bumped


class PublishCheckInput(Model):
    """Input of ``check_published`` (PLAN phase)."""

    workspace_root: str
    packages: list[PackageNode]
    package_manager: PackageManager = PackageManager.NPM
    registry: str
    timeout_seconds: int = 300


class PackageCheck(Model):
    name: str
    version: str
    decision: PublishDecision | None = None  # None when the package was not checked
    integrity: str | None = None
    note: str | None = None  # why it was not checked, or how identity was established


class PublishCheckResult(Model):
    """Packages whose exact version is already published with identical content."""

    registry: str
    identical: list[str] = Field(default_factory=list)
    checks: list[PackageCheck] = Field(default_factory=list)
    # One sentence when the registry could not be asked (e.g. it needs a token); nothing is
    # skipped then and the publish step reports the problem for each package.
    error: str | None = None


class PublishPackageInput(Model):
    """Input of ``publish_package``: where the package is and how to publish it (no token)."""

    build_id: str
    workspace_root: str
    package: PackageNode
    package_manager: PackageManager = PackageManager.NPM
    registry: str
    publishing: PublishingSettings = Field(default_factory=PublishingSettings)
    timeout_seconds: int = 600


class PublishPackageResult(Model):
    """Outcome of one publish step; ``message`` is one sentence for reports and the CLI."""

    package_name: str
    version: str
    outcome: PublishOutcome
    registry: str
    message: str
    integrity: str | None = None
    shasum: str | None = None
    tarball_filename: str | None = None
    size: int | None = None
    duration_ms: int = 0
    output_tail: str = ""  # npm's output with any credential redacted
