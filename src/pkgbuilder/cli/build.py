"""``pkgbuilder build``, ``status`` and ``cancel``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer
from rich.live import Live
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.worker import Worker

from pkgbuilder.cli.common import (
    console,
    out,
    run_async,
    settings_for,
    temporal_client,
    user_errors,
)
from pkgbuilder.cli.progress import LineProgress, state_table, summary_table
from pkgbuilder.cli.publishing import prepare_publishing, publish_overrides, publish_table
from pkgbuilder.config import BuildSettings, ConfigError
from pkgbuilder.errors import UserError
from pkgbuilder.models.build import BuildReport, SuiteBuildInput, SuiteState
from pkgbuilder.models.common import check_safe_id
from pkgbuilder.runtime.client import ensure_search_attributes, has_dedicated_workers
from pkgbuilder.workflows.suite import SuiteBuildWorkflow

USER_ERROR_TYPES = {"WorkspaceError", "ConfigError"}


def suite_workflow_id(build_id: str) -> str:
    return f"suite-{build_id}"


def exit_code_for(report: BuildReport) -> int:
    """0 when everything succeeded or was skipped, 1 when anything failed or was blocked."""
    if report.failed or report.blocked or report.verify_passed is False or report.error:
        return 1
    return 0


async def _follow(
    handle: WorkflowHandle[Any, Any], show: bool, worker: Worker | None = None
) -> BuildReport:
    """Wait for the suite's result, rendering its live state meanwhile.

    ``worker``: this command's in-process worker; should it stop, nothing would ever run
    the suite's next task, so the command ends with a clear error instead of waiting."""
    result_task = asyncio.ensure_future(handle.result())
    # In a terminal the live table is replaced by the summary when the build ends (the
    # summary is the final truth); elsewhere progress goes out as plain lines.
    live = (Live(console=console, refresh_per_second=4, transient=True)
            if show and console.is_terminal else None)
    lines = LineProgress() if show and live is None else None
    with live if live is not None else contextlib.nullcontext():
        while not result_task.done():
            if worker is not None and worker.is_shutdown:
                result_task.cancel()
                raise UserError(
                    "The in-process worker stopped before the build ended; the build is "
                    f"durable: run 'pkgbuilder worker' to finish it, then 'pkgbuilder status "
                    f"{handle.id.removeprefix('suite-')}'."
                )
            if show:
                try:
                    state: SuiteState = await handle.query(
                        SuiteBuildWorkflow.get_state, rpc_timeout=timedelta(seconds=5)
                    )
                    if live is not None and state.packages:
                        live.update(state_table(state))
                    elif lines is not None:
                        for line in lines.lines(state):
                            console.print(line, highlight=False, soft_wrap=True)
                except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
                    pass  # a query can race with the first workflow task; try again
            await asyncio.wait({result_task}, timeout=1.0)
    return await result_task


def _failure_message(err: WorkflowFailureError) -> tuple[str, int]:
    cause: BaseException | None = err.cause
    while cause is not None:
        if isinstance(cause, ApplicationError):
            code = 2 if cause.type in USER_ERROR_TYPES else 1
            return cause.message, code
        cause = getattr(cause, "cause", None)
    return str(err), 1


async def run_build(
    settings: BuildSettings,
    workspace: Path,
    plan: Path | None,
    only: list[str],
    build_id: str,
    as_json: bool,
    detach: bool,
    keep_server: bool = False,
) -> int:
    inp = SuiteBuildInput(
        build_id=build_id,
        workspace_root=str(workspace),
        plan_path=str(plan) if plan else None,
        only=only,
        config=settings,
    )
    async with temporal_client(settings, allow_embedded=not detach,
                               keep_server=keep_server) as (client, embedded):
        inp.search_attributes = await ensure_search_attributes(client, settings.temporal.namespace)
        tq = settings.temporal.task_queue
        need_worker = not detach and (
            embedded or not await has_dedicated_workers(client, settings.temporal.namespace, tq)
        )
        wf_id = suite_workflow_id(build_id)
        try:
            handle = await client.start_workflow(
                SuiteBuildWorkflow.run,
                inp,
                id=wf_id,
                task_queue=tq,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                static_summary=f"pkgbuilder suite {build_id} ({workspace.name})",
            )
        except RPCError as e:
            if "already" in e.message.lower():
                raise UserError(
                    f"A build with id {build_id} is already running; follow it with "
                    f"'pkgbuilder status {build_id}' or choose another --build-id."
                ) from e
            raise
        if not as_json:
            console.print(f"started [bold]{wf_id}[/] on task queue '{tq}'")
        if detach:
            if as_json:
                out.print_json(json.dumps({"buildId": build_id, "workflowId": wf_id}))
            else:
                console.print(f"detached; follow with 'pkgbuilder status {build_id}'")
            return 0
        if need_worker:
            from pkgbuilder.runtime.worker import running_workers

            if not embedded and not as_json:
                console.print("no dedicated worker polls this task queue: running one in-process")
            async with running_workers(client, settings) as worker:
                report = await _wait(handle, as_json, worker)
        else:
            report = await _wait(handle, as_json)
    _print_report(report, as_json)
    console.print(where_to_look(settings, build_id, workspace, embedded and not keep_server),
                  highlight=False, soft_wrap=True)
    return exit_code_for(report)


