"""``pkgbuilder build``: start (or resume) a suite and follow it to its summary."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import typer
from rich.live import Live
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.exceptions import CancelledError as TemporalCancelledError
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
from pkgbuilder.cli.suites import (
    suite_input,
    suite_workflow_id,
    unfinished_suites,
    waiting_tasks,
    written_summary,
)
from pkgbuilder.config import BuildSettings, ConfigError
from pkgbuilder.errors import ErrorType, UserError
from pkgbuilder.models.build import BuildReport, PackageStatus, SuiteBuildInput, SuiteState
from pkgbuilder.models.common import check_safe_id
from pkgbuilder.models.fleet import FleetSpec
from pkgbuilder.runtime.client import (
    ensure_search_attributes,
    has_dedicated_workers,
    live_pollers,
)
from pkgbuilder.workflows.policies import QUERY_TIMEOUT
from pkgbuilder.workflows.suite import SuiteBuildWorkflow

USER_ERROR_TYPES = {ErrorType.WorkspaceError, ErrorType.ConfigError}


def exit_code_for(report: BuildReport) -> int:
    """0 when everything succeeded or was skipped, 1 when anything failed, was blocked or
    cancelled."""
    if report.failed or report.blocked or report.verify_passed is False or report.error:
        return 1
    return 0


# Work waiting this long for a worker means no live worker serves the task queue.
UNSERVED_SECONDS = 10.0


class _Follower:
    """Follows a suite to its end: live table or lines, and a watchdog that starts an
    in-process worker when the suite's work waits for one that never comes (a dedicated
    worker seen polling may have died, e.g. SIGKILL)."""

    def __init__(
        self,
        client: Client,
        settings: BuildSettings,
        handle: WorkflowHandle[Any, Any],
        show: bool,
        stack: contextlib.AsyncExitStack,
        worker: Worker | None,
    ) -> None:
        self.client, self.settings, self.handle, self.show = client, settings, handle, show
        self.stack, self.worker = stack, worker
        self.state: SuiteState | None = None

    async def run(self) -> BuildReport:
        result_task = asyncio.ensure_future(self.handle.result())
        # In a terminal the live table is replaced by the summary when the build ends (the
        # summary is the final truth); elsewhere progress goes out as plain lines.
        live = (
            Live(console=console, refresh_per_second=4, transient=True)
            if self.show and console.is_terminal
            else None
        )
        lines = LineProgress() if self.show and live is None else None
        last_check = asyncio.get_running_loop().time()
        try:
            with live if live is not None else contextlib.nullcontext():
                while not result_task.done():
                    if self.worker is not None and self.worker.is_shutdown:
                        raise UserError(
                            "The in-process worker stopped before the build ended; the build "
                            "is durable: run 'pkgbuilder build --resume' (or 'pkgbuilder "
                            "worker') to finish it."
                        )
                    await self._poll_state(live, lines)
                    now = asyncio.get_running_loop().time()
                    if self.worker is None and now - last_check >= 3.0:
                        last_check = now
                        await self._watchdog(live)
                    await asyncio.wait({result_task}, timeout=1.0)
        finally:
            if not result_task.done():
                result_task.cancel()
        return await result_task

    async def _poll_state(self, live: Live | None, lines: LineProgress | None) -> None:
        try:
            state: SuiteState = await self.handle.query(
                SuiteBuildWorkflow.get_state, rpc_timeout=QUERY_TIMEOUT
            )
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
            return  # a query can race with the first workflow task, or no worker answers
        self.state = state
        if live is not None and state.packages:
            live.update(state_table(state))
        elif lines is not None:
            for line in lines.lines(state):
                console.print(line, highlight=False, soft_wrap=True)

    async def _watchdog(self, live: Live | None) -> None:
        ids = [self.handle.id]
        if self.state is not None:
            ids += [
                p.workflow_id
                for p in self.state.packages
                if p.status is PackageStatus.BUILDING and p.workflow_id
            ]
        waiting = await waiting_tasks(self.client, ids, UNSERVED_SECONDS)
        if not waiting:
            return
        from pkgbuilder.runtime.worker import running_workers

        message = (
            f"{waiting[0]} waited more than {UNSERVED_SECONDS:.0f} s for a worker on "
            f"task queue '{self.settings.temporal.task_queue}' (the worker seen there "
            "is gone): running one in-process"
        )
        (live.console if live is not None else console).print(
            message, highlight=False, soft_wrap=True
        )
        self.worker = await self.stack.enter_async_context(
            running_workers(self.client, self.settings)
        )


def _failure_message(err: WorkflowFailureError) -> tuple[str, int]:
    cause: BaseException | None = err.cause
    while cause is not None:
        if isinstance(cause, ApplicationError):
            code = 2 if cause.type in USER_ERROR_TYPES else 1
            return cause.message, code
        cause = getattr(cause, "cause", None)
    return str(err), 1


def _was_cancelled(err: WorkflowFailureError) -> bool:
    return isinstance(err.cause, TemporalCancelledError)


async def _interrupted(handle: WorkflowHandle[Any, Any], build_id: str, flag: str) -> UserError:
    """Ctrl-C: the suite stays unfinished (durable); say what was kept and what to run."""
    kept = ""
    with contextlib.suppress(Exception):
        state: SuiteState = await asyncio.wait_for(handle.query(SuiteBuildWorkflow.get_state), 3.0)
        done = [
            p
            for p in state.packages
            if p.status not in (PackageStatus.PENDING, PackageStatus.BUILDING)
        ]
        kept = f" {len(done)} of {len(state.packages)} packages are done and kept;"
    return UserError(
        f"Interrupted: build {build_id} is unfinished;{kept} the packages being built are "
        f"built again when it resumes. Resume it with 'pkgbuilder build --resume{flag}', "
        f"or cancel it with 'pkgbuilder cancel {build_id}{flag}'.",
        exit_code=130,
    )


async def _refuse_reuse(client: Client, build_id: str) -> None:
    """A build id names one suite: reusing a finished one needs --rebuild."""
    try:
        desc = await client.get_workflow_handle(suite_workflow_id(build_id)).describe()
    except RPCError:
        return
    status = desc.status.name.lower() if desc.status else "closed"
    raise UserError(
        f"Build id {build_id} was already used (that suite is {status}); choose "
        "another --build-id, or pass --rebuild to run it again under the same id."
    )


async def _resume(
    client: Client, unfinished: list[str], workspace: Path, inp: SuiteBuildInput, as_json: bool
) -> tuple[WorkflowHandle[Any, BuildReport], SuiteBuildInput, str]:
    """``--resume``: the workspace's unfinished suite, the input it was started with (else
    this command's) and its build id."""
    if not unfinished:
        raise UserError(f"No unfinished build of {workspace}; start one with 'pkgbuilder build'.")
    build_id = unfinished[0]
    handle = client.get_workflow_handle(suite_workflow_id(build_id), result_type=BuildReport)
    inp = await suite_input(client, handle) or inp
    if not as_json:
        console.print(f"resuming [bold]{handle.id}[/]")
    return handle, inp, build_id


