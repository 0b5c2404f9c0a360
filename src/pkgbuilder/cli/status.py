"""``pkgbuilder status`` and ``cancel``: both resolve the server the same way (booting the
embedded one when nothing answers) and notice within seconds when no live worker serves the
suite, saying which command to run."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import typer
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.service import RPCError

from pkgbuilder.cli.build import (
    UNSERVED_SECONDS,
    _check_build_id,
    exit_code_for,
    print_report,
    workspace_flag,
)
from pkgbuilder.cli.common import console, out, run_async, settings_for, temporal_client
from pkgbuilder.cli.progress import state_table
from pkgbuilder.cli.suites import suite_input, suite_workflow_id, waiting_tasks, written_summary
from pkgbuilder.config import BuildSettings, pkgbuilder_home
from pkgbuilder.errors import UserError
from pkgbuilder.models.build import BuildReport, SuiteState
from pkgbuilder.runtime.client import live_pollers
from pkgbuilder.workflows.policies import STATUS_QUERY_TIMEOUT
from pkgbuilder.workflows.suite import SuiteBuildWorkflow

# How long a live worker may take to answer the state query (it may be busy).
# How long `cancel` waits for the suite to close once a worker runs it.
CANCEL_WAIT_SECONDS = 120.0


def register(app: typer.Typer) -> None:
    @app.command()
    def status(
        build_id: str | None = typer.Argument(None, help="Build id (default: the latest)."),
        as_json: bool = typer.Option(False, "--json"),
        workspace: Path = typer.Option(Path("."), help="Workspace (default: found from here)."),
    ) -> None:
        """Show the live state of a running suite, or the summary of a finished one."""
        if build_id is not None:
            _check_build_id(build_id)
        settings = settings_for(workspace)
        from pkgbuilder.config import find_workspace_root

        root = find_workspace_root(workspace)
        raise typer.Exit(
            run_async(
                _status(settings, build_id, as_json, workspace_flag(workspace.resolve()), root)
            )
        )

    @app.command()
    def cancel(
        build_id: str = typer.Argument(..., help="Build id."),
        workspace: Path = typer.Option(Path("."), help="Workspace (default: found from here)."),
    ) -> None:
        """Cancel a running suite and wait until it closed; prints its summary."""
        _check_build_id(build_id)
        settings = settings_for(workspace)
        raise typer.Exit(run_async(_cancel(settings, build_id)))


async def _latest_build_id(client: Client, workspace: Path | None) -> str:
    """The newest suite of ``workspace`` (a shared server holds other workspaces' too),
    else the newest suite at all."""
    newest: str | None = None
    async for wf in client.list_workflows("WorkflowType = 'SuiteBuildWorkflow'", limit=20):
        newest = newest or wf.id
        inp = await suite_input(client, client.get_workflow_handle(wf.id))
        if workspace is None or (inp is not None and Path(inp.workspace_root) == workspace):
            return wf.id.removeprefix("suite-")
    if newest is not None:
        return newest.removeprefix("suite-")
    raise UserError(
        f"No suite builds found in {pkgbuilder_home() / 'temporal.db'}; start one "
        "with 'pkgbuilder build' (or run this from the workspace, or pass "
        "--workspace)."
    )


async def _describe(handle: WorkflowHandle[Any, Any], bid: str) -> WorkflowExecutionDescription:
    try:
        return await handle.describe()
    except RPCError as e:
        raise UserError(f"No build with id {bid} was found.") from e


def _no_worker(bid: str, task_queue: str, flag: str) -> str:
    return (
        f"Build {bid} is unfinished and no live worker serves task queue '{task_queue}', "
        f"so nothing runs it: resume it with 'pkgbuilder build --resume{flag}' (or start "
        f"'pkgbuilder worker'), or cancel it with 'pkgbuilder cancel {bid}{flag}'."
    )


async def _closed_summary(client: Client, handle: WorkflowHandle[Any, Any]) -> BuildReport | None:
    inp = await suite_input(client, handle)
    return written_summary(inp) if inp is not None else None


async def _status(
    settings: BuildSettings,
    build_id: str | None,
    as_json: bool,
    flag: str,
    workspace_root: Path | None = None,
) -> int:
    async with temporal_client(settings, allow_embedded=True) as (client, embedded):
        bid = build_id or await _latest_build_id(client, workspace_root)
        handle = client.get_workflow_handle(suite_workflow_id(bid), result_type=BuildReport)
        desc = await _describe(handle, bid)
        if desc.status == WorkflowExecutionStatus.RUNNING:
            tq = desc.task_queue
            if embedded or not await live_pollers(client, settings.temporal.namespace, tq):
                message = _no_worker(bid, tq, flag)
                if as_json:
                    print(
                        json.dumps(
                            {
                                "buildId": bid,
                                "status": "running",
                                "liveWorker": False,
                                "message": message,
                            }
                        )
                    )
                else:
                    console.print(message, highlight=False, soft_wrap=True)
                return 1
            try:
                state: SuiteState = await handle.query(
                    SuiteBuildWorkflow.get_state, rpc_timeout=STATUS_QUERY_TIMEOUT
                )
            except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as e:
                raise UserError(
                    f"Build {bid} is running but its worker did not answer within "
                    f"{STATUS_QUERY_TIMEOUT.total_seconds():.0f} s (it may be busy or have just "
                    "stopped); try again, "
                    f"or resume it with 'pkgbuilder build --resume{flag}'.",
                    exit_code=1,
                ) from e
            if as_json:
                print(json.dumps(state.to_json_dict(), indent=2))
            else:
                out.print(state_table(state))
            return 0
        if desc.status == WorkflowExecutionStatus.COMPLETED:
            report: BuildReport = await handle.result()
            print_report(report, as_json)
            return exit_code_for(report)
        status_name = desc.status.name.lower() if desc.status else "unknown"
        summary = await _closed_summary(client, handle)
        if summary is not None:
            print_report(summary, as_json)
        if not as_json:
            console.print(f"suite {bid} is {status_name}", highlight=False)
        elif summary is None:
            print(json.dumps({"buildId": bid, "status": status_name}))
        return 1


async def _cancel(settings: BuildSettings, build_id: str) -> int:
    async with temporal_client(settings, allow_embedded=True) as (client, embedded):
        handle = client.get_workflow_handle(suite_workflow_id(build_id), result_type=BuildReport)
        desc = await _describe(handle, build_id)
        if desc.status != WorkflowExecutionStatus.RUNNING:
            status_name = desc.status.name.lower() if desc.status else "closed"
            raise UserError(f"Build {build_id} is not running (it is {status_name}).", exit_code=1)
        await handle.cancel()
        console.print(f"cancellation requested for suite {build_id}")
        tq = desc.task_queue
        live = not embedded and bool(await live_pollers(client, settings.temporal.namespace, tq))
        async with contextlib.AsyncExitStack() as stack:
            if not live:
                await _run_worker(
                    stack, client, settings, tq, f"no live worker serves task queue '{tq}'"
                )
            closed = await _wait_closed(client, handle, stack, settings, tq, helped=not live)
        if not closed:
            raise UserError(
                f"Cancellation of build {build_id} is requested; it completes when "
                f"a worker runs the suite ('pkgbuilder worker').",
                exit_code=1,
            )
        summary = await _closed_summary(client, handle)
        if summary is not None:
            print_report(summary, False)
        console.print(f"suite {build_id} cancelled", highlight=False)
        return 0


async def _run_worker(
    stack: contextlib.AsyncExitStack,
    client: Client,
    settings: BuildSettings,
    task_queue: str,
    why: str,
) -> None:
    from pkgbuilder.runtime.worker import running_workers

    console.print(
        f"{why}: running one in-process until the cancellation completes",
        highlight=False,
        soft_wrap=True,
    )
    await stack.enter_async_context(running_workers(client, settings, task_queue=task_queue))


async def _wait_closed(
    client: Client,
    handle: WorkflowHandle[Any, Any],
    stack: contextlib.AsyncExitStack,
    settings: BuildSettings,
    task_queue: str,
    helped: bool,
) -> bool:
    """Wait until the suite closed; when its cancellation waits for a worker that never
    picks it up (the one seen polling is gone), run one here."""
    result = asyncio.ensure_future(handle.result())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CANCEL_WAIT_SECONDS
    try:
        while loop.time() < deadline:
            done, _ = await asyncio.wait({result}, timeout=2.0)
            if done:
                return True
            if not helped and await waiting_tasks(client, [handle.id], UNSERVED_SECONDS):
                helped = True
                await _run_worker(
                    stack,
                    client,
                    settings,
                    task_queue,
                    f"the cancellation waited more than {UNSERVED_SECONDS:.0f} "
                    f"s for a worker on task queue '{task_queue}'",
                )
        return False
    finally:
        if not result.done():
            result.cancel()
        elif not result.cancelled():
            result.exception()  # retrieved: a cancelled suite's failure is the expected end
