"""Input and result of the one check pipeline (build → test+coverage → quality) of one
package: ``steps/pipeline.py`` runs it, the ``check_package`` activity wraps it, and the
package build, BUILD_VALIDATION and the lifecycle gate call that activity."""

from __future__ import annotations

from pydantic import Field

from pkgbuilder.config import BuildSettings
from pkgbuilder.models.build import Failure, PackageNode
from pkgbuilder.models.cache_info import PackageHashes
from pkgbuilder.models.common import Model, PackageManager
from pkgbuilder.models.fleet import FleetTask
from pkgbuilder.models.steps import StepResult


class CheckInput(Model):
    """Check one package. The caller says only *what* the package is (``model_written``,
    ``model_changed``), never which rule applies: the rule lives in steps/pipeline.py."""

    workspace_root: str
    package: PackageNode
    package_manager: PackageManager = PackageManager.NPM
    settings: BuildSettings
    log_dir: str | None = None
    # Workspace dependencies that must exist and be built first.
    dependencies: list[PackageNode] = Field(default_factory=list)
    # The package was written by a model (a generation's BUILD_VALIDATION, the lifecycle
    # gate): its tests are required and its scripts run confined.
    model_written: bool = False
    # A fix attempt changed the package: its scripts run confined.
    model_changed: bool = False
    # Build step only (the lifecycle gate's workspace dependencies).
    build_only: bool = False
    # When given, a passing result is stored in the build cache under these hashes in the
    # same activity (the caller gives none once the sources changed since they were hashed).
    cache_hashes: PackageHashes | None = None
    # A `build --fleet` suite's package: checked on a fleet worker, in its own checkout
    # (see activities/fleet.py).
    fleet: FleetTask | None = None


class CheckCacheResult(Model):
    stored: bool = False
    uploaded: bool = False
    warnings: list[str] = Field(default_factory=list)


class CheckResult(Model):
    """Each step that was reached (in order: build, test, quality), what failed, and the
    metrics the report shows."""

    steps: list[StepResult] = Field(default_factory=list)
    failures: list[Failure] = Field(default_factory=list)
    failed_step: str | None = None  # the first step that failed: build, test or quality
    # Test failures testing.failOnError=false let pass: reported, never silently clean.
    tolerated: list[Failure] = Field(default_factory=list)
    build_ok: bool = False
    tests_passed: bool | None = None  # None: no test script ran
    coverage_percent: float | None = None
    coverage_threshold: float | None = None
    lint_score: float | None = None
    type_script_errors: int = 0
    built_by: str | None = None
    cache: CheckCacheResult | None = None  # None: no store was asked for

    @property
    def ok(self) -> bool:
        return not self.failures

    def step(self, name: str) -> StepResult | None:
        return next((s for s in self.steps if s.step == name), None)
