"""``pkgbuilder queue add|list|remove`` (the embedded queue) and ``pkgbuilder orchestrator
start|status|pause|resume|drain|emergency-stop|concurrency|poll-now``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.table import Table
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from pkgbuilder.cli.common import (
    console,
    out,
    run_async,
    settings_for,
    temporal_client,
    user_errors,
)
from pkgbuilder.config import BuildSettings
from pkgbuilder.errors import UserError
from pkgbuilder.models.orchestrator import (
    ConcurrencyInput,
    OrchestratorResult,
    OrchestratorSettings,
    OrchestratorStatus,
    QueuedPackage,
    QueueSourceKind,
    SourceStatus,
    mode_name,
)
from pkgbuilder.queue.sources.base import QueueSourceError, default_queue_db
from pkgbuilder.workflows.common import failure_message
from pkgbuilder.workflows.orchestrator import ContinuousBuilderWorkflow
from pkgbuilder.workflows.policies import UPDATE_TIMEOUT

if TYPE_CHECKING:  # sqlite3 is loaded by the queue commands only, not at every start
    from pkgbuilder.queue.sources.sqlite import SqliteQueue

T = TypeVar("T")

queue_app = typer.Typer(
    name="queue",
    help="Edit the embedded package queue "
    "($PKGBUILDER_HOME/queue.db) the orchestrator's poller reads.",
    no_args_is_help=True,
)
app = typer.Typer(
    name="orchestrator",
    help="Run and control the continuous builder (ContinuousBuilderWorkflow) and its queue poller.",
    no_args_is_help=True,
)

WORKSPACE = typer.Option(Path("."), help="Where to read pkgbuilder.toml from.")
CONFIG = typer.Option(None, help="Config file (default pkgbuilder.toml).")


def _settings(workspace: Path, config: Path | None) -> tuple[BuildSettings, OrchestratorSettings]:
    settings = settings_for(workspace, config)
    return settings, OrchestratorSettings.from_build_settings(settings)


def _embedded_queue(orch: OrchestratorSettings) -> SqliteQueue:
    if orch.source is QueueSourceKind.MCP:
        raise UserError(
            "orchestrator.source is 'mcp': add packages through the packages API; "
            "'pkgbuilder queue' edits the embedded queue only."
        )
    from pkgbuilder.queue.sources.sqlite import SqliteQueue

    return SqliteQueue(Path(orch.queue_db).expanduser() if orch.queue_db else default_queue_db())


def _queue_call(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except QueueSourceError as e:
        raise UserError(str(e)) from e


# -- queue ---------------------------------------------------------------------------------


@queue_app.command("add")
@user_errors
def queue_add(
    name: str = typer.Argument(..., help="Package name, e.g. @acme/retry-policy."),
    priority: int = typer.Option(0, help="Higher builds first."),
    dep: list[str] = typer.Option([], "--dep", help="A package it must wait for (repeat)."),
    workspace: Path = WORKSPACE,
    config: Path | None = CONFIG,
) -> None:
    """Queue a package (again, if it was built before)."""
    _, orch = _settings(workspace, config)
    try:
        pkg = QueuedPackage(name=name, priority=priority, dependencies=dep)
    except ValueError as e:
        raise UserError(f"'{name}' is not a package name (1-214 characters, no spaces).") from e
    queue = _embedded_queue(orch)
    _queue_call(lambda: queue.add(pkg))
    out.print(f"queued {pkg.name} (priority {pkg.priority}) in {queue.path}")
    console.print(
        "the poller delivers it on its next run; 'pkgbuilder orchestrator poll-now' delivers it now"
    )


@queue_app.command("list")
@user_errors
def queue_list(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    status: SourceStatus | None = typer.Option(None, help="Only this status."),
    workspace: Path = WORKSPACE,
    config: Path | None = CONFIG,
) -> None:
    """Show the embedded queue: queued packages first, best first."""
    _, orch = _settings(workspace, config)
    queue = _embedded_queue(orch)
    items = _queue_call(lambda: queue.items(status))
    if as_json:
        out.print_json(json.dumps([i.to_json_dict() for i in items]))
        return
    if not items:
        out.print(f"the queue {queue.path} is empty")
        return
    table = Table("package", "priority", "status", "depends on", "error")
    for i in items:
        table.add_row(
            i.name, str(i.priority), i.status.value, ", ".join(i.dependencies), (i.error or "")[:80]
        )
    out.print(table)


@queue_app.command("remove")
@user_errors
def queue_remove(name: str, workspace: Path = WORKSPACE, config: Path | None = CONFIG) -> None:
    """Delete a package from the embedded queue (a running build is not affected)."""
    _, orch = _settings(workspace, config)
    queue = _embedded_queue(orch)
    if not _queue_call(lambda: queue.remove(name)):
        raise UserError(f"{name} is not in the queue {queue.path}.")
    out.print(f"removed {name}")


# -- orchestrator --------------------------------------------------------------------------


def _not_running(orch: OrchestratorSettings) -> UserError:
    return UserError(
        f"No orchestrator is running (workflow id {orch.workflow_id}); start one "
        "with 'pkgbuilder orchestrator start --workspace PATH'."
    )


async def _control(
    settings: BuildSettings,
    orch: OrchestratorSettings,
    call: Callable[[WorkflowHandle[Any, Any]], Awaitable[T]],
) -> T:
    """Run ``call`` on the orchestrator's handle, errors as one sentence."""
    async with temporal_client(settings) as (client, _):
        handle = client.get_workflow_handle_for(ContinuousBuilderWorkflow.run, orch.workflow_id)
        try:
            return await call(handle)
        except WorkflowUpdateFailedError as e:
            msg = failure_message(e.cause or e)
            raise UserError(msg) from e
        except RPCError as e:
            if e.status is RPCStatusCode.NOT_FOUND:
                raise _not_running(orch) from e
            if e.status is RPCStatusCode.DEADLINE_EXCEEDED:
                raise UserError(
                    f"The orchestrator did not answer; is a worker polling "
                    f"'{settings.temporal.task_queue}' ('pkgbuilder worker')?"
                ) from e
            raise


