"""``pkgbuilder start``, ``sessions``, ``dashboard`` and ``resume``: turn-based generation."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import typer
from rich.live import Live
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from pkgbuilder.cli.common import console, out, run_async, settings_for, temporal_client
from pkgbuilder.cli.session_dashboard import dashboard, sessions_table
from pkgbuilder.config import BuildSettings
from pkgbuilder.errors import ErrorType, UserError
from pkgbuilder.models.common import Category
from pkgbuilder.models.session import GenerationResult, TurnBasedGenerationInput
from pkgbuilder.runtime.client import (
    ensure_search_attributes,
    has_dedicated_workers,
    server_answers,
)
from pkgbuilder.session.gitops import branch_name, toplevel_prefix
from pkgbuilder.session.phases.config import schedule, turn_based_config
from pkgbuilder.session.plan import parse_plan
from pkgbuilder.session.report import result_from_context
from pkgbuilder.session.resume import dirty_package_paths, resume_problems
from pkgbuilder.session.state import (
    GenerationContext,
    SessionStatus,
    check_session_id,
    list_states,
    read_state,
    session_id_at,
    state_dir,
    state_path,
)
from pkgbuilder.vcs import GitFailed, NotARepository, Repository
from pkgbuilder.workflows.policies import QUERY_TIMEOUT
from pkgbuilder.workflows.session import TurnBasedGenerationWorkflow

# Failure types of the generation activities that are the user's to fix (exit code 2).
USER_ERROR_TYPES = {
    ErrorType.ConfigError,
    ErrorType.PlanError,
    ErrorType.GitStateError,
    ErrorType.GenerationInputError,
}


def workflow_id_for(session_id: str, resumed_at_ms: int | None = None) -> str:
    """``turn-based-gen-<ms>``; a resume gets ``…-resume-<ms>`` (a new workflow id)."""
    base = f"turn-based-{session_id}"
    return f"{base}-resume-{resumed_at_ms}" if resumed_at_ms else base


def default_package_path(name: str, category: Category) -> str:
    return f"packages/{category.value}/{name.rsplit('/', 1)[-1]}"


def _relative(workspace: Path, path: Path, what: str) -> str:
    full = (workspace / path).resolve() if not path.is_absolute() else path.resolve()
    try:
        return full.relative_to(workspace).as_posix()
    except ValueError:
        raise UserError(f"The {what} {path} is outside the workspace {workspace}.") from None


def _check_local(
    workspace: Path, plan_rel: str, name: str, pkg_rel: str, state: Path
) -> str | None:
    """Fail fast, before anything starts: plan readable and valid, workspace in git.

    Returns the checked-out branch (None when HEAD is detached): the default base, fixed
    now so that a retried setup step never has to guess it.
    """
    plan_file = workspace / plan_rel
    if not plan_file.is_file():
        raise UserError(
            f"Plan file {plan_rel} does not exist; write it first (see 'Plan "
            "format' in docs/generation.md)."
        )
    try:
        plan_text = plan_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"Plan file {plan_rel} cannot be read as UTF-8 text ({e}).") from None
    plan = parse_plan(plan_text, plan_rel)
    if plan.package_name and plan.package_name != name:
        raise UserError(
            f"Plan {plan_rel} is for '{plan.package_name}', not '{name}'; pass "
            "--name with the plan's name."
        )
    git = Repository(workspace)
    try:
        git.toplevel()
    except (GitFailed, NotARepository):
        raise UserError(
            f"{workspace} is not inside a git repository; generation commits each "
            "phase, so run 'git init' (and commit) first."
        ) from None
    # What the session's setup would refuse, refused before it creates anything.
    prefix = toplevel_prefix(git, workspace, pkg_rel)
    exclude: list[str] = []
    with contextlib.suppress(ValueError):
        exclude.append(state.resolve().relative_to(git.toplevel()).as_posix())
    dirty = dirty_package_paths(git, prefix, exclude)
    if dirty:
        raise UserError(
            f"The package directory {pkg_rel} has uncommitted changes "
            f"({', '.join(dirty[:5])}); commit or remove them before starting a "
            "generation (nothing was created)."
        )
    return git.current_branch()


def _check_api_key(detach: bool) -> None:
    """The model is asked from the first phase on: without a key in this environment (where
    the in-process worker runs) the session would stop after creating its branch. With
    --detach a dedicated worker, which may hold the key, runs it."""
    import os

    from pkgbuilder.llm.keys import API_KEY_VARS

    if not detach and not any(os.environ.get(v) for v in API_KEY_VARS):
        raise UserError(
            "No Anthropic API key: set ANTHROPIC_API_KEY (or CLAUDE_API_KEY) "
            "before starting a generation, or use --detach with a worker that "
            "has one (nothing was created)."
        )


def _failure(err: WorkflowFailureError) -> tuple[str, int]:
    cause: BaseException | None = err.cause
    while cause is not None:
        if isinstance(cause, ApplicationError):
            return cause.message, 2 if cause.type in USER_ERROR_TYPES else 1
        cause = cause.__cause__ or getattr(cause, "cause", None)
    return str(err), 1


async def _live_context(client: Client, workflow_id: str, spath: Path) -> GenerationContext | None:
    """The workflow's live context (query), else the state file, else None."""
    try:
        ctx: GenerationContext | None = await client.get_workflow_handle(workflow_id).query(
            TurnBasedGenerationWorkflow.get_state, rpc_timeout=QUERY_TIMEOUT
        )
        if ctx is not None:
            return ctx
    except Exception:  # a query can race the first task, or no worker answers: use the file
        pass
    try:
        return read_state(spath)
    except UserError:
        return None


