"""Models of the suite builder and the package-build child workflow."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field, field_validator

from pkgbuilder.models.common import Category, Model, PackageManager, check_safe_id


class PackageNode(Model):
    """One workspace package in the dependency graph."""

    name: str
    version: str = "0.0.0"
    path: str  # relative to the workspace root, posix separators
    category: Category = Category.UTILITY
    layer: int = 2
    dependencies: list[str] = Field(default_factory=list)  # workspace packages only
    plan_path: str | None = None  # relative to workspace root
    scripts: list[str] = Field(default_factory=list)  # names of package.json scripts
    private: bool = False
    exists: bool = True  # False when a master plan lists it but no directory exists yet
    order: int = 0  # place in the workspace's (or master plan's) declaration order


class WorkspaceGraph(Model):
    """Result of workspace discovery: packages in a valid topological order."""

    root: str
    package_manager: PackageManager = PackageManager.NPM
    packages: list[PackageNode]
    topological_order: list[str]
    # turbo.json's test task depends on ^test: dependents need their dependencies' tests.
    tests_gate: bool = False

    def by_name(self) -> dict[str, PackageNode]:
        return {p.name: p for p in self.packages}


class FailureType(StrEnum):
    """Typed failures the fix loop consumes."""

    INSTALL = "install"
    BUILD = "build"
    TYPESCRIPT = "typescript"
    LINT = "lint"
    TEST = "test"
    COVERAGE = "coverage"
    DEPENDENCY = "dependency"
    PUBLISH = "publish"


class Failure(Model):
    type: FailureType
    message: str
    command: list[str] = Field(default_factory=list)
    output_tail: str = ""


class PackageStatus(StrEnum):
    PENDING = "pending"
    BUILDING = "building"
    SUCCESS = "success"
    FAILED = "failed"
    BLOCKED = "blocked"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"  # the suite was cancelled before the package finished
    CACHED = "cached"  # every step restored from the build cache; nothing ran


# Statuses after which a package's dependents may start (and that count as success).
DONE_OK_STATUSES = (PackageStatus.SUCCESS, PackageStatus.SKIPPED, PackageStatus.CACHED)


class BuildMetrics(Model):
    """Durations in milliseconds (the seed's units)."""

    build_time: int = 0
    test_time: int = 0
    quality_check_time: int = 0
    publish_time: int = 0
    install_time: int = 0


class QualityMetrics(Model):
    lint_score: float | None = None
    test_coverage: float | None = None  # percent, None when no coverage report was produced
    type_script_errors: int = 0
    passed: bool = False
    coverage_threshold: float | None = None


class TokenUsage(Model):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens
            + other.cache_creation_input_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
        )

    @property
    def total(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_input_tokens
            + self.cache_read_input_tokens
        )


class FixAttempt(Model):
    count: int
    types: list[str]
    agent_prompt_used: str
    fix_duration: int  # ms
    tokens: TokenUsage = Field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    files_changed: list[str] = Field(default_factory=list)
    commit: str | None = None
    succeeded: bool = False
    error: str | None = None
    # package.json scripts the model added, removed or rewrote ("test: 'a' -> 'b'").
    scripts_changed: list[str] = Field(default_factory=list)


class StepSpan(Model):
    """When one step of a package build ran (the report page's timeline)."""

    name: str  # install, build, test, quality, fix-1, publish, …
    start: datetime
    end: datetime
    ok: bool = True


class WaitedFor(Model):
    package_name: str
    wait_time: int  # ms between this package becoming wanted and its dependency finishing


class PublishOutcome(StrEnum):
    PUBLISHED = "published"
    SKIPPED = "skipped"  # identical version already in the registry
    DRY_RUN = "dry-run"
    NOT_ATTEMPTED = "not-attempted"
    FAILED = "failed"


class InstallSummary(Model):
    """The suite's one workspace install: which binary ran it, how long, how it ended."""

    ok: bool
    skipped: bool = False  # the install stamp matched, or the user's own install is current
    reason: str | None = None  # why it was skipped, e.g. "installed by npm (... matches ...)"
    tool: str | None = None  # e.g. "pnpm 9.15.9 from tool cache"
    duration_ms: int = 0
    failure: Failure | None = None  # one typed install failure with the output's tail
    log_path: str | None = None


class PackageBuildReport(Model):
    """The seed's PackageBuildReport, plus status values pkgbuilder adds."""

    package_name: str
    version: str = "0.0.0"
    workflow_id: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration: int = 0  # ms
    build_metrics: BuildMetrics = Field(default_factory=BuildMetrics)
    quality: QualityMetrics = Field(default_factory=QualityMetrics)
    fix_attempts: list[FixAttempt] = Field(default_factory=list)
    status: PackageStatus = PackageStatus.PENDING
    error: str | None = None
    failures: list[Failure] = Field(default_factory=list)
    failed_phase: str | None = None
    dependencies: list[str] = Field(default_factory=list)
    waited_for: list[WaitedFor] = Field(default_factory=list)
    blocked_by: list[str] = Field(default_factory=list)
    publish: PublishOutcome = PublishOutcome.NOT_ATTEMPTED
    publish_detail: str | None = None  # one sentence: what was (or would be) published
    tokens: TokenUsage = Field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    category: Category | None = None
    steps: list[StepSpan] = Field(default_factory=list)  # in the order they ran
    # None: the package has no test script (or never got to its tests).
    tests_passed: bool | None = None
    cache: CacheInfo | None = None
    built_by: str | None = None  # pid@host of the worker whose build step ran it