def _update(name: str, arg: Any = None) -> Callable[[WorkflowHandle[Any, Any]], Awaitable[Any]]:
    async def call(handle: WorkflowHandle[Any, Any]) -> Any:
        update = getattr(ContinuousBuilderWorkflow, name)
        if arg is None:
            return await handle.execute_update(update, rpc_timeout=UPDATE_TIMEOUT)
        return await handle.execute_update(update, arg, rpc_timeout=UPDATE_TIMEOUT)

    return call


def _print_state(state: OrchestratorStatus) -> None:
    mode = mode_name(state.is_stopping, state.is_draining, state.is_paused)
    out.print(
        f"[bold]{state.workflow_id}[/] {mode}: {len(state.active)}/{state.max_concurrent}"
        f" building, {len(state.queue)} queued, {state.completed} completed, "
        f"{state.failed} failed (run {state.runs}, workspace {state.workspace_root})"
    )
    if state.active:
        table = Table("building", "attempt", "since", "child workflow")
        for a in state.active:
            table.add_row(
                a.name, str(a.attempt), a.started_at.strftime("%H:%M:%S"), a.child_workflow_id
            )
        out.print(table)
    if state.queue:
        table = Table("queued", "priority", "attempts", "waiting for", "not before")
        for q in state.queue:
            table.add_row(
                q.name,
                str(q.priority),
                str(q.attempts),
                ", ".join(q.waiting_for),
                q.not_before.strftime("%H:%M:%S") if q.not_before else "",
            )
        out.print(table)
    for f in state.recently_failed[-5:]:
        out.print(f"[red]failed[/] {f.name} after {f.attempts} attempt(s): {f.error}")