async def _follow(
    client: Client, workflow_id: str, spath: Path, as_json: bool, session_id: str
) -> int:
    handle = client.get_workflow_handle(workflow_id, result_type=GenerationResult)
    result_task = asyncio.ensure_future(handle.result())
    if not as_json:
        with Live(console=console, refresh_per_second=2, transient=True) as live:
            while not result_task.done():
                ctx = await _live_context(client, workflow_id, spath)
                if ctx is not None:
                    live.update(dashboard(ctx))
                await asyncio.wait({result_task}, timeout=1.0)
    try:
        result: GenerationResult = await result_task
    except WorkflowFailureError as e:
        message, code = _failure(e)
        ctx = await _live_context(client, workflow_id, spath)
        if as_json:
            data = (
                result_from_context(ctx, str(spath), error=message).to_json_dict()
                if ctx
                else {
                    "sessionId": session_id,
                    "workflowId": workflow_id,
                    "status": "failed",
                    "error": message,
                }
            )
            print(json.dumps(data, indent=2))
        elif ctx is not None:
            out.print(dashboard(ctx, "failed"))
        console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        return code
    if as_json:
        print(json.dumps(result.to_json_dict(), indent=2))
    else:
        ctx = await _live_context(client, workflow_id, spath)
        if ctx is not None:
            out.print(dashboard(ctx, "completed"))
    return 0


async def _ensure_not_running(client: Client, workflow_id: str) -> bool:
    try:
        desc = await client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return False
    return desc.status == WorkflowExecutionStatus.RUNNING


async def run_session(
    settings: BuildSettings,
    inp: TurnBasedGenerationInput,
    workflow_id: str,
    as_json: bool,
    detach: bool,
    original: GenerationContext | None = None,
) -> int:
    """Start (or resume) a session's workflow and follow it; returns the exit code."""
    spath = state_path(inp.state_dir, inp.session_id)
    async with temporal_client(settings, allow_embedded=not detach) as (client, embedded):
        if original is not None:
            running = await _ensure_not_running(client, original.workflow_id)
            problems = resume_problems(original, running, Path(inp.state_dir))
            if problems:
                raise UserError("\n".join(problems))
        else:
            await _refuse_concurrent(client, Path(inp.state_dir), inp.workspace_root)
        inp.search_attributes = await ensure_search_attributes(client, settings.temporal.namespace)
        tq = settings.temporal.task_queue
        need_worker = not detach and (
            embedded or not await has_dedicated_workers(client, settings.temporal.namespace, tq)
        )
        await client.start_workflow(
            TurnBasedGenerationWorkflow.run,
            inp,
            id=workflow_id,
            task_queue=tq,
            static_summary=f"generate {inp.package_name} ({inp.session_id})",
        )
        if detach:
            if as_json:
                print(json.dumps({"sessionId": inp.session_id, "workflowId": workflow_id}))
            else:
                console.print(f"detached; watch with 'pkgbuilder dashboard {inp.session_id}'")
            return 0
        if need_worker:
            from pkgbuilder.runtime.worker import running_workers

            async with running_workers(client, settings):
                return await _follow(client, workflow_id, spath, as_json, inp.session_id)
        return await _follow(client, workflow_id, spath, as_json, inp.session_id)


