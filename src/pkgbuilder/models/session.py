"""Models of turn-based generation: the workflow's input/result and its activities' I/O.

The state file schema (GenerationContext and its parts) lives in
:mod:`pkgbuilder.session.state` and is re-exported here. Secrets never appear in any of
these; large things (prompts, answers, file contents) travel as file paths + hashes.
"""

from __future__ import annotations

from pydantic import Field

from pkgbuilder.config import BuildSettings
from pkgbuilder.models.build import Failure, PackageNode, TokenUsage
from pkgbuilder.models.common import Category, Model, PackageManager
from pkgbuilder.session.phases.config import ScheduledPhase
from pkgbuilder.session.phases.definitions import GenerationPhase
from pkgbuilder.session.state import (
    CompletedStep,
    FailureRecovery,
    GenerationContext,
    SessionStatus,
    ValidationOutcome,
)

__all__ = [
    "ApplyPhaseInput",
    "ApplyPhaseResult",
    "CompletedStep",
    "FailureRecovery",
    "GenerationContext",
    "GenerationResult",
    "MergeInput",
    "MergeResult",
    "PhasePromptInput",
    "PhasePromptResult",
    "PrepareSessionInput",
    "SaveStateInput",
    "SessionStatus",
    "StepReport",
    "TurnBasedGenerationInput",
    "ValidationOutcome",
    "ValidationTargetInput",
    "ValidationTargetResult",
]


class TurnBasedGenerationInput(Model):
    """Input of TurnBasedGenerationWorkflow (one argument, no secrets).

    Paths are relative to ``workspace_root`` except ``state_dir`` (absolute, resolved by the
    caller from ``GENERATION_STATE_DIR``). ``branch`` defaults to
    ``feat/package-generation-<ms of the session id>``; ``base_branch`` to the branch checked
    out when the session starts. ``resume_from_context`` continues a session: its completed
    phases make no model call.
    """

    session_id: str
    package_name: str
    package_path: str
    plan_path: str
    category: Category
    workspace_root: str
    state_dir: str
    config: BuildSettings
    base_branch: str | None = None
    branch: str | None = None
    merge: bool | None = None  # None: turnBasedGeneration.merge
    # Commit on the branch checked out now instead of a session branch (no merge needed);
    # the suite uses it so concurrent package builds never see HEAD move.
    in_place: bool = False
    dependencies: list[str] = Field(default_factory=list)
    package_manager: PackageManager = PackageManager.NPM
    resume_from_context: GenerationContext | None = None
    search_attributes: bool = False


class StepReport(Model):
    """One line of the result: what a step did and what it cost."""

    phase: GenerationPhase
    step_number: int
    status: str  # "completed" | "skipped" (done in an earlier run) | "failed" | "not-run"
    commit: str | None = None
    files: int = 0
    usage: TokenUsage = Field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    model_calls: int = 0


class GenerationResult(Model):
    """Result of TurnBasedGenerationWorkflow (also what ``pkgbuilder start --json`` prints)."""

    session_id: str
    workflow_id: str
    package_name: str
    package_path: str
    status: SessionStatus
    branch: str
    base_branch: str
    merged: bool = False
    merge_commit: str | None = None
    merge_instructions: str | None = None
    validation: ValidationOutcome | None = None
    steps: list[StepReport] = Field(default_factory=list)
    total_usage: TokenUsage = Field(default_factory=TokenUsage)
    total_cost_usd: float = 0.0
    state_path: str
    error: str | None = None
    failure_recovery: FailureRecovery | None = None


# ---- activities -----------------------------------------------------------------------------


class PrepareSessionInput(Model):
    """Create (or, on resume, re-enter) the session: plan check, branch, first state file."""

    generation: TurnBasedGenerationInput
    workflow_id: str
    phases: list[ScheduledPhase]


class SaveStateInput(Model):
    state_path: str
    context: GenerationContext


class PhasePromptInput(Model):
    """Build one phase's request file from the files on disk (read fresh every time)."""

    context: GenerationContext
    phase: ScheduledPhase
    prompt_file_budget_chars: int
    coverage_target: float
    # BUILD_VALIDATION only: the real failures and the fix attempt (1-based).
    failures: list[Failure] = Field(default_factory=list)
    attempt: int = 0
    max_attempts: int = 0
    # CRITICAL_FIXES only: the stored answer of INTEGRATION_REVIEW.
    review_response_path: str | None = None
    # Only look for the phase's commit; write no request (BUILD_VALIDATION's first look).
    existing_only: bool = False
    # A re-ask (1-based) because the previous answer lacked these required files.
    reask: int = 0
    missing: list[str] = Field(default_factory=list)


class PhasePromptResult(Model):
    """The request file, or (``existing_commit``) the phase's commit already on the branch:
    then no model call is needed (a crash or a lost checkpoint after the commit)."""

    request_path: str = ""
    request_sha256: str = ""
    existing_commit: str | None = None
    existing_files: list[str] = Field(default_factory=list)
    files_included: list[str] = Field(default_factory=list)
    files_omitted: list[str] = Field(default_factory=list)
    prompt_chars: int = 0


class ApplyPhaseInput(Model):
    """Apply a stored answer (if any) and commit exactly the files it touched.

    Without ``response_path`` nothing is applied and the commit records the phase (empty
    unless ``extra_files`` changed). ``fix_attempt`` makes it a BUILD_VALIDATION fix commit.
    """

    workspace_root: str
    package_path: str
    package_name: str
    branch: str
    base_commit: str
    phase: GenerationPhase
    step_number: int
    response_path: str | None = None
    fix_attempt: int | None = None
    fix_types: list[str] = Field(default_factory=list)
    extra_files: list[str] = Field(default_factory=list)  # package-relative, for the message
    request_sha256: str | None = None  # makes a fix commit unique to its request
    # Check the phase's required files (and, for CORE_IMPLEMENTATION, the plan's files).
    plan_path: str | None = None
    # Caps on the answer's file operations (from the fix settings).
    max_files: int = 50
    max_file_bytes: int = 512 * 1024
    max_total_bytes: int = 4 * 1024 * 1024


class ApplyPhaseResult(Model):
    commit: str
    files: list[str] = Field(default_factory=list)  # package-relative paths that changed
    already_applied: bool = False
    summary: str = ""


class ValidationTargetInput(Model):
    """Describe the generated package for the build activities (scripts from package.json)."""

    workspace_root: str
    package_path: str
    package_name: str
    category: Category
    dependencies: list[str] = Field(default_factory=list)


class ValidationTargetResult(Model):
    """The package node to build, or the failures that stop it from being built at all."""

    node: PackageNode | None = None
    install_root: str | None = None
    failures: list[Failure] = Field(default_factory=list)


class MergeInput(Model):
    workspace_root: str
    package_name: str
    package_path: str
    branch: str
    base_branch: str
    base_commit: str
    step_number: int


class MergeResult(Model):
    merge_commit: str
    files: list[str] = Field(default_factory=list)
    already_merged: bool = False
