"""Generation-lifecycle activities: thin, idempotent adapters over :mod:`pkgbuilder.lifecycle`.

Each may run twice (at-least-once): creating a worktree reuses a healthy one, merging finds
an earlier merge, removing tolerates what is already gone, recording a task is an upsert.
Git failures are retryable (Temporal caps the attempts); errors the user or the model caused
are not (``TaskRejected``, ``WorkspaceError``, ``UserError``).
"""

from __future__ import annotations

import contextlib
import functools
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pkgbuilder.activities.heartbeat import heartbeating_thread
from pkgbuilder.errors import ErrorType, UserError
from pkgbuilder.lifecycle import naming, store, tasks
from pkgbuilder.lifecycle.common import open_repo, remove_tree
from pkgbuilder.lifecycle.log import generation_log
from pkgbuilder.models.build import PackageNode, WorkspaceGraph
from pkgbuilder.models.common import name_slug
from pkgbuilder.models.lifecycle import (
    DescribeTaskInput,
    GenerationLogInput,
    GenerationRecord,
    MergeTaskInput,
    MergeTaskResult,
    PlanTasksInput,
    PlanTasksResult,
    RecordTaskInput,
    RemoveTaskInput,
    TaskRecord,
    TaskRef,
    TaskStatus,
    TaskWorktree,
)
from pkgbuilder.vcs import GitFailed, Repository, repo_lock
from pkgbuilder.workspace.discovery import discover_workspace

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_PLAN = "plans/master-plan.md"


def _git_activity(fn: F) -> F:
    """Heartbeat while running; git trouble stays retryable, everything a user or the model
    caused is not."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with heartbeating_thread():
                return fn(*args, **kwargs)
        except GitFailed as e:
            raise ApplicationError(str(e), type=ErrorType.GitFailed) from e
        except UserError as e:
            raise ApplicationError(str(e), type=type(e).__name__, non_retryable=True) from e

    return wrapper  # type: ignore[return-value]


def _log(home: str, generation: str, message: str) -> None:
    generation_log(Path(home), sink=activity.logger.info)(generation, message)


def _snapshot(git: Repository, home: Path, generation: str) -> Path:
    """A detached checkout of the generation branch's tip (the main worktree may have any
    branch checked out, and may be dirty)."""
    path = home / "worktrees" / f"{generation}--plan"
    git.remove_worktree(path)
    remove_tree(path, home / "worktrees")
    git.prune_worktrees()
    git.add_worktree(path, generation, detach=True)
    return path


@activity.defn(name="plan_generation_tasks")
@_git_activity
def plan_generation_tasks(inp: PlanTasksInput) -> PlanTasksResult:
    """The master plan's packages that need generating (no directory on the generation
    branch), in dependency order, merged with the task states already recorded: done tasks
    stay done, failed ones stay failed unless ``retry_failed``, stuck and blocked ones become
    pending again. The record is updated to match."""
    home = Path(inp.home).resolve()
    git = open_repo(Path(inp.repo))
    record = store.load(home, inp.generation, git.cwd)
    if record is None:
        raise UserError(f"No record of generation '{inp.generation}' in {home}.")
    plan_rel = inp.plan_path or record.plan_path or DEFAULT_PLAN
    with repo_lock(git):
        snapshot = _snapshot(git, home, inp.generation)
    try:
        plan = snapshot / plan_rel
        if not plan.is_file():
            raise UserError(
                f"The master plan {plan_rel} is not on {inp.generation}; commit it there or "
                "pass --plan (run generates the plan's packages that have no directory)."
            )
        graph = discover_workspace(snapshot, plan)
    finally:
        with repo_lock(git):
            with contextlib.suppress(GitFailed):
                git.remove_worktree(snapshot)
            shutil.rmtree(snapshot, ignore_errors=True)
            git.prune_worktrees()
    planned = _merge_tasks(graph, record.tasks, inp.retry_failed)

    def change(rec: GenerationRecord) -> None:
        rec.plan_path = plan_rel
        rec.tasks.update({t.package: t for t in planned})

    store.update(home, inp.generation, change)
    return PlanTasksResult(tasks=planned, plan_path=plan_rel)


def _merge_tasks(
    graph: WorkspaceGraph, known: dict[str, TaskRecord], retry_failed: bool
) -> list[TaskRecord]:
    wanted = {p.name for p in graph.packages if not p.exists}
    out: list[TaskRecord] = []
    for node in graph.packages:
        old = known.get(node.name)
        if node.name not in wanted and not (old and old.status == TaskStatus.DONE):
            continue
        task = old.model_copy() if old else _task_for(node)
        task.dependencies = [d for d in node.dependencies if d in wanted or d in known]
        if task.status in (TaskStatus.IN_PROGRESS, TaskStatus.BLOCKED) or (
            task.status == TaskStatus.FAILED and retry_failed
        ):
            task.status = TaskStatus.PENDING
        out.append(task)
    return out


def _task_for(node: PackageNode) -> TaskRecord:
    return TaskRecord(
        package=node.name,
        slug=name_slug(node.name),
        path=node.path,
        category=node.category,
        plan_path=node.plan_path,
        dependencies=list(node.dependencies),
    )


@activity.defn(name="record_task_status")
@_git_activity
def record_task_status(inp: RecordTaskInput) -> TaskRecord:
    """Upsert one task into the generation record (and log the transition)."""
    store.upsert_task(Path(inp.home), inp.generation, inp.task)
    t = inp.task
    detail = f" ({t.reason})" if t.reason and t.status != TaskStatus.DONE else ""
    _log(
        inp.home, inp.generation, f"task {t.package}: {t.status.value} attempt {t.attempts}{detail}"
    )
    return inp.task


@activity.defn(name="log_generation_event")
def log_generation_event(inp: GenerationLogInput) -> None:
    """One ``[timestamp] [generation] message`` line to the worker log and the record log."""
    _log(inp.home, inp.generation, inp.message)


@activity.defn(name="create_task_worktree")
@_git_activity
def create_task_worktree(inp: TaskRef) -> TaskWorktree:
    """Check out the task branch in its worktree (reusing a healthy one)."""
    return tasks.create_task_worktree(
        open_repo(Path(inp.repo)), Path(inp.home), inp.generation, inp.package
    )


@activity.defn(name="remove_generation_task")
@_git_activity
def remove_generation_task(inp: RemoveTaskInput) -> bool:
    """Remove the task's worktree, and its branch unless ``keep_branch``."""
    git, home, t = open_repo(Path(inp.task.repo)), Path(inp.task.home), inp.task
    if inp.keep_branch:
        tasks.remove_worktree(git, home, t.generation, t.package)
        return True
    return tasks.remove_task(git, home, t.generation, t.package)