async def _refuse_concurrent(client: Client, directory: Path, workspace_root: str) -> None:
    """Sessions share the checkout's HEAD: two at once in one checkout would fight over it."""
    sessions, _ = list_states(directory)
    for ctx in sessions:
        if (
            ctx.status is SessionStatus.RUNNING
            and ctx.workspace_root == workspace_root
            and await _ensure_not_running(client, ctx.workflow_id)
        ):
            raise UserError(
                f"Session {ctx.session_id} is still generating in this checkout; wait for it "
                f"('pkgbuilder dashboard {ctx.session_id}') — use a separate worktree to "
                "generate in parallel."
            )


def _announce(session_id: str, workflow_id: str, as_json: bool) -> None:
    # Printed before anything slow happens, so the ids are known even if the CLI is stopped.
    if as_json:
        console.print(f"session {session_id} workflow {workflow_id}", highlight=False)
    else:
        out.print(f"session  {session_id}\nworkflow {workflow_id}", highlight=False)


def _start_input(
    settings: BuildSettings,
    root: Path,
    name: str,
    category: Category,
    plan: Path,
    path: str | None,
    base: str | None,
    no_merge: bool,
    detach: bool,
) -> tuple[TurnBasedGenerationInput, str]:
    """The new session's workflow input and id, after the checks that need no server."""
    cfg = turn_based_config(settings)
    schedule(cfg, category)  # reject an empty selection before anything starts
    plan_rel = _relative(root, plan, "plan")
    pkg_rel = _relative(root, Path(path or default_package_path(name, category)), "package path")
    current = _check_local(root, plan_rel, name, pkg_rel, state_dir(root, cfg.state_dir))
    _check_api_key(detach)
    base_branch = base or current
    if base_branch is None:
        raise UserError(
            "HEAD is detached; check out the base branch (e.g. 'git checkout main') or pass --base."
        )
    session_id = session_id_at(int(time.time() * 1000))
    if Repository(root).branch_exists(branch_name(session_id)):
        raise UserError(
            f"Branch {branch_name(session_id)} already exists; try again "
            "in a moment (nothing was created)."
        )
    inp = TurnBasedGenerationInput(
        session_id=session_id,
        package_name=name,
        package_path=pkg_rel,
        plan_path=plan_rel,
        category=category,
        workspace_root=str(root),
        state_dir=str(state_dir(root, cfg.state_dir)),
        config=settings,
        base_branch=base_branch,
        merge=False if no_merge else None,
    )
    return inp, workflow_id_for(session_id)