@app.command()
@user_errors
def start(
    workspace: Path = typer.Option(..., help="Monorepo root the builds run in."),
    concurrency: int | None = typer.Option(None, min=1, max=64, help="Builds at once."),
    poller: bool = typer.Option(True, help="Create the poll schedule and poll now."),
    config: Path | None = CONFIG,
) -> None:
    """Start the orchestrator (or adjust the running one), ensure the poll schedule."""
    from pkgbuilder.runtime import orchestrator as boot
    from pkgbuilder.runtime.client import ensure_search_attributes, has_dedicated_workers

    workspace = workspace.resolve()
    if not workspace.is_dir():
        raise UserError(f"Workspace {workspace} is not a directory.")
    settings, orch = _settings(workspace, config)

    async def _run() -> None:
        async with temporal_client(settings) as (client, _):
            tq = settings.temporal.task_queue
            if not await has_dedicated_workers(client, settings.temporal.namespace, tq):
                console.print(
                    f"[yellow]warning:[/] no dedicated worker polls '{tq}' yet; "
                    "builds start once 'pkgbuilder worker' runs"
                )
            attrs = await ensure_search_attributes(client, settings.temporal.namespace)
            started = await boot.ensure_orchestrator(
                client, settings, str(workspace), concurrency=concurrency, search_attributes=attrs
            )
            out.print(
                f"orchestrator {orch.workflow_id} " + ("started" if started else "already running")
            )
            if not started:
                await _check_workspace(client, orch, workspace)
            if not started and concurrency is not None:
                await _adjust(client, orch, concurrency)
            if poller:
                how = await boot.ensure_poll_schedule(client, settings, str(workspace), attrs)
                await boot.set_poll_schedule_paused(client, settings, paused=False)
                await boot.trigger_poll(client, settings)
                out.print(
                    f"poll schedule {orch.schedule_id} {how} (every "
                    f"{orch.poll_interval_minutes:g} min); first poll triggered"
                )

    run_async(_run())


async def _check_workspace(client: Client, orch: OrchestratorSettings, workspace: Path) -> None:
    handle = client.get_workflow_handle_for(ContinuousBuilderWorkflow.run, orch.workflow_id)
    state = await handle.query(ContinuousBuilderWorkflow.get_state, rpc_timeout=UPDATE_TIMEOUT)
    if Path(state.workspace_root) != workspace:
        console.print(
            f"[yellow]warning:[/] the running orchestrator builds "
            f"{state.workspace_root}, not {workspace}; drain it and start again to "
            "switch workspaces"
        )


async def _adjust(client: Client, orch: OrchestratorSettings, n: int) -> None:
    handle = client.get_workflow_handle_for(ContinuousBuilderWorkflow.run, orch.workflow_id)
    try:
        await handle.execute_update(
            ContinuousBuilderWorkflow.adjust_concurrency,
            ConcurrencyInput(max_concurrent=n),
            rpc_timeout=UPDATE_TIMEOUT,
        )
    except WorkflowUpdateFailedError as e:
        raise UserError(str(e.cause or e)) from e
    out.print(f"concurrency set to {n}")


@app.command()
@user_errors
def status(
    as_json: bool = typer.Option(False, "--json", help="Print the state as JSON."),
    workspace: Path = WORKSPACE,
    config: Path | None = CONFIG,
) -> None:
    """Show the orchestrator's state (the get_state query); exit 1 when it is not running."""
    settings, orch = _settings(workspace, config)

    async def call(handle: WorkflowHandle[Any, Any]) -> tuple[OrchestratorStatus | None, Any]:
        desc = await handle.describe()
        if desc.status == WorkflowExecutionStatus.RUNNING:
            return await handle.query(ContinuousBuilderWorkflow.get_state), desc
        return None, desc

    state, desc = run_async(_control(settings, orch, call))
    if state is not None:
        if as_json:
            out.print_json(json.dumps({"running": True, **state.to_json_dict()}))
        else:
            _print_state(state)
        return
    ended = desc.status.name if desc.status else "UNKNOWN"
    result = run_async(_last_result(settings, orch)) if ended == "COMPLETED" else None
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "running": False,
                    "workflowId": orch.workflow_id,
                    "status": ended,
                    "result": result.to_json_dict() if result else None,
                }
            )
        )
    else:
        left = (
            f"; {len(result.remaining_queue)} package(s) were left in its queue" if result else ""
        )
        reason = f" ({result.reason})" if result else ""
        out.print(f"orchestrator {orch.workflow_id} is not running: last run {ended}{reason}{left}")
    raise typer.Exit(1)