def workspace_flag(workspace: Path) -> str:
    """`` --workspace DIR`` when a command run here would not find ``workspace``'s home."""
    import os

    from pkgbuilder.cli.common import home_is_explicit
    from pkgbuilder.config import resolve_home

    if home_is_explicit() or os.environ.get("PKGBUILDER_HOME") == str(
            resolve_home(Path.cwd(), env={})):
        return ""
    here = Path.cwd()
    try:
        shown = workspace.relative_to(here).as_posix() or "."
    except ValueError:
        shown = str(workspace)
    return "" if shown == "." else f" --workspace {shown}"


def where_to_look(settings: BuildSettings, build_id: str, workspace: Path,
                  server_stopped: bool) -> str:
    """The last line of a build: the command (or address) that shows it in the UI."""
    from pkgbuilder.cli.common import ui_url
    from pkgbuilder.runtime.client import is_local_address

    flag = workspace_flag(workspace)
    if server_stopped:
        return f"see it in the Temporal UI: pkgbuilder ui {build_id}{flag}"
    if is_local_address(settings.temporal.address):
        return f"Temporal UI: {ui_url(settings, suite_workflow_id(build_id))}"
    return (f"workflow {suite_workflow_id(build_id)} on {settings.temporal.address}; "
            f"summary: pkgbuilder status {build_id}{flag}")


async def _wait(
    handle: WorkflowHandle[Any, Any], as_json: bool, worker: Worker | None = None
) -> BuildReport:
    try:
        return await _follow(handle, show=not as_json, worker=worker)
    except WorkflowFailureError as e:
        message, code = _failure_message(e)
        raise UserError(message, exit_code=code) from e


def _print_report(report: BuildReport, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_json_dict(), indent=2))
        return
    out.print(summary_table(report))
    if (published := publish_table(report)) is not None:
        out.print(published)
    if report.summary_path:
        out.print(f"reports: {Path(report.summary_path).parent}")
    if report.verify_passed is not None:
        out.print("VERIFY passed" if report.verify_passed else "[red]VERIFY failed[/]")


def register(app: typer.Typer) -> None:
    @app.command()
    def build(
        workspace: Path = typer.Argument(Path("."), help="Monorepo root."),
        plan: Path | None = typer.Option(None, help="Master plan markdown (packages + deps)."),
        concurrency: int | None = typer.Option(None, min=1, max=64,
                                               help="maxConcurrentBuilds (default 4)."),
        only: list[str] = typer.Option([], help="Build only these packages (+ their deps)."),
        build_id: str | None = typer.Option(None, help="Build id (default: generated)."),
        as_json: bool = typer.Option(False, "--json", help="Print the suite summary JSON."),
        detach: bool = typer.Option(False, help="Start and return (needs a running server)."),
        config: Path | None = typer.Option(None, help="Config file (default pkgbuilder.toml)."),
        registry: str | None = typer.Option(
            None, help="Publish to this registry URL; 'local' starts the embedded one."),
        dry_run: bool = typer.Option(False, "--dry-run",
                                     help="Pack and report what would be published; publish "
                                          "nothing."),
        keep_server: bool = typer.Option(
            False, "--keep-server",
            help="Leave the embedded server (and its UI) running after the build; stop it "
                 "with 'pkgbuilder ui --stop'."),
    ) -> None:
        """Build every package of WORKSPACE in dependency order, in parallel."""
        if build_id is not None:
            _check_build_id(build_id)
        workspace = workspace.resolve()
        if not workspace.is_dir():
            _fail_now(f"Workspace {workspace} is not a directory.")
        overrides: dict[str, Any] = {}
        if concurrency is not None:
            overrides["maxConcurrentBuilds"] = concurrency
        overrides.update(publish_overrides(registry, dry_run))
        settings = settings_for(workspace, config, overrides)
        if plan is not None:
            plan = plan.resolve()
            if not plan.is_file():
                _fail_now(f"Plan file {plan} does not exist.")
        _prevalidate(workspace, plan, only)
        _validate_sections(settings)
        settings = user_errors(prepare_publishing)(settings, registry)
        bid = build_id or time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        code = run_async(run_build(settings, workspace, plan, only, bid, as_json, detach,
                                        keep_server))
        raise typer.Exit(code)

    @app.command()
    def status(
        build_id: str | None = typer.Argument(None, help="Build id (default: the latest)."),
        as_json: bool = typer.Option(False, "--json"),
        workspace: Path = typer.Option(Path("."), help="Where to read pkgbuilder.toml from."),
    ) -> None:
        """Show the live state of a running suite, or the summary of a finished one."""
        if build_id is not None:
            _check_build_id(build_id)
        settings = settings_for(workspace)
        raise typer.Exit(run_async(_status(settings, build_id, as_json)))

    @app.command()
    def cancel(
        build_id: str = typer.Argument(..., help="Build id."),
        workspace: Path = typer.Option(Path("."), help="Where to read pkgbuilder.toml from."),
    ) -> None:
        """Cancel a running suite (its running package builds are cancelled too)."""
        _check_build_id(build_id)
        settings = settings_for(workspace)
        run_async(_cancel(settings, build_id))


