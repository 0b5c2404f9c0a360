"""The session state file ``<state dir>/gen-<id>.json`` (the operator guide's fields).

Written atomically (temp file + fsync + rename) after every step, so a crash leaves either
the previous or the next version, never half a file. The workflow's own state is the
authority while it runs; the file is its durable mirror for operators and ``resume``.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from pydantic import Field, ValidationError

from pkgbuilder.errors import UserError
from pkgbuilder.models.build import TokenUsage
from pkgbuilder.models.common import Category, Model
from pkgbuilder.session.phases.config import ScheduledPhase
from pkgbuilder.session.phases.definitions import GenerationPhase
from pkgbuilder.util.atomic import write_json_atomic

STATE_DIR_ENV = "GENERATION_STATE_DIR"
DEFAULT_STATE_DIR = ".generation-state"
SCHEMA_VERSION = 1
SESSION_PREFIX = "gen-"
SESSION_ID = re.compile(r"^gen-\d{10,16}$")


def session_id_at(ms: int) -> str:
    """The session id for an instant, ``gen-<milliseconds since the epoch>``. The callers
    pick the instant and keep it unique where they mint several (the CLI: a branch check;
    a suite: the package's ordinal added; the lifecycle: strictly increasing)."""
    return f"{SESSION_PREFIX}{ms}"


def session_ms(session_id: str) -> int:
    """The milliseconds of a session id (its sort key, its branch suffix)."""
    return int(session_id.removeprefix(SESSION_PREFIX))


class StateFileError(UserError):
    """A state file is missing, unreadable or invalid (one sentence with the fix)."""


class SessionStatus(StrEnum):
    RUNNING = "running"
    FAILED = "failed"
    COMPLETED = "completed"


class CompletedStep(Model):
    """One finished step; ``timestamp`` is epoch milliseconds, as in the seed."""

    phase: GenerationPhase
    step_number: int
    description: str
    files: list[str] = Field(default_factory=list)
    commit: str | None = None
    timestamp: int
    usage: TokenUsage = Field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    model_calls: int = 0
    summary: str = ""  # the model's own summary; later prompts show it
    response_path: str | None = None  # the stored answer ($PKGBUILDER_HOME/llm/responses)


class FailureRecovery(Model):
    """Why the session stopped; ``retryCount`` counts failures of this step in this session."""

    failed_step: int
    phase: GenerationPhase
    error: str
    retry_count: int = 1
    timestamp: int = 0


class ValidationOutcome(Model):
    """What BUILD_VALIDATION really ran and found."""

    passed: bool
    fix_attempts: int = 0
    failure_types: list[str] = Field(default_factory=list)
    message: str = ""
    coverage_percent: float | None = None


class GenerationContext(Model):
    """The state file: everything needed to monitor, resume and account for a session."""

    schema_version: int = SCHEMA_VERSION
    session_id: str
    workflow_id: str
    package_name: str
    package_path: str  # relative to the workspace root
    plan_path: str  # relative to the workspace root
    category: Category
    workspace_root: str
    branch: str
    base_branch: str
    base_commit: str = ""
    status: SessionStatus = SessionStatus.RUNNING
    phases: list[ScheduledPhase]
    current_phase: GenerationPhase | None = None
    current_step_number: int = 0
    completed_steps: list[CompletedStep] = Field(default_factory=list)
    last_successful_commit: str | None = None
    failure_recovery: FailureRecovery | None = None
    total_usage: TokenUsage = Field(default_factory=TokenUsage)
    total_cost_usd: float = 0.0
    validation: ValidationOutcome | None = None
    merge_commit: str | None = None
    merge_instructions: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def completed_phases(self) -> set[GenerationPhase]:
        return {s.phase for s in self.completed_steps}

    def step_of(self, phase: GenerationPhase) -> CompletedStep | None:
        return next((s for s in self.completed_steps if s.phase is phase), None)


def check_session_id(session_id: str) -> str:
    """Reject anything but ``gen-<milliseconds>`` (the id becomes a file name).

    Raises:
        StateFileError: the id has another shape.
    """
    if not SESSION_ID.match(session_id):
        raise StateFileError(
            f"'{session_id}' is not a session id; session ids look like gen-1732198765432 "
            "(see 'pkgbuilder sessions')."
        )
    return session_id


def state_dir(
    workspace_root: Path | str, configured: str | None = None, env: dict[str, str] | None = None
) -> Path:
    """``$GENERATION_STATE_DIR``, else ``turnBasedGeneration.stateDir`` (``configured``), else
    ``.generation-state``; relative paths are relative to the workspace root."""
    env = dict(os.environ) if env is None else env
    chosen = Path(env.get(STATE_DIR_ENV) or configured or DEFAULT_STATE_DIR).expanduser()
    root = Path(workspace_root)
    return (chosen if chosen.is_absolute() else root / chosen).resolve()


def state_path(directory: Path | str, session_id: str) -> Path:
    return Path(directory) / f"{check_session_id(session_id)}.json"


def write_state(path: Path, context: GenerationContext) -> None:
    """Write ``context`` to ``path`` atomically (readers never see a partial file)."""
    write_json_atomic(path, context.to_json_dict())


def read_state(path: Path) -> GenerationContext:
    """Load and validate a state file.

    Raises:
        StateFileError: missing, not JSON, or not a valid state file.
    """
    session = path.stem
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StateFileError(
            f"State file {path} not found; list sessions with 'pkgbuilder sessions' "
            f"(or set {STATE_DIR_ENV} to the directory that holds it)."
        ) from None
    except OSError as e:
        raise StateFileError(f"State file {path} cannot be read: {e.strerror}.") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise StateFileError(
            f"State file {path} is not valid JSON (line {e.lineno}); restore it from a backup "
            f"or start a new session (the branch of {session} keeps the committed work)."
        ) from e
    try:
        context = GenerationContext.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise StateFileError(
            f"State file {path} is invalid at '{loc}': {first['msg']}; fix that field or "
            "start a new session."
        ) from e
    if context.session_id != session:
        raise StateFileError(
            f"State file {path} belongs to session {context.session_id}, not {session}; "
            "rename it back or use the right session id."
        )
    return context


def list_states(directory: Path) -> tuple[list[GenerationContext], list[tuple[Path, str]]]:
    """Every valid session in ``directory`` (newest first) and the files that are not."""
    good: list[GenerationContext] = []
    bad: list[tuple[Path, str]] = []
    if not directory.is_dir():
        return good, bad
    for path in sorted(directory.glob(f"{SESSION_PREFIX}*.json")):
        try:
            good.append(read_state(path))
        except StateFileError as e:
            bad.append((path, str(e)))
    good.sort(key=lambda c: session_ms(c.session_id), reverse=True)
    return good, bad
