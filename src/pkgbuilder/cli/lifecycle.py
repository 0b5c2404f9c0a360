"""``pkgbuilder generation start|run|resume|stop|list|switch|reset`` (docs/lifecycle.md)."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import typer
from rich.table import Table

from pkgbuilder import lifecycle
from pkgbuilder.cli.common import console, out, pin_home, run_async, settings_for, user_errors
from pkgbuilder.cli.lifecycle_run import (
    plan_relative,
    print_result,
    refuse_if_running,
    run_is_live_async,
    start_or_attach,
)
from pkgbuilder.config import pkgbuilder_home
from pkgbuilder.errors import UserError
from pkgbuilder.lifecycle import store
from pkgbuilder.lifecycle.common import active_generations, open_repo, resolve_generation
from pkgbuilder.lifecycle.log import Log, generation_log
from pkgbuilder.lifecycle.planning import DEFAULT_PLAN
from pkgbuilder.models.lifecycle import (
    GenerationRecord,
    GenerationRunInput,
    GenerationRunResult,
)
from pkgbuilder.workspace.master_plan import unscoped

app = typer.Typer(
    name="generation",
    help="Generation branches: start, run, resume, stop, list, switch, reset.",
    no_args_is_help=True,
)

REPO = typer.Option(Path("."), "--repo", help="The repository (default: current directory).")


def _log(home: Path) -> Log:
    return generation_log(
        home, sink=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True)
    )


def _resolve_packages(root: Path, plan: Path | None, wanted: list[str]) -> list[tuple[str, str]]:
    """``--regenerate`` values (name, unscoped name or directory) -> (name, directory)."""
    if not wanted:
        return []
    from pkgbuilder.workspace.discovery import discover_workspace

    default = root / DEFAULT_PLAN
    graph = discover_workspace(root, plan or (default if default.is_file() else None))
    by_name = {p.name: p.path for p in graph.packages}
    out_: list[tuple[str, str]] = []
    for want in wanted:
        key = want.strip().rstrip("/")
        matches = [n for n, path in by_name.items() if key in (n, unscoped(n), path)]
        if len(matches) != 1:
            close = difflib.get_close_matches(key, sorted(by_name), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UserError(
                f"--regenerate names {want}, which is not a package of the workspace{hint}."
            )
        out_.append((matches[0], by_name[matches[0]]))
    return out_


@app.command()
@user_errors
def start(
    base: str = typer.Option("main", help="Branch to start from (checked out, clean)."),
    regenerate: list[str] = typer.Option([], help="Package to generate again (repeatable)."),
    plan: Path | None = typer.Option(None, help=f"Master plan (default {DEFAULT_PLAN})."),
    repo: Path = REPO,
) -> None:
    """Tag the base, create the generation branch, remove regenerated packages' sources."""
    home = pin_home(repo)
    root = open_repo(repo).cwd
    plan_rel = plan_relative(root, plan)
    targets = _resolve_packages(root, plan.resolve() if plan else None, regenerate)
    record = lifecycle.start(
        root, home, base=base, regenerate=targets, plan_path=plan_rel, log=_log(home)
    )
    out.print(record.name, highlight=False)


@app.command()
def run(
    generation: str | None = typer.Option(None, help="Generation (when several are active)."),
    parallel: int = typer.Option(2, min=1, max=16, help="Tasks generated at once."),
    max_packages: int | None = typer.Option(None, min=1, help="Start at most N tasks."),
    plan: Path | None = typer.Option(None, help=f"Master plan (default {DEFAULT_PLAN})."),
    retry_failed: bool = typer.Option(False, help="Try failed tasks again."),
    task_timeout: int = typer.Option(3600, min=60, help="Time limit of one task (seconds)."),
    max_attempts: int = typer.Option(2, min=1, max=5, help="Attempts per task."),
    detach: bool = typer.Option(False, help="Start and return (needs a running server)."),
    as_json: bool = typer.Option(False, "--json", help="Print the run's result as JSON."),
    repo: Path = REPO,
) -> None:
    """Generate the master plan's missing packages on task branches, in dependency order."""
    settings = settings_for(repo)

    def prepare() -> GenerationRunInput:
        home = pkgbuilder_home()
        git = open_repo(repo)
        name = resolve_generation(git, generation)
        plan_rel = plan_relative(git.cwd, plan)

        def change(rec: GenerationRecord) -> None:
            rec.parallel, rec.max_packages = parallel, max_packages
            rec.plan_path = plan_rel or rec.plan_path

        lifecycle.ensure_record(git, home, name)
        record = store.update(home, name, change)
        return GenerationRunInput(
            repo=str(git.cwd),
            home=str(home),
            generation=name,
            plan_path=record.plan_path,
            parallel=parallel,
            max_packages=max_packages,
            retry_failed=retry_failed,
            task_timeout_seconds=task_timeout,
            max_task_attempts=max_attempts,
            config=settings,
        )

    inp = user_errors(prepare)()
    result = run_async(start_or_attach(settings, inp, inp.generation, as_json, detach))
    if result is None:
        console.print(f"detached; follow with 'pkgbuilder generation resume {inp.generation}'")
        raise typer.Exit(0)
    raise typer.Exit(print_result(result, as_json))


