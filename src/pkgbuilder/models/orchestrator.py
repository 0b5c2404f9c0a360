"""Models of the continuous orchestrator (ContinuousBuilderWorkflow), its queue poller and
the queue sources, plus ``OrchestratorSettings`` (the ``orchestrator`` config section).

Everything here is plain data: it travels in workflow inputs, signals, updates, queries and
activity arguments. No secrets: the MCP bearer token is named by its environment variable
(``tokenEnv``) and read inside the activity that calls the server.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import Field, ValidationError, field_validator

from pkgbuilder.config import BuildSettings, ConfigError
from pkgbuilder.models.build import PackageNode
from pkgbuilder.models.common import Model, PackageManager

DEFAULT_ORCHESTRATOR_ID = "continuous-builder-orchestrator"
DEFAULT_SCHEDULE_ID = "package-queue-poller"
MIN_CONCURRENCY = 1
MAX_CONCURRENCY = 64
# npm caps package names at 214 characters; anything longer is not a package name.
MAX_NAME_LENGTH = 214


class QueueSourceKind(StrEnum):
    SQLITE = "sqlite"
    MCP = "mcp"


class SourceStatus(StrEnum):
    """Statuses written back to the queue source (the seed's MCP values)."""

    QUEUED = "queued"
    PUBLISHED = "published"
    FAILED = "failed"


class McpSourceSettings(Model):
    """The packages API reached through MCP (streamable HTTP)."""

    url: str | None = None
    # Name of the environment variable holding the bearer token (never the token itself).
    token_env: str = "PACKAGES_MCP_TOKEN"
    get_queue_tool: str = "packages_get_build_queue"
    update_tool: str = "packages_update"
    exclude_blocked: bool = True
    timeout_seconds: float = 30.0


class QueueSourceSettings(Model):
    """Where queued packages come from and where outcomes are written back."""

    kind: QueueSourceKind = QueueSourceKind.SQLITE
    # SQLite file of the embedded queue; default ``$PKGBUILDER_HOME/queue.db`` of the worker.
    queue_db: str | None = None
    mcp: McpSourceSettings = Field(default_factory=McpSourceSettings)


class OrchestratorSettings(Model):
    """The ``[orchestrator]`` section of pkgbuilder.toml (camelCase or snake_case keys)."""

    workflow_id: str = DEFAULT_ORCHESTRATOR_ID
    # Workspace the worker's autoStart builds from (``orchestrator start`` takes --workspace).
    workspace: str | None = None
    # Default: the top-level maxConcurrentBuilds.
    max_concurrent: int | None = None
    max_attempts: int = 3
    # Durable backoff before attempt 2, 3, ...; the last value repeats if attempts outnumber it.
    retry_backoff_seconds: list[float] = Field(default_factory=lambda: [60.0, 120.0, 240.0])
    continue_as_new_after_builds: int = 100
    continue_as_new_after_hours: float = 24.0
    # How many recently completed / failed packages the state keeps (counts are unbounded).
    history_size: int = 50
    source: QueueSourceKind = QueueSourceKind.SQLITE
    queue_db: str | None = None
    mcp: McpSourceSettings = Field(default_factory=McpSourceSettings)
    auto_start: bool = False
    poller_enabled: bool = False
    schedule_id: str = DEFAULT_SCHEDULE_ID
    poll_interval_minutes: float = 30.0
    poll_limit: int = 50

    @field_validator("max_concurrent")
    @classmethod
    def _conc(cls, v: int | None) -> int | None:
        if v is not None and not MIN_CONCURRENCY <= v <= MAX_CONCURRENCY:
            raise ValueError(f"must be between {MIN_CONCURRENCY} and {MAX_CONCURRENCY}")
        return v

    @field_validator("max_attempts")
    @classmethod
    def _attempts(cls, v: int) -> int:
        if not 1 <= v <= 10:
            raise ValueError("must be between 1 and 10")
        return v

    @field_validator("retry_backoff_seconds")
    @classmethod
    def _backoff(cls, v: list[float]) -> list[float]:
        if not v or any(s < 0 for s in v):
            raise ValueError("must be a non-empty list of non-negative numbers of seconds")
        return v

    @field_validator("continue_as_new_after_builds", "history_size", "poll_limit")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be at least 1")
        return v

    @field_validator("continue_as_new_after_hours", "poll_interval_minutes")
    @classmethod
    def _positive_float(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be greater than 0")
        return v

    @classmethod
    def from_build_settings(cls, settings: BuildSettings) -> OrchestratorSettings:
        """Parse ``settings.orchestrator``.

        Raises:
            ConfigError: a value is invalid (one clear sentence naming the key).
        """
        try:
            return cls.model_validate(settings.orchestrator)
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                f"Invalid configuration value at 'orchestrator.{loc}': {first['msg']}."
            ) from e

    def concurrency(self, settings: BuildSettings) -> int:
        return self.max_concurrent or settings.max_concurrent_builds

    def backoff(self, failed_attempts: int) -> timedelta:
        """Wait before the next attempt after ``failed_attempts`` failures (1-based)."""
        idx = min(max(failed_attempts, 1), len(self.retry_backoff_seconds)) - 1
        return timedelta(seconds=self.retry_backoff_seconds[idx])

    def source_settings(self) -> QueueSourceSettings:
        return QueueSourceSettings(kind=self.source, queue_db=self.queue_db, mcp=self.mcp)


def mode_name(is_stopping: bool, is_draining: bool, is_paused: bool) -> str:
    """One word for people: stopping, draining, paused or running."""
    if is_stopping:
        return "stopping"
    if is_draining:
        return "draining"
    return "paused" if is_paused else "running"


# -- what sources deliver ----------------------------------------------------------------


class QueuedPackage(Model):
    """One package a queue source asks to be built (the seed's Package)."""

    name: str
    priority: int = 0
    dependencies: list[str] = Field(default_factory=list)
    # Identifier at the source (the MCP package id); defaults to the name.
    source_id: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        v = v.strip()
        if not v or len(v) > MAX_NAME_LENGTH or any(c.isspace() for c in v):
            raise ValueError("must be a package name (1-214 characters, no whitespace)")
        return v


class NewPackages(Model):
    """Payload of the ``new_packages`` signal."""

    packages: list[QueuedPackage]
    # Where they came from: outcomes are written back there (default: the orchestrator's
    # configured source).
    source: QueueSourceSettings | None = None


class ResolvedPackage(Model):
    """A queued name resolved against the workspace: its node and its workspace deps."""

    node: PackageNode
    dependency_nodes: list[PackageNode] = Field(default_factory=list)


class QueueEntry(QueuedPackage):
    """A package waiting in the orchestrator's queue."""

    seq: int = 0  # arrival order: ties in priority are first come, first served
    attempts: int = 0  # attempts already made
    last_error: str | None = None
    not_before: datetime | None = None  # durable backoff: not started before this time
    resolved: ResolvedPackage | None = None
    source: QueueSourceSettings | None = None


class ActiveBuild(Model):
    entry: QueueEntry
    child_workflow_id: str
    attempt: int
    started_at: datetime


class BuildRecord(Model):
    """A finished package (success, or failure after its last attempt)."""

    name: str
    attempts: int
    child_workflow_id: str | None = None
    finished_at: datetime
    error: str | None = None


class SourceReport(Model):
    """An outcome to write back to the queue source (kept until the write succeeded)."""

    key: str  # unique per outcome (the child workflow id, or name + reason)
    name: str
    source_id: str | None = None
    status: SourceStatus
    error: str | None = None
    source: QueueSourceSettings | None = None  # None: the orchestrator's configured source


class BuildFinished(Model):
    """Payload of the ``build_finished`` signal a PackageBuildWorkflow child sends to the
    orchestrator that started it (which may have continued-as-new since)."""

    child_workflow_id: str
    package_name: str
    success: bool
    error: str | None = None


# -- the entity's state --------------------------------------------------------------------


class OrchestratorState(Model):
    """Everything ContinuousBuilderWorkflow carries across continue-as-new."""

    queue: list[QueueEntry] = Field(default_factory=list)
    active: dict[str, ActiveBuild] = Field(default_factory=dict)  # package name -> build
    package_manager: PackageManager = PackageManager.NPM
    is_paused: bool = False
    is_draining: bool = False
    is_stopping: bool = False
    max_concurrent: int = 4
    completed_count: int = 0
    failed_count: int = 0
    recently_completed: list[BuildRecord] = Field(default_factory=list)
    recently_failed: list[BuildRecord] = Field(default_factory=list)
    pending_reports: list[SourceReport] = Field(default_factory=list)
    builds_since_start: int = 0
    started_at: datetime | None = None
    runs: int = 1
    next_seq: int = 0


class OrchestratorInput(Model):
    """Input of ContinuousBuilderWorkflow; ``state`` is set by continue-as-new."""

    workspace_root: str
    config: BuildSettings
    max_concurrent: int | None = None
    search_attributes: bool = False
    state: OrchestratorState | None = None


class OrchestratorResult(Model):
    """How the orchestrator ended (drained or emergency-stopped) and what it left."""

    reason: str
    remaining_queue: list[QueuedPackage] = Field(default_factory=list)
    cancelled: list[str] = Field(default_factory=list)
    unreported: list[SourceReport] = Field(default_factory=list)
    completed: int = 0
    failed: int = 0
    runs: int = 1


# -- control messages ----------------------------------------------------------------------


class ConcurrencyInput(Model):
    max_concurrent: int


class QueueView(Model):
    name: str
    priority: int
    attempts: int = 0
    last_error: str | None = None
    not_before: datetime | None = None
    waiting_for: list[str] = Field(default_factory=list)


class ActiveView(Model):
    name: str
    child_workflow_id: str
    attempt: int
    started_at: datetime


class OrchestratorStatus(Model):
    """Result of the ``get_state`` query (what ``orchestrator status --json`` prints)."""

    workflow_id: str = ""
    run_id: str = ""
    workspace_root: str = ""
    is_paused: bool = False
    is_draining: bool = False
    is_stopping: bool = False
    max_concurrent: int = 4
    queue: list[QueueView] = Field(default_factory=list)
    active: list[ActiveView] = Field(default_factory=list)
    completed: int = 0
    failed: int = 0
    recently_completed: list[BuildRecord] = Field(default_factory=list)
    recently_failed: list[BuildRecord] = Field(default_factory=list)
    retry_counts: dict[str, int] = Field(default_factory=dict)
    pending_reports: int = 0
    builds_since_start: int = 0
    builds_this_run: int = 0
    started_at: datetime | None = None
    run_started_at: datetime | None = None
    runs: int = 1


class EmergencyStopResult(Model):
    cancelled: list[str] = Field(default_factory=list)
    remaining_queue: list[str] = Field(default_factory=list)


# -- activities ----------------------------------------------------------------------------


class FetchQueueInput(Model):
    source: QueueSourceSettings
    limit: int = 50


class FetchQueueResult(Model):
    packages: list[QueuedPackage] = Field(default_factory=list)
    # Items the source returned that were not valid packages (logged, never built).
    rejected: list[str] = Field(default_factory=list)


class ReportOutcomeInput(Model):
    source: QueueSourceSettings
    report: SourceReport


class ReportOutcomeResult(Model):
    written: bool = True


class ResolvePackagesInput(Model):
    workspace_root: str
    names: list[str]


class ResolvePackagesResult(Model):
    package_manager: PackageManager = PackageManager.NPM
    packages: list[ResolvedPackage] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)


class WatchBuildInput(Model):
    child_workflow_id: str
    package_name: str


class SignalOrchestratorInput(Model):
    orchestrator_id: str
    task_queue: str
    start: OrchestratorInput
    packages: list[QueuedPackage]
    source: QueueSourceSettings | None = None


class SignalOrchestratorResult(Model):
    run_id: str | None = None


class PollerInput(Model):
    """Input of PackageQueuePollerWorkflow (the schedule's action arguments)."""

    orchestrator_id: str
    task_queue: str
    start: OrchestratorInput
    source: QueueSourceSettings
    limit: int = 50


class PollerResult(Model):
    fetched: int = 0
    names: list[str] = Field(default_factory=list)
    rejected: list[str] = Field(default_factory=list)
    signalled: bool = False
