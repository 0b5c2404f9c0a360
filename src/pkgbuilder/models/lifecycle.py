"""Models of the generation lifecycle: the generation record kept under
``$PKGBUILDER_HOME/generations/<name>.json``, its tasks, and the inputs/outputs of the
lifecycle activities and of ``GenerationRunWorkflow``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from pkgbuilder.config import BuildSettings
from pkgbuilder.models.common import Category, Model


class GenerationStatus(StrEnum):
    """Where a generation is in its lifecycle (git tags and branches are the source of truth;
    the record mirrors them)."""

    ACTIVE = "active"  # generation branch exists
    MERGED = "merged"  # `-merged` tag on the base
    ABANDONED = "abandoned"  # `-abandoned` tag, branch removed by reset
    ORPHANED = "orphaned"  # `-start` tag but no branch and no merged/abandoned tag


class TaskStatus(StrEnum):
    """State of one package task; a task is never left ``in_progress`` by a finished run."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    FAILED = "failed"
    BLOCKED = "blocked"  # a dependency failed; never started


class TaskRecord(Model):
    """One package generated (or to be generated) inside a generation."""

    package: str
    slug: str
    path: str  # package directory relative to the repository root
    category: Category = Category.UTILITY
    plan_path: str | None = None
    dependencies: list[str] = Field(default_factory=list)
    status: TaskStatus = TaskStatus.PENDING
    attempts: int = 0
    reason: str | None = None
    branch: str | None = None
    worktree: str | None = None
    merge_commit: str | None = None
    workflow_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class GenerationRecord(Model):
    """Metadata of one generation; the branch point is also the commit of its `-start` tag."""

    name: str
    repo: str  # absolute path of the main worktree
    base_branch: str
    start_commit: str  # branch point on the base
    setup_commit: str | None = None  # the single squashed setup commit on the branch
    started_at: datetime
    status: GenerationStatus = GenerationStatus.ACTIVE
    regenerate: list[str] = Field(default_factory=list)  # package names
    plan_path: str | None = None  # master plan, relative to the repository root
    tasks: dict[str, TaskRecord] = Field(default_factory=dict)  # by package name
    finished_commit: str | None = None
    merged_commit: str | None = None
    ended_at: datetime | None = None
    # Options of the last run, reused by `resume`.
    parallel: int = 2
    max_packages: int | None = None


class GenerationSummary(Model):
    """A line of `pkgbuilder generation list`."""

    name: str
    status: GenerationStatus
    base_branch: str | None = None
    start_commit: str | None = None
    commits_ahead: int | None = None  # generation branch vs its start tag
    tags: list[str] = Field(default_factory=list)
    tasks: dict[str, int] = Field(default_factory=dict)  # status -> count
    current: bool = False


class ResumePrep(Model):
    """What `resume` cleaned up before continuing."""

    generation: str
    wip_commit: str | None = None
    pruned_worktrees: list[str] = Field(default_factory=list)
    reset_tasks: list[str] = Field(default_factory=list)
    pending_tasks: list[str] = Field(default_factory=list)


# ---- activities -----------------------------------------------------------------------------


class TaskRef(Model):
    """Identifies one task of one generation (input of the task activities)."""

    repo: str
    home: str
    generation: str
    package: str


class TaskWorktree(Model):
    branch: str
    worktree: str
    head: str
    created: bool  # False when an earlier attempt of this activity already created it


class MergeTaskInput(Model):
    task: TaskRef
    package_path: str  # every path the task changed must live under it


class MergeTaskResult(Model):
    merge_commit: str
    files: list[str] = Field(default_factory=list)
    already_merged: bool = False


class RemoveTaskInput(Model):
    task: TaskRef
    keep_branch: bool = False  # a failed task's branch stays inspectable until stop/reset


class DescribeTaskInput(Model):
    worktree: str
    package: str
    path: str  # where the master plan puts the package
    plan_path: str | None = None


class GenerationLogInput(Model):
    home: str
    generation: str
    message: str


class RecordTaskInput(Model):
    """Upsert of one task's state into the generation record."""

    repo: str
    home: str
    generation: str
    task: TaskRecord


class PlanTasksInput(Model):
    repo: str
    home: str
    generation: str
    plan_path: str | None = None
    retry_failed: bool = False


class PlanTasksResult(Model):
    """Tasks in dependency order; ``done`` ones are kept so dependents can see them."""

    tasks: list[TaskRecord]
    plan_path: str  # the master plan used, relative to the repository root


class GenerationRunInput(Model):
    """Input of GenerationRunWorkflow (no secrets; settings travel as BuildSettings)."""

    repo: str
    home: str
    generation: str
    plan_path: str | None = None
    parallel: int = 2
    max_packages: int | None = None
    retry_failed: bool = False
    task_timeout_seconds: int = 3600
    max_task_attempts: int = 2
    config: BuildSettings


class GenerationRunResult(Model):
    generation: str
    done: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)  # package -> reason
    blocked: dict[str, str] = Field(default_factory=dict)
    not_started: list[str] = Field(default_factory=list)  # left for a later run (--max-packages)


class GenerationRunState(Model):
    """Live state of a run (query ``get_state``)."""

    generation: str
    tasks: list[TaskRecord] = Field(default_factory=list)
    active: list[str] = Field(default_factory=list)
    finished: bool = False