@app.command()
def resume(
    name: str | None = typer.Argument(None, help="Generation (when several are active)."),
    as_json: bool = typer.Option(False, "--json", help="Print the run's result as JSON."),
    repo: Path = REPO,
) -> None:
    """Continue an interrupted run (prunes stale worktrees, resets stuck tasks).

    Follows the run when it is still alive; otherwise switches to the generation branch
    (committing work in progress), cleans up and runs again.
    """
    settings = settings_for(repo)
    home = pkgbuilder_home()
    git = user_errors(open_repo)(repo)
    generation = user_errors(resolve_generation)(git, name, "a NAME argument")

    async def go() -> GenerationRunResult | None:
        if await run_is_live_async(settings, generation):
            # Only the worker died: the run itself is durable and its tasks are live.
            return await start_or_attach(settings, None, generation, as_json, own_worker=True)
        log = _log(home)
        prep = lifecycle.resume_prep(git.cwd, home, generation, log=log)
        log(
            generation,
            f"pruned {len(prep.pruned_worktrees)} stale worktree(s), reset "
            f"{len(prep.reset_tasks)} stuck task(s); pending: "
            f"{', '.join(prep.pending_tasks) or 'none'}",
        )
        record = lifecycle.ensure_record(git, home, generation)
        inp = GenerationRunInput(
            repo=str(git.cwd),
            home=str(home),
            generation=generation,
            plan_path=record.plan_path,
            parallel=record.parallel,
            max_packages=record.max_packages,
            config=settings,
        )
        return await start_or_attach(settings, inp, generation, as_json, own_worker=True)

    result = run_async(go())
    assert result is not None
    raise typer.Exit(print_result(result, as_json))


@app.command()
def stop(
    name: str | None = typer.Argument(None, help="Generation (when several are active)."),
    repo: Path = REPO,
) -> None:
    """Tag -finished, merge into the base with --no-ff, tag -merged, delete the branches."""
    settings = settings_for(repo)
    home = pkgbuilder_home()

    async def go() -> GenerationRecord:
        git = open_repo(repo)
        generation = (
            resolve_generation(git, name, "a NAME argument")
            if (name is None or name in active_generations(git))
            else name
        )
        await refuse_if_running(settings, [generation], f"stop {generation}")
        return lifecycle.stop(git.cwd, home, generation, log=_log(home))

    record = run_async(go())
    out.print(f"{record.name} merged into {record.base_branch}", highlight=False)


@app.command(name="list")
@user_errors
def list_(
    all_: bool = typer.Option(False, "--all", help="Include abandoned generations."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    repo: Path = REPO,
) -> None:
    """Active and merged generations (--all adds abandoned ones)."""
    rows = lifecycle.list_generations(repo, pin_home(repo), include_abandoned=all_)
    if as_json:
        print(json.dumps([r.to_json_dict() for r in rows], indent=2))
        return
    if not rows:
        out.print("no generations; start one with 'pkgbuilder generation start'")
        return
    table = Table("", "generation", "status", "base", "commits", "tasks")
    for r in rows:
        tasks = ", ".join(f"{n} {s}" for s, n in sorted(r.tasks.items())) or "-"
        ahead = "-" if r.commits_ahead is None else str(r.commits_ahead)
        table.add_row(
            "*" if r.current else "", r.name, r.status.value, r.base_branch or "-", ahead, tasks
        )
    out.print(table)


@app.command()
@user_errors
def switch(
    name: str = typer.Argument(..., help="Generation to check out."),
    repo: Path = REPO,
) -> None:
    """Commit work in progress on the current generation branch and check out NAME."""
    home = pin_home(repo)
    lifecycle.switch(repo, home, name, log=_log(home))
    out.print(f"on {name}", highlight=False)


@app.command()
def reset(
    base: str = typer.Option("main", help="Branch to return to."),
    repo: Path = REPO,
) -> None:
    """Abandon every unmerged generation (its work stays in an -abandoned tag).

    Generation branches, task branches and worktrees are removed; each generation's tags
    become one -abandoned tag on its last commit.
    """
    settings = settings_for(repo)
    home = pkgbuilder_home()

    async def go() -> list[str]:
        git = open_repo(repo)
        await refuse_if_running(settings, active_generations(git), "reset")
        return lifecycle.reset(git.cwd, home, base=base, log=_log(home))

    abandoned = run_async(go())
    out.print(
        f"abandoned {len(abandoned)} generation(s)"
        + (f": {', '.join(abandoned)}" if abandoned else ""),
        highlight=False,
    )
