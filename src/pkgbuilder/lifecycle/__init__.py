"""Generation lifecycle (pure git, no Temporal): generation branches cut from a base, task
branches in worktrees, the start/finished/merged/abandoned tags, resume and reset.

See docs/lifecycle.md.
"""

from pkgbuilder.lifecycle.generation import ensure_record, resume_prep, start, stop, switch
from pkgbuilder.lifecycle.housekeeping import list_generations, reset
from pkgbuilder.lifecycle.tasks import (
    TaskRejected,
    create_task_worktree,
    merge_task,
    remove_task,
    remove_worktree,
)

__all__ = [
    "TaskRejected",
    "create_task_worktree",
    "ensure_record",
    "list_generations",
    "merge_task",
    "remove_task",
    "remove_worktree",
    "reset",
    "resume_prep",
    "start",
    "stop",
    "switch",
]
