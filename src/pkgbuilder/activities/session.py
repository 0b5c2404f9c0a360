"""Turn-based generation activities (main task queue): session setup, phase requests,
applying and committing answers, state checkpoints, the validation target and the merge.

Each is a thin adapter over :mod:`pkgbuilder.session` (setup, requests, apply, target) and is
idempotent: a retry after a crash finds the commit, state or merge it already made. A
:class:`~pkgbuilder.session.errors.SessionError` becomes a non-retryable ``ApplicationError``
of the ``ErrorType`` its class is named after, with its details.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pkgbuilder.config import pkgbuilder_home
from pkgbuilder.errors import ErrorType
from pkgbuilder.models.session import (
    ApplyPhaseInput,
    ApplyPhaseResult,
    MergeInput,
    MergeResult,
    PhasePromptInput,
    PhasePromptResult,
    PrepareSessionInput,
    SaveStateInput,
    ValidationTargetInput,
    ValidationTargetResult,
)
from pkgbuilder.reporting.html import write_generation_page
from pkgbuilder.session.apply import apply_phase, merge_branch
from pkgbuilder.session.errors import SessionError
from pkgbuilder.session.requests import phase_request
from pkgbuilder.session.setup import prepare_session
from pkgbuilder.session.state import GenerationContext, write_state
from pkgbuilder.session.target import validation_target

F = TypeVar("F", bound=Callable[..., Any])


def error_type(e: SessionError) -> ErrorType:
    """The ``ErrorType`` a session error is raised as: the one its class is named after."""
    return ErrorType(type(e).__name__)


def _session_step(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SessionError as e:
            details = () if e.details is None else (e.details,)
            raise ApplicationError(str(e), *details, type=error_type(e), non_retryable=True) from e

    return wrapper  # type: ignore[return-value]


def _heartbeat(detail: str) -> None:
    if activity.in_activity():
        activity.heartbeat(detail)


@activity.defn
@_session_step
def prepare_generation_session(inp: PrepareSessionInput) -> GenerationContext:
    """Check the plan, create (or re-enter) the session branch, write the state file."""
    return prepare_session(inp)


@activity.defn
def save_generation_state(inp: SaveStateInput) -> None:
    """Checkpoint: write the workflow's view of the session atomically (and its page)."""
    write_state(Path(inp.state_path), inp.context)
    write_generation_page(Path(inp.state_path), inp.context)


@activity.defn
@_session_step
def prepare_phase_request(inp: PhasePromptInput) -> PhasePromptResult:
    """Write one phase's request file from the package as it is on disk now."""
    return phase_request(inp, pkgbuilder_home())


@activity.defn
@_session_step
def apply_generation_phase(inp: ApplyPhaseInput) -> ApplyPhaseResult:
    """Apply a phase's answer (all or nothing) and commit exactly the paths it names."""
    return apply_phase(inp, heartbeat=_heartbeat)


@activity.defn
@_session_step
def describe_generated_package(inp: ValidationTargetInput) -> ValidationTargetResult:
    """The generated package as the build activities need it (scripts from package.json),
    or the failure that stops it from being built at all (for the fix loop)."""
    return validation_target(inp)


@activity.defn
@_session_step
def merge_generation_branch(inp: MergeInput) -> MergeResult:
    """MERGE: ``git merge --no-ff`` of the session branch into its base (idempotent)."""
    return merge_branch(inp)


ACTIVITIES: list[Callable[..., Any]] = [
    prepare_generation_session,
    save_generation_state,
    prepare_phase_request,
    apply_generation_phase,
    describe_generated_package,
    merge_generation_branch,
]