async def _start(
    client: Client,
    unfinished: list[str],
    workspace: Path,
    inp: SuiteBuildInput,
    rebuild: bool,
    as_json: bool,
) -> WorkflowHandle[Any, BuildReport]:
    """Start the suite, unless another one of this workspace is unfinished."""
    flag = workspace_flag(workspace)
    if unfinished:
        other = unfinished[0]
        raise UserError(
            f"Build {other} of this workspace is unfinished (one suite per workspace "
            f"at a time): resume it with 'pkgbuilder build --resume{flag}', look at it "
            f"with 'pkgbuilder status {other}{flag}', or cancel it with 'pkgbuilder "
            f"cancel {other}{flag}'."
        )
    build_id = inp.build_id
    if not rebuild:
        await _refuse_reuse(client, build_id)
    tq = inp.config.temporal.task_queue
    handle: WorkflowHandle[Any, BuildReport] = await client.start_workflow(
        SuiteBuildWorkflow.run,
        inp,
        id=suite_workflow_id(build_id),
        task_queue=tq,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        static_summary=f"pkgbuilder suite {build_id} ({workspace.name})",
    )
    if not as_json:
        console.print(f"started [bold]{handle.id}[/] on task queue '{tq}'")
    return handle


async def _detached(
    client: Client,
    settings: BuildSettings,
    build_id: str,
    workflow_id: str,
    flag: str,
    as_json: bool,
) -> None:
    """``--detach``: say how to follow the build, and warn when no worker will run it."""
    tq = settings.temporal.task_queue
    if as_json:
        out.print_json(json.dumps({"buildId": build_id, "workflowId": workflow_id}))
    else:
        console.print(f"detached; follow with 'pkgbuilder status {build_id}{flag}'")
    if not await live_pollers(client, settings.temporal.namespace, tq):
        console.print(
            f"[yellow]warning:[/] no live worker polls task queue '{tq}': nothing "
            f"runs this build until one does; start one with 'pkgbuilder worker', or "
            f"follow it here with 'pkgbuilder build --resume{flag}'.",
            highlight=False,
            soft_wrap=True,
        )