def start(
    name: str = typer.Option(..., "--name", help="Package name, e.g. @acme/data-validator."),
    category: Category = typer.Option(..., "--category", help="Package category."),
    plan: Path = typer.Option(..., "--plan", help="Plan file (see docs/generation.md)."),
    path: str | None = typer.Option(
        None, "--path", help="Package directory (default packages/<category>/<name>)."
    ),
    phases: str | None = typer.Option(
        None, "--phases", help="Run only these phases (comma-separated)."
    ),
    skip: str | None = typer.Option(None, "--skip", help="Skip these phases."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    detach: bool = typer.Option(False, "--detach", help="Start and return."),
    no_merge: bool = typer.Option(False, "--no-merge", help="Leave the branch unmerged."),
    base: str | None = typer.Option(None, "--base", help="Base branch (default: current)."),
    workspace: Path = typer.Option(Path("."), help="Repository/workspace root."),
    config: Path | None = typer.Option(None, help="Config file (default pkgbuilder.toml)."),
) -> None:
    """Generate a package from its plan in 15 committed, resumable phases."""
    root = workspace.resolve()
    tbg: dict[str, Any] = {}
    if phases:
        tbg["phasesToExecute"] = phases
    if skip:
        tbg["phasesToSkip"] = skip
    settings = settings_for(root, config, {"turnBasedGeneration": tbg} if tbg else None)
    inp, wf_id = _user(
        lambda: _start_input(settings, root, name, category, plan, path, base, no_merge, detach)
    )
    _announce(inp.session_id, wf_id, as_json)
    raise typer.Exit(run_async(run_session(settings, inp, wf_id, as_json, detach)))


def resume(
    session_id: str = typer.Argument(..., help="Session id (gen-<ms>)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    detach: bool = typer.Option(False, "--detach", help="Start and return."),
    no_merge: bool = typer.Option(False, "--no-merge", help="Leave the branch unmerged."),
    workspace: Path = typer.Option(Path("."), help="Repository/workspace root."),
    config: Path | None = typer.Option(None, help="Config file (default pkgbuilder.toml)."),
) -> None:
    """Continue a failed or interrupted session from its first unfinished phase."""
    root = workspace.resolve()

    def prepare() -> tuple[GenerationContext, TurnBasedGenerationInput, str]:
        directory = _state_dir(root, config)
        ctx = read_state(state_path(directory, check_session_id(session_id)))
        settings = settings_for(Path(ctx.workspace_root), config)
        inp = TurnBasedGenerationInput(
            session_id=ctx.session_id,
            package_name=ctx.package_name,
            package_path=ctx.package_path,
            plan_path=ctx.plan_path,
            category=ctx.category,
            workspace_root=ctx.workspace_root,
            state_dir=str(directory),
            config=settings,
            base_branch=ctx.base_branch,
            branch=ctx.branch,
            merge=False if no_merge else None,
            resume_from_context=ctx,
        )
        return ctx, inp, workflow_id_for(ctx.session_id, int(time.time() * 1000))

    ctx, inp, wf_id = _user(prepare)
    _announce(ctx.session_id, wf_id, as_json)
    raise typer.Exit(run_async(run_session(inp.config, inp, wf_id, as_json, detach, ctx)))


def sessions(
    as_json: bool = typer.Option(False, "--json", help="Print the sessions as JSON."),
    workspace: Path = typer.Option(Path("."), help="Repository/workspace root."),
) -> None:
    """List generation sessions (newest first) from the state directory."""
    directory = _user(lambda: _state_dir(workspace.resolve()))
    found, bad = list_states(directory)
    for _path, why in bad:
        console.print(f"[yellow]warning:[/] {why}", highlight=False)
    if as_json:
        print(json.dumps([c.to_json_dict() for c in found], indent=2))
    elif not found:
        out.print(f"No generation sessions in {directory}; start one with 'pkgbuilder start'.")
    else:
        out.print(sessions_table(found))


def dashboard_cmd(
    session_id: str = typer.Argument(..., help="Session id (gen-<ms>)."),
    once: bool = typer.Option(False, "--once", help="Print one snapshot and exit."),
    interval: float = typer.Option(2.0, min=0.2, help="Refresh interval (seconds)."),
    workspace: Path = typer.Option(Path("."), help="Repository/workspace root."),
) -> None:
    """The seed's dashboard, live: phases, commits, tokens, cost, failure."""
    spath = _user(lambda: state_path(_state_dir(workspace.resolve()), check_session_id(session_id)))
    ctx = _user(lambda: read_state(spath))
    if once:
        out.print(dashboard(ctx))
        raise typer.Exit(0)
    raise typer.Exit(run_async(_watch(spath, interval)))


def register(app: typer.Typer) -> None:
    """Add the generation commands to the root app."""
    app.command()(start)
    app.command()(resume)
    app.command()(sessions)
    app.command("dashboard")(dashboard_cmd)


async def _watch(spath: Path, interval: float) -> int:
    ctx = read_state(spath)
    settings = settings_for(Path(ctx.workspace_root))
    client: Client | None = None
    if await server_answers(settings.temporal.address):
        from pkgbuilder.runtime.client import connect

        try:
            client = await connect(settings.temporal.address, settings.temporal.namespace)
        except RuntimeError:
            client = None
    with Live(console=out, refresh_per_second=2) as live:
        while True:
            ctx = read_state(spath)
            wf_status = None
            if client is not None:
                try:
                    desc = await client.get_workflow_handle(ctx.workflow_id).describe()
                    wf_status = desc.status.name.lower() if desc.status else None
                except RPCError:
                    wf_status = "unknown to the server"
            live.update(dashboard(ctx, wf_status))
            if ctx.status is not SessionStatus.RUNNING or wf_status in (
                "failed",
                "terminated",
                "canceled",
                "timed_out",
            ):
                return 0 if ctx.status is SessionStatus.COMPLETED else 1
            await asyncio.sleep(interval)


def _state_dir(root: Path, config: Path | None = None) -> Path:
    """The state directory: $GENERATION_STATE_DIR, turnBasedGeneration.stateDir, default."""
    return state_dir(root, turn_based_config(settings_for(root, config)).state_dir)


def _user(fn: Any) -> Any:
    from pkgbuilder.cli.common import user_errors

    return user_errors(fn)()