async def _last_result(
    settings: BuildSettings, orch: OrchestratorSettings
) -> OrchestratorResult | None:
    async def call(handle: WorkflowHandle[Any, Any]) -> OrchestratorResult | None:
        try:
            result: OrchestratorResult = await handle.result(follow_runs=False)
            return result
        except WorkflowFailureError:
            return None

    return await _control(settings, orch, call)


def _simple(update: str, done: Callable[[Any], str]) -> Callable[..., None]:
    @user_errors
    def command(workspace: Path = WORKSPACE, config: Path | None = CONFIG) -> None:
        settings, orch = _settings(workspace, config)
        out.print(done(run_async(_control(settings, orch, _update(update)))))

    return command


app.command("pause", help="Start no new builds (running ones finish).")(
    _simple(
        "pause", lambda s: f"paused; {len(s.active)} build(s) still running, {len(s.queue)} queued"
    )
)
app.command("resume", help="Start builds again after a pause.")(
    _simple("resume", lambda s: f"resumed; {len(s.queue)} queued")
)


@app.command()
@user_errors
def drain(
    wait: bool = typer.Option(False, help="Wait until the orchestrator has completed."),
    workspace: Path = WORKSPACE,
    config: Path | None = CONFIG,
) -> None:
    """Finish the running builds, start nothing new, then complete (for deploys)."""
    settings, orch = _settings(workspace, config)
    state = run_async(_control(settings, orch, _update("drain")))
    out.print(
        f"draining: {len(state.active)} build(s) finishing, {len(state.queue)} "
        "stay queued at the source"
    )
    if wait:
        result = run_async(_last_result(settings, orch))
        if result is not None:
            out.print(
                f"drained: {result.completed} completed, {result.failed} failed, "
                f"{len(result.remaining_queue)} left queued"
            )


@app.command("emergency-stop")
@user_errors
def emergency_stop(workspace: Path = WORKSPACE, config: Path | None = CONFIG) -> None:
    """Cancel every running build and end the orchestrator; pause the poll schedule."""
    from pkgbuilder.runtime.orchestrator import set_poll_schedule_paused

    settings, orch = _settings(workspace, config)
    stopped = run_async(_control(settings, orch, _update("emergency_stop")))

    async def pause_schedule() -> bool:
        async with temporal_client(settings) as (client, _):
            return await set_poll_schedule_paused(client, settings, paused=True)

    paused = run_async(pause_schedule())
    out.print(
        f"stopped: cancelled {len(stopped.cancelled)} build(s)"
        + (f" ({', '.join(stopped.cancelled)})" if stopped.cancelled else "")
        + f"; {len(stopped.remaining_queue)} left queued"
    )
    if paused:
        console.print(
            f"poll schedule {orch.schedule_id} paused so it does not restart the "
            "orchestrator; 'pkgbuilder orchestrator start' resumes both"
        )


@app.command()
@user_errors
def concurrency(
    n: int = typer.Argument(..., min=1, max=64, help="Builds at once (1-64)."),
    workspace: Path = WORKSPACE,
    config: Path | None = CONFIG,
) -> None:
    """Change how many builds run at once (running builds are never cancelled)."""
    settings, orch = _settings(workspace, config)
    state = run_async(
        _control(settings, orch, _update("adjust_concurrency", ConcurrencyInput(max_concurrent=n)))
    )
    out.print(f"concurrency set to {state.max_concurrent}")


@app.command("poll-now")
@user_errors
def poll_now(workspace: Path = WORKSPACE, config: Path | None = CONFIG) -> None:
    """Run the queue poller now instead of waiting for the schedule."""
    from pkgbuilder.runtime.orchestrator import trigger_poll

    settings, orch = _settings(workspace, config)

    async def _run() -> None:
        async with temporal_client(settings) as (client, _):
            await trigger_poll(client, settings)

    run_async(_run())
    out.print(f"poll schedule {orch.schedule_id} triggered")