async def _follow(
    client: Client,
    settings: BuildSettings,
    handle: WorkflowHandle[Any, BuildReport],
    inp: SuiteBuildInput,
    build_id: str,
    flag: str,
    embedded: bool,
    as_json: bool,
) -> BuildReport:
    """Follow the suite to its report, running a worker in-process when none polls."""
    tq = settings.temporal.task_queue
    need_worker = embedded or not await has_dedicated_workers(
        client, settings.temporal.namespace, tq
    )
    async with contextlib.AsyncExitStack() as stack:
        worker: Worker | None = None
        if need_worker:
            from pkgbuilder.runtime.worker import running_workers

            if not embedded and not as_json:
                console.print("no dedicated worker polls this task queue: running one in-process")
            worker = await stack.enter_async_context(running_workers(client, settings))
        follower = _Follower(client, settings, handle, not as_json, stack, worker)
        try:
            return await follower.run()
        except asyncio.CancelledError:
            raise await _interrupted(handle, build_id, flag) from None
        except WorkflowFailureError as e:
            if not _was_cancelled(e):
                message, code = _failure_message(e)
                raise UserError(message, exit_code=code) from e
            summary = written_summary(inp)
            if summary is None:
                raise UserError(
                    f"Build {build_id} was cancelled before it wrote a summary.", exit_code=1
                ) from e
            return summary


async def run_build(
    settings: BuildSettings,
    workspace: Path,
    plan: Path | None,
    only: list[str],
    build_id: str,
    as_json: bool,
    detach: bool,
    keep_server: bool = False,
    resume: bool = False,
    rebuild: bool = False,
    fleet: FleetSpec | None = None,
) -> int:
    inp = SuiteBuildInput(
        build_id=build_id,
        workspace_root=str(workspace),
        plan_path=str(plan) if plan else None,
        only=only,
        config=settings,
        fleet=fleet,
    )
    flag = workspace_flag(workspace)
    async with temporal_client(settings, allow_embedded=not detach, keep_server=keep_server) as (
        client,
        embedded,
    ):
        # Independent round trips: one wait instead of two.
        inp.search_attributes, unfinished = await asyncio.gather(
            ensure_search_attributes(client, settings.temporal.namespace),
            unfinished_suites(client, workspace),
        )
        if resume:
            handle, inp, build_id = await _resume(client, unfinished, workspace, inp, as_json)
        else:
            handle = await _start(client, unfinished, workspace, inp, rebuild, as_json)
        if detach:
            await _detached(client, settings, build_id, handle.id, flag, as_json)
            return 0
        report = await _follow(client, settings, handle, inp, build_id, flag, embedded, as_json)
    print_report(report, as_json)
    console.print(
        where_to_look(settings, build_id, workspace, embedded and not keep_server),
        highlight=False,
        soft_wrap=True,
    )
    return exit_code_for(report)


