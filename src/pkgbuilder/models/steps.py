"""Inputs and outputs of the package-build shell activities."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from pkgbuilder.models.build import Failure
from pkgbuilder.models.common import Model, PackageManager


class InstallInput(Model):
    workspace_root: str
    package_manager: PackageManager = PackageManager.NPM
    timeout_seconds: int = 1800
    # Install non-frozen (npm install, not npm ci): set by turn-based generation, whose new
    # package makes the workspace lockfile stale.
    update_lockfile: bool = False
    log_dir: str | None = None


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
    # When the step ran (wall clock of the worker; the report's timeline). None for a step
    # that ran no process (skipped, or quality with only the coverage check).
    started_at: datetime | None = None
    ended_at: datetime | None = None


class CommandInput(Model):
    """A suite-level command (VERIFY) run in the workspace root."""

    workspace_root: str
    argv: list[str]
    timeout_seconds: int = 1800
    log_path: str | None = None
    package_manager: PackageManager | None = None  # its resolved binary goes on PATH