def _fail_now(message: str) -> None:
    from pkgbuilder.cli.common import fail

    fail(message, 2)


def _check_build_id(build_id: str) -> None:
    try:
        check_safe_id(build_id, "build id")
    except ValueError as e:
        _fail_now(str(e))


def _validate_sections(settings: BuildSettings) -> None:
    """Sections kept verbatim in BuildSettings are validated here, before anything starts,
    so a typo is one sentence instead of a silently disabled feature."""
    from pkgbuilder.phases.config import turn_based_config

    try:
        turn_based_config(settings)
    except ConfigError as e:
        _fail_now(str(e))


def _prevalidate(workspace: Path, plan: Path | None, only: list[str]) -> None:
    """Discover locally first so graph errors are one sentence before anything starts."""
    from pkgbuilder.workspace import discover_workspace

    try:
        discover_workspace(workspace, plan, only=only or None)
    except UserError as e:
        _fail_now(str(e))


async def _latest_build_id(client: Client) -> str:
    async for wf in client.list_workflows("WorkflowType = 'SuiteBuildWorkflow'", limit=1):
        return wf.id.removeprefix("suite-")
    raise UserError("No suite builds found; start one with 'pkgbuilder build'.")


async def _status(settings: BuildSettings, build_id: str | None, as_json: bool) -> int:
    async with temporal_client(settings, allow_embedded=True) as (client, _):
        bid = build_id or await _latest_build_id(client)
        handle = client.get_workflow_handle(suite_workflow_id(bid), result_type=BuildReport)
        try:
            desc = await handle.describe()
        except RPCError as e:
            raise UserError(f"No build with id {bid} was found.") from e
        if desc.status == WorkflowExecutionStatus.RUNNING:
            try:
                state: SuiteState = await handle.query(SuiteBuildWorkflow.get_state)
            except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as e:
                raise UserError(f"Build {bid} did not answer the state query: {e}.") from e
            if as_json:
                print(json.dumps(state.to_json_dict(), indent=2))
            else:
                out.print(state_table(state))
            return 0
        if desc.status == WorkflowExecutionStatus.COMPLETED:
            report: BuildReport = await handle.result()
            _print_report(report, as_json)
            return exit_code_for(report)
        status_name = desc.status.name.lower() if desc.status else "unknown"
        if as_json:
            print(json.dumps({"buildId": bid, "status": status_name}))
        else:
            out.print(f"suite {bid} is {status_name}")
        return 1


async def _cancel(settings: BuildSettings, build_id: str) -> int:
    async with temporal_client(settings) as (client, _):
        handle = client.get_workflow_handle(suite_workflow_id(build_id))
        try:
            desc = await handle.describe()
        except RPCError as e:
            raise UserError(f"No build with id {build_id} was found.") from e
        if desc.status != WorkflowExecutionStatus.RUNNING:
            raise UserError(f"Build {build_id} is not running.", exit_code=1)
        await handle.cancel()
        console.print(f"cancellation requested for suite {build_id}")
        return 0