def workspace_flag(workspace: Path) -> str:
    """`` --workspace DIR`` when a command run here would not find ``workspace``'s home."""
    import os

    from pkgbuilder.cli.common import home_is_explicit
    from pkgbuilder.config import resolve_home

    if home_is_explicit() or os.environ.get("PKGBUILDER_HOME") == str(
        resolve_home(Path.cwd(), env={})
    ):
        return ""
    here = Path.cwd()
    try:
        shown = workspace.relative_to(here).as_posix() or "."
    except ValueError:
        shown = str(workspace)
    return "" if shown == "." else f" --workspace {shown}"


def where_to_look(
    settings: BuildSettings, build_id: str, workspace: Path, server_stopped: bool
) -> str:
    """The last line of a build: the command (or address) that shows it in the UI."""
    from pkgbuilder.cli.common import ui_url
    from pkgbuilder.runtime.client import is_local_address

    flag = workspace_flag(workspace)
    if server_stopped:
        return f"see it in the Temporal UI: pkgbuilder ui {build_id}{flag}"
    if is_local_address(settings.temporal.address):
        return f"Temporal UI: {ui_url(settings, suite_workflow_id(build_id))}"
    return (
        f"workflow {suite_workflow_id(build_id)} on {settings.temporal.address}; "
        f"summary: pkgbuilder status {build_id}{flag}"
    )


def print_report(report: BuildReport, as_json: bool) -> None:
    for warning in report.cache_warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    if as_json:
        print(json.dumps(report.to_json_dict(), indent=2))
        return
    out.print(summary_table(report))
    if (published := publish_table(report)) is not None:
        out.print(published)
    if report.summary_path:
        day = Path(report.summary_path).parent
        out.print(f"reports: {day}", highlight=False, soft_wrap=True)
        page = day / "suites" / f"{report.build_id}.html"
        if page.is_file():
            out.print(f"report page: {page}", highlight=False, soft_wrap=True)
    if report.verify_passed is not None:
        out.print("VERIFY passed" if report.verify_passed else "[red]VERIFY failed[/]")


def build(
    workspace: Path = typer.Argument(Path("."), help="Monorepo root."),
    plan: Path | None = typer.Option(None, help="Master plan markdown (packages + deps)."),
    concurrency: int | None = typer.Option(
        None, min=1, max=64, help="maxConcurrentBuilds (default 4)."
    ),
    only: list[str] = typer.Option([], help="Build only these packages (+ their deps)."),
    build_id: str | None = typer.Option(None, help="Build id (default: generated)."),
    as_json: bool = typer.Option(False, "--json", help="Print the suite summary JSON."),
    detach: bool = typer.Option(False, help="Start and return (needs a running server)."),
    config: Path | None = typer.Option(None, help="Config file (default pkgbuilder.toml)."),
    registry: str | None = typer.Option(
        None, help="Publish to this registry URL; 'local' starts the embedded one."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Pack and report what would be published; publish nothing."
    ),
    keep_server: bool = typer.Option(
        False,
        "--keep-server",
        help="Leave the embedded server (and its UI) running after the build; stop it "
        "with 'pkgbuilder ui --stop'.",
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Follow (and run) this workspace's unfinished build."
    ),
    rebuild: bool = typer.Option(
        False, "--rebuild", help="Run again under a --build-id that was already used."
    ),
    force: bool = typer.Option(
        False, "--force", help="Ignore the build cache (results are still stored)."
    ),
    cache: str | None = typer.Option(
        None,
        "--cache",
        help="Cache sources, e.g. local:rw,remote:r (a source left out is off).",
    ),
    affected: bool = typer.Option(
        False,
        "--affected",
        help="Only packages whose hashed inputs differ between --base and --head, + dependents.",
    ),
    base: str = typer.Option("main", help="--affected: the ref to compare with."),
    head: str | None = typer.Option(
        None, help="--affected: the other ref (default: the working tree)."
    ),
    dry: str | None = typer.Option(
        None,
        "--dry",
        help="Print each package's hash, cache "
        "status and why it would run; run nothing (--dry=json "
        "for JSON).",
    ),
    fleet: bool = typer.Option(
        False,
        "--fleet",
        help="Run the package steps on fleet workers ('pkgbuilder worker --workspace PATH "
        "--fleet') whose checkouts are at this commit (see docs/workers.md).",
    ),
) -> None:
    """Build every package of WORKSPACE in dependency order, in parallel."""
    if build_id is not None:
        _check_build_id(build_id)
    workspace = workspace.resolve()
    if not workspace.is_dir():
        _fail_now(f"Workspace {workspace} is not a directory.")
    if dry not in (None, "text", "json"):
        _fail_now("--dry takes no value or =json.")
    from pkgbuilder.cli import cache as cache_cli

    overrides = _build_overrides(concurrency, registry, dry_run, cache, force)
    settings = settings_for(workspace, config, overrides)
    if affected:
        only = _with_affected(settings, workspace, only, base, head, as_json or dry == "json")
    if dry is not None:
        _prevalidate(workspace, plan, only, settings.graph.depends_on)
        raise typer.Exit(user_errors(cache_cli.dry_run)(settings, workspace, only, dry == "json"))
    if plan is not None:
        plan = plan.resolve()
        if not plan.is_file():
            _fail_now(f"Plan file {plan} does not exist.")
    _prevalidate(workspace, plan, only, settings.graph.depends_on)
    _validate_sections(settings)
    settings = user_errors(prepare_publishing)(settings, registry)
    bid = build_id or time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    spec = _fleet_spec(settings, workspace) if fleet else None
    run = run_build(
        settings, workspace, plan, only, bid, as_json, detach, keep_server, resume, rebuild, spec
    )
    raise typer.Exit(run_async(run))