class PackageBuildInput(Model):
    """Input of PackageBuildWorkflow (one argument, no secrets)."""

    build_id: str
    package: PackageNode
    # The workspace packages it depends on (to verify they exist and are built).
    dependency_nodes: list[PackageNode] = Field(default_factory=list)
    workspace_root: str
    package_manager: PackageManager = PackageManager.NPM
    config: BuildSettings
    report_date: str | None = None  # YYYY-MM-DD; defaults to the child's start date
    waited_for: list[WaitedFor] = Field(default_factory=list)
    # Set by the suite once it ran the workspace install; a standalone child installs itself.
    workspace_installed: bool = False
    search_attributes: bool = False
    # The suite's top package (config suitePackage) is published by the suite in COMPLETE.
    defer_publish: bool = False
    # Set by ContinuousBuilderWorkflow: the child signals `build_finished` to this workflow
    # id when it ends (the orchestrator may have continued-as-new since it started the child).
    notify_workflow_id: str | None = None
    # Build cache: the task hashes the suite computed (it already looked them up and they
    # missed); None when the child must look its package up itself (standalone children).
    cache_hashes: PackageHashes | None = None
    cache_miss_reason: str | None = None
    # Set in a `build --fleet` suite: the package steps run on a fleet worker's checkout.
    fleet: FleetTask | None = None

    _safe_build_id = field_validator("build_id")(check_safe_id)


class PackageBuildResult(Model):
    package_name: str
    success: bool
    status: PackageStatus
    failed_phase: str | None = None
    error: str | None = None
    report: PackageBuildReport
    report_path: str | None = None
    # The build step succeeded (a failure was in tests, quality or publish): under the
    # "build" failure policy dependents may still build.
    build_succeeded: bool = False


class SuitePhase(StrEnum):
    INITIALIZE = "INITIALIZE"
    PLAN = "PLAN"
    BUILD = "BUILD"
    VERIFY = "VERIFY"
    COMPLETE = "COMPLETE"
    DONE = "DONE"


class SuiteBuildInput(Model):
    build_id: str
    workspace_root: str
    plan_path: str | None = None
    only: list[str] = Field(default_factory=list)
    config: BuildSettings
    search_attributes: bool = False
    # `build --fleet`: package steps go to fleet workers at this checkout's commit.
    fleet: FleetSpec | None = None

    _safe_build_id = field_validator("build_id")(check_safe_id)


class PackageState(Model):
    """Live state of one package inside the suite (query result)."""

    name: str
    version: str = "0.0.0"
    category: Category
    dependencies: list[str]
    status: PackageStatus = PackageStatus.PENDING
    # Set when its child workflow starts: a package that never started has none.
    workflow_id: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    error: str | None = None
    blocked_by: list[str] = Field(default_factory=list)


class SuiteState(Model):
    build_id: str
    phase: SuitePhase = SuitePhase.INITIALIZE
    workspace_root: str = ""
    packages: list[PackageState] = Field(default_factory=list)
    active: list[str] = Field(default_factory=list)
    max_concurrent: int = 4
    verify_passed: bool | None = None
    verify_output: str | None = None
    error: str | None = None
    install: InstallSummary | None = None
    cache_warnings: list[str] = Field(default_factory=list)


class BuildReport(Model):
    """The seed's suite-level BuildReport plus blocked/skipped counts."""

    build_id: str
    timestamp: datetime
    workspace_root: str = ""
    total_packages: int
    successful: int
    failed: int
    blocked: int = 0
    skipped: int = 0
    cancelled: int = 0
    cached: int = 0
    total_duration: int  # ms
    total_fix_attempts: int = 0
    slowest_packages: list[PackageBuildReport] = Field(default_factory=list)
    most_fix_attempts: list[PackageBuildReport] = Field(default_factory=list)
    total_wait_time: int = 0
    package_reports: list[PackageBuildReport] = Field(default_factory=list)
    verify_passed: bool | None = None
    suite_package_published: PublishOutcome = PublishOutcome.NOT_ATTEMPTED
    summary_path: str | None = None
    tokens: TokenUsage = Field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    error: str | None = None
    install: InstallSummary | None = None  # the workspace install (time not in waits)
    cache_warnings: list[str] = Field(default_factory=list)


# BuildSettings lives in config.py (it is the serialisable part of the configuration).
from pkgbuilder.config import BuildSettings  # noqa: E402
from pkgbuilder.models.cache_info import CacheInfo, PackageHashes  # noqa: E402
from pkgbuilder.models.fleet import FleetSpec, FleetTask  # noqa: E402

PackageBuildReport.model_rebuild()
PackageBuildInput.model_rebuild()
BuildReport.model_rebuild()
SuiteBuildInput.model_rebuild()