@activity.defn(name="merge_generation_task")
@_git_activity
def merge_generation_task(inp: MergeTaskInput) -> MergeTaskResult:
    """Merge the task into the generation branch, then remove its worktree and branch."""
    t = inp.task
    result = tasks.merge_task(
        open_repo(Path(t.repo)), Path(t.home), t.generation, t.package, inp.package_path
    )
    _log(
        t.home,
        t.generation,
        f"merged {naming.task_branch(t.generation, t.package)} "
        f"({len(result.files)} file(s)) as {result.merge_commit[:12]}",
    )
    return result


@activity.defn(name="describe_task_package")
@_git_activity
def describe_task_package(inp: DescribeTaskInput) -> WorkspaceGraph:
    """The generated package and its workspace dependencies, as found in the task's worktree
    (the gate builds them from these nodes: scripts come from the new package.json)."""
    root = Path(inp.worktree)
    plan = root / inp.plan_path if inp.plan_path else None
    graph = discover_workspace(root, plan, only=[inp.package])
    node = graph.by_name().get(inp.package)
    if node is None or not node.exists:
        raise UserError(f"The task produced no package.json for {inp.package} in {inp.path}.")
    if node.path != inp.path:
        raise UserError(f"The task put {inp.package} at {node.path} instead of {inp.path}.")
    return graph


ACTIVITIES: list[Callable[..., Any]] = [
    plan_generation_tasks,
    record_task_status,
    log_generation_event,
    create_task_worktree,
    remove_generation_task,
    merge_generation_task,
    describe_task_package,
]
