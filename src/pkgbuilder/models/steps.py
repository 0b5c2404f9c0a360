"""Inputs and outputs of the package-build shell activities."""

from __future__ import annotations

from pydantic import Field

from pkgbuilder.config import BuildSettings
from pkgbuilder.models.build import Failure, PackageNode
from pkgbuilder.models.common import Model, PackageManager


class InstallInput(Model):
    workspace_root: str
    package_manager: PackageManager = PackageManager.NPM
    timeout_seconds: int = 1800
    # Install non-frozen (npm install, not npm ci): set by turn-based generation, whose new
    # package makes the workspace lockfile stale.
    update_lockfile: bool = False
    log_dir: str | None = None


class PackageStepInput(Model):
    """One build/test/quality step of one package."""

    workspace_root: str
    package: PackageNode
    package_manager: PackageManager = PackageManager.NPM
    settings: BuildSettings
    log_dir: str | None = None
    # Build only: workspace dependencies that must exist and be built first.
    dependencies: list[PackageNode] = Field(default_factory=list)
    # Quality only: the coverage measured by the test step (None when none was produced).
    coverage_percent: float | None = None
    tests_ran: bool = False
    # Set once a model answer changed the package: its scripts then run sandboxed.
    model_changed: bool = False


class StepResult(Model):
    step: str
    ok: bool
    skipped: bool = False
    duration_ms: int = 0
    failures: list[Failure] = Field(default_factory=list)
    output_tail: str = ""
    commands: list[list[str]] = Field(default_factory=list)
    coverage_percent: float | None = None
    coverage_source: str | None = None
    type_script_errors: int = 0
    lint_score: float | None = None
    detail: str | None = None
    worker: str | None = None  # pid@host of the worker that ran the step (build)


class CommandInput(Model):
    """A suite-level command (VERIFY) run in the workspace root."""

    workspace_root: str
    argv: list[str]
    timeout_seconds: int = 1800
    log_path: str | None = None
    package_manager: PackageManager | None = None  # its resolved binary goes on PATH