def _fleet_spec(settings: BuildSettings, workspace: Path) -> FleetSpec:
    from pkgbuilder.cli.fleet import suite_fleet

    return suite_fleet(settings, workspace)


def _build_overrides(
    concurrency: int | None, registry: str | None, dry_run: bool, cache: str | None, force: bool
) -> dict[str, Any]:
    """The settings the build's flags override (applied over the config files)."""
    from pkgbuilder.cli import cache as cache_cli
    from pkgbuilder.config import deep_merge

    overrides: dict[str, Any] = {}
    if concurrency is not None:
        overrides["maxConcurrentBuilds"] = concurrency
    overrides.update(publish_overrides(registry, dry_run))
    if cache is not None:
        overrides = deep_merge(overrides, user_errors(cache_cli.cache_spec_overrides)(cache))
    if force:
        overrides = deep_merge(overrides, {"cache": {"force": True}})
    return overrides


def _with_affected(
    settings: BuildSettings,
    workspace: Path,
    only: list[str],
    base: str,
    head: str | None,
    as_json: bool,
) -> list[str]:
    """``only`` plus the packages --affected finds; when there are none, say so and exit 0."""
    from pkgbuilder.cli import cache as cache_cli

    only = [*only, *user_errors(cache_cli.affected)(settings, workspace, base, head)]
    if not only:
        if as_json:
            print(json.dumps({"affected": [], "packageReports": []}))
        else:
            console.print(f"no package is affected between {base} and {head or 'the working tree'}")
        raise typer.Exit(0)
    return only


def register(app: typer.Typer) -> None:
    app.command()(build)


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
    from pkgbuilder.session.phases.config import turn_based_config

    try:
        turn_based_config(settings)
    except ConfigError as e:
        _fail_now(str(e))


def _prevalidate(
    workspace: Path, plan: Path | None, only: list[str], depends_on: dict[str, list[str]]
) -> None:
    """Discover locally first so graph errors are one sentence before anything starts."""
    from pkgbuilder.workspace.discovery import discover_workspace
    from pkgbuilder.workspace.sibling_imports import undeclared_sibling_imports

    try:
        graph = discover_workspace(workspace, plan, only=only or None, depends_on=depends_on)
    except UserError as e:
        _fail_now(str(e))
    from rich.markup import escape

    for warning in undeclared_sibling_imports(Path(graph.root), graph.packages):
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
