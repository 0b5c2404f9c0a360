"""Generation-lifecycle activities: thin, idempotent adapters over :mod:`pkgbuilder.lifecycle`.

Each may run twice (at-least-once): creating a worktree reuses a healthy one, merging finds
an earlier merge, removing tolerates what is already gone, recording a task is an upsert.
Git failures are retryable (Temporal caps the attempts); errors the user or the model caused
are not (``TaskRejected``, ``WorkspaceError``, ``UserError``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pkgbuilder.activities.heartbeat import heartbeating_thread
from pkgbuilder.errors import ErrorType, UserError
from pkgbuilder.lifecycle import planning, store, tasks
from pkgbuilder.lifecycle.common import open_repo
from pkgbuilder.lifecycle.log import generation_log
from pkgbuilder.models.build import WorkspaceGraph
from pkgbuilder.models.lifecycle import (
    DescribeTaskInput,
    GenerationLogInput,
    MergeTaskInput,
    MergeTaskResult,
    PlanTasksInput,
    PlanTasksResult,
    RecordTaskInput,
    RemoveTaskInput,
    TaskRecord,
    TaskRef,
    TaskWorktree,
)
from pkgbuilder.vcs import GitFailed

F = TypeVar("F", bound=Callable[..., Any])


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


@activity.defn(name="plan_generation_tasks")
@_git_activity
def plan_generation_tasks(inp: PlanTasksInput) -> PlanTasksResult:
    """The master plan's packages that need generating, merged with the recorded task
    states (:func:`pkgbuilder.lifecycle.planning.plan_tasks`)."""
    return planning.plan_tasks(
        Path(inp.repo), Path(inp.home), inp.generation, inp.plan_path, inp.retry_failed
    )


@activity.defn(name="record_task_status")
@_git_activity
def record_task_status(inp: RecordTaskInput) -> TaskRecord:
    """Upsert one task into the generation record (and log the transition)."""
    store.upsert_task(Path(inp.home), inp.generation, inp.task)
    _log(inp.home, inp.generation, planning.transition_line(inp.task))
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
    _log(t.home, t.generation, planning.merged_line(t.generation, t.package, result))
    return result


@activity.defn(name="describe_task_package")
@_git_activity
def describe_task_package(inp: DescribeTaskInput) -> WorkspaceGraph:
    """The generated package and its workspace dependencies, as found in the task's worktree
    (the gate builds them from these nodes: scripts come from the new package.json)."""
    return planning.task_package(Path(inp.worktree), inp.plan_path, inp.package, inp.path)


ACTIVITIES: list[Callable[..., Any]] = [
    plan_generation_tasks,
    record_task_status,
    log_generation_event,
    create_task_worktree,
    remove_generation_task,
    merge_generation_task,
    describe_task_package,
]
