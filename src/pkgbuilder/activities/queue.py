"""Activities of the continuous orchestrator and its poller: read the queue source, write
outcomes back, resolve queued names in the workspace, watch carried-over builds, and
signal-with-start the orchestrator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError, TerminatedError
from temporalio.exceptions import TimeoutError as WorkflowTimeoutError
from temporalio.service import RPCError, RPCStatusCode

from pkgbuilder.errors import ErrorType, UserError
from pkgbuilder.models.build import PackageBuildResult
from pkgbuilder.models.orchestrator import (
    BuildFinished,
    FetchQueueInput,
    FetchQueueResult,
    NewPackages,
    ReportOutcomeInput,
    ReportOutcomeResult,
    ResolvePackagesInput,
    ResolvePackagesResult,
    SignalOrchestratorInput,
    SignalOrchestratorResult,
    WatchBuildInput,
)
from pkgbuilder.queue.resolve import resolve_names
from pkgbuilder.queue.sources import QueueSourceError, open_source
from pkgbuilder.workspace.discovery import discover_workspace

# Must stay well under the heartbeat timeout the orchestrator sets on watch_package_build.
WATCH_HEARTBEAT_SECONDS = 10.0


def _source_error(e: QueueSourceError) -> ApplicationError:
    return ApplicationError(str(e), type=ErrorType.QueueSourceError, non_retryable=e.permanent)


@activity.defn
async def fetch_build_queue(inp: FetchQueueInput) -> FetchQueueResult:
    """Up to ``limit`` packages waiting at the source (SQLite queue or MCP packages API)."""
    try:
        result = await open_source(inp.source).fetch(inp.limit)
    except QueueSourceError as e:
        raise _source_error(e) from e
    if result.rejected:
        activity.logger.warning("queue source returned invalid packages: %s", result.rejected)
    return result


@activity.defn
async def report_build_outcome(inp: ReportOutcomeInput) -> ReportOutcomeResult:
    """Write ``published`` or ``failed`` + error back to the source (idempotent)."""
    try:
        written = await open_source(inp.source).report(inp.report)
    except QueueSourceError as e:
        raise _source_error(e) from e
    if not written:
        activity.logger.warning(
            "%s is no longer in the queue source; its outcome (%s) was not recorded",
            inp.report.name,
            inp.report.status.value,
        )
    return ReportOutcomeResult(written=written)


@activity.defn
def resolve_queued_packages(inp: ResolvePackagesInput) -> ResolvePackagesResult:
    """Look queued names up in the workspace: their nodes and their workspace dependencies.

    Names that are not packages of the workspace come back in ``missing``.
    """
    try:
        graph = discover_workspace(Path(inp.workspace_root))
    except UserError as e:
        raise ApplicationError(str(e), type=ErrorType.WorkspaceError, non_retryable=True) from e
    return resolve_names(graph, inp.names)


def _failure_text(e: WorkflowFailureError) -> str:
    cause = e.cause
    if isinstance(cause, CancelledError):
        return "the build workflow was cancelled"
    if isinstance(cause, TerminatedError):
        return f"the build workflow was terminated: {cause.message}"
    if isinstance(cause, WorkflowTimeoutError):
        return "the build workflow timed out"
    if isinstance(cause, ApplicationError):
        return f"the build workflow failed: {cause.message}"
    return f"the build workflow failed: {cause}"


@activity.defn
async def watch_package_build(inp: WatchBuildInput) -> BuildFinished:
    """Wait for a build started by an earlier run of the orchestrator and report how it
    ended. Children report back by signal; this covers the ones that end without one
    (terminated, timed out, crashed before their last line)."""
    handle = activity.client().get_workflow_handle(
        inp.child_workflow_id, result_type=PackageBuildResult
    )
    waiter = asyncio.ensure_future(handle.result(follow_runs=True))
    try:
        while not waiter.done():
            await asyncio.wait({waiter}, timeout=WATCH_HEARTBEAT_SECONDS)
            activity.heartbeat()
        result = waiter.result()
    except WorkflowFailureError as e:
        return BuildFinished(
            child_workflow_id=inp.child_workflow_id,
            package_name=inp.package_name,
            success=False,
            error=_failure_text(e),
        )
    except RPCError as e:
        if e.status is not RPCStatusCode.NOT_FOUND:
            raise
        return BuildFinished(
            child_workflow_id=inp.child_workflow_id,
            package_name=inp.package_name,
            success=False,
            error="the build workflow no longer exists",
        )
    finally:
        waiter.cancel()
    return BuildFinished(
        child_workflow_id=inp.child_workflow_id,
        package_name=inp.package_name,
        success=result.success,
        error=result.error,
    )


@activity.defn
async def signal_orchestrator(inp: SignalOrchestratorInput) -> SignalOrchestratorResult:
    """Signal-with-start: deliver packages to the orchestrator, starting it if it is not
    running. (A workflow cannot signal-with-start, so the poller does it here.)"""
    handle = await activity.client().start_workflow(
        "ContinuousBuilderWorkflow",
        inp.start,
        id=inp.orchestrator_id,
        task_queue=inp.task_queue,
        start_signal="new_packages",
        start_signal_args=[NewPackages(packages=inp.packages, source=inp.source)],
    )
    return SignalOrchestratorResult(run_id=handle.result_run_id)


ACTIVITIES: list[Callable[..., Any]] = [
    fetch_build_queue,
    report_build_outcome,
    resolve_queued_packages,
    watch_package_build,
    signal_orchestrator,
]
