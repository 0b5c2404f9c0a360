"""Helpers shared by workflows (workflow-safe: no I/O); their policies are in policies.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from pkgbuilder.workflows.policies import (
    FLEET_RETRY,
    SHELL_RETRY,
    check_timeout,
    heartbeat_timeout,
    shell_timeout,
)

with workflow.unsafe.imports_passed_through():
    from pkgbuilder.activities import build as build_acts
    from pkgbuilder.models.build import TokenUsage
    from pkgbuilder.models.checks import CheckInput, CheckResult
    from pkgbuilder.models.steps import StepResult


async def run_shell_step(
    activity: Callable[[Any], Awaitable[StepResult]],
    arg: Any,
    seconds: int,
    heartbeat_seconds: int,
) -> StepResult:
    """Run one shell activity (install, verify) with the house options:
    start-to-close a little over the command's own timeout, a heartbeat timeout so a dead
    worker is noticed quickly, and SHELL_RETRY (infrastructure faults only)."""
    result: StepResult = await workflow.execute_activity(
        activity,
        arg,
        start_to_close_timeout=shell_timeout(seconds),
        heartbeat_timeout=heartbeat_timeout(heartbeat_seconds),
        retry_policy=SHELL_RETRY,
    )
    return result


async def run_check(inp: CheckInput) -> CheckResult:
    """The one check pipeline of a package (build → test+coverage → quality, see
    steps/pipeline.py) as one activity: the package build, BUILD_VALIDATION and the
    lifecycle gate all run their checks through here."""
    fleet = inp.fleet
    result: CheckResult = await workflow.execute_activity(
        build_acts.check_package,
        inp,
        # A fleet suite's checks run on the fleet workers' queue (docs/workers.md).
        task_queue=fleet.task_queue if fleet else None,
        start_to_close_timeout=check_timeout(
            inp.settings, inp.build_only, inp.cache_hashes is not None, fleet is not None
        ),
        heartbeat_timeout=heartbeat_timeout(inp.settings.timeouts.heartbeat_seconds),
        retry_policy=FLEET_RETRY if fleet else SHELL_RETRY,
    )
    return result


def paid_usage(error: BaseException) -> tuple[TokenUsage, float]:
    """Tokens and cost a failed model call already paid for: the LLM activity puts them into
    its error's details (``{"usage": ..., "costUsd": ...}``). Accepts the ActivityError or
    its ApplicationError cause."""
    cause = error.cause if isinstance(error, ActivityError) else error
    if isinstance(cause, ApplicationError):
        for detail in cause.details or ():
            if isinstance(detail, dict) and "usage" in detail:
                return TokenUsage.model_validate(detail["usage"]), float(detail.get("costUsd", 0.0))
    return TokenUsage(), 0.0


def failure_message(e: BaseException) -> str:
    """The message of what really failed: through activity and child-workflow failures down
    to the ``ApplicationError`` a step raised, else the innermost error's text. The one
    helper that turns a failure into the sentence reports and warnings carry."""
    cause: BaseException = e
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause is not None:
        cause = cause.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause)
