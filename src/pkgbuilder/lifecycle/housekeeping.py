"""`list` and `reset`: what generations exist, and abandoning the unmerged ones.

Git is the source of truth: a ``generation-*`` branch is an active generation; a
``-merged`` tag a merged one; an ``-abandoned`` tag an abandoned one; a ``-start`` tag with
none of those is *orphaned* (its branch was deleted by hand) and `reset` abandons it.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from pkgbuilder.errors import UserError
from pkgbuilder.lifecycle import naming, store
from pkgbuilder.lifecycle.common import (
    active_generations,
    leave_branch,
    open_repo,
    remove_tree,
)
from pkgbuilder.lifecycle.generation import remove_task_leftovers
from pkgbuilder.lifecycle.log import Log, no_log
from pkgbuilder.models.lifecycle import GenerationStatus, GenerationSummary, TaskStatus
from pkgbuilder.vcs import Repository


def _known_generations(git: Repository) -> dict[str, set[str]]:
    """Generation name -> suffixes of its tags (plus ``branch`` when the branch exists)."""
    found: dict[str, set[str]] = {}
    for tag in git.tags(naming.BRANCH_GLOB):
        parts = naming.split_tag(tag)
        if parts:
            found.setdefault(parts[0], set()).add(parts[1])
    for branch in active_generations(git):
        found.setdefault(branch, set()).add("branch")
    return found


def _status(marks: set[str]) -> GenerationStatus:
    if "branch" in marks:
        return GenerationStatus.ACTIVE
    if "merged" in marks:
        return GenerationStatus.MERGED
    if "abandoned" in marks:
        return GenerationStatus.ABANDONED
    return GenerationStatus.ORPHANED


def list_generations(
    root: Path, home: Path, include_abandoned: bool = False
) -> list[GenerationSummary]:
    """Active, merged and orphaned generations, oldest first (``include_abandoned`` adds the
    abandoned ones)."""
    git = open_repo(root)
    current = git.current_branch()
    out: list[GenerationSummary] = []
    for name, marks in sorted(_known_generations(git).items()):
        status = _status(marks)
        if status == GenerationStatus.ABANDONED and not include_abandoned:
            continue
        record = store.load(home.resolve(), name, git.cwd)
        summary = GenerationSummary(
            name=name,
            status=status,
            base_branch=record.base_branch if record else None,
            start_commit=record.start_commit if record else None,
            tags=sorted(naming.tag_name(name, s) for s in marks if s != "branch"),
            tasks=dict(Counter(t.status.value for t in record.tasks.values())) if record else {},
            current=current == name,
        )
        if status == GenerationStatus.ACTIVE and "start" in marks:
            summary.commits_ahead = git.count(f"{naming.tag_name(name, 'start')}..{name}")
        out.append(summary)
    return out


def reset(root: Path, home: Path, base: str = "main", log: Log = no_log) -> list[str]:
    """Abandon every unmerged generation: remove generation branches, task branches and
    worktrees, and replace each one's tags by a single ``-abandoned`` tag on its last commit
    (the work stays retrievable; the tag message names the branch point). Merged generations
    keep their tags. Returns the abandoned names.

    The base gains no commit: reset only removes pkgbuilder's own branches, tags and worktrees
    (the seed allows at most one).
    """
    git = open_repo(root)
    home = home.resolve()
    known = _known_generations(git)
    current = git.current_branch()
    if current and current in known:
        wip = leave_branch(git, home, "reset")
        if wip:
            log(current, f"committed work in progress {wip[:12]} (kept by the abandoned tag)")
        if not git.branch_exists(base):
            raise UserError(f"The base branch '{base}' does not exist; pass --base with a branch.")
        git.switch(base)
    abandoned: list[str] = []
    for name, marks in sorted(known.items()):
        status = _status(marks)
        remove_task_leftovers(git, home, name)
        if status in (GenerationStatus.MERGED, GenerationStatus.ABANDONED):
            continue
        _abandon(git, name, marks)
        abandoned.append(name)
        record = store.load(home, name, git.cwd)
        if record is not None:
            record.status = GenerationStatus.ABANDONED
            record.ended_at = datetime.now(UTC)
            for task in record.tasks.values():
                if task.status == TaskStatus.IN_PROGRESS:
                    task.status = TaskStatus.FAILED
                    task.reason = "the generation was reset before the task finished"
                task.worktree = None
            store.save(home, record)
        log(name, f"abandoned (tag {naming.tag_name(name, 'abandoned')})")
    _remove_stray_task_branches(git, home)
    git.prune_worktrees()
    return abandoned


def _abandon(git: Repository, name: str, marks: set[str]) -> None:
    start_tag = naming.tag_name(name, "start")
    finished_tag = naming.tag_name(name, "finished")
    if "branch" in marks:
        tip = git.rev(name)
    elif "finished" in marks:
        tip = git.rev(finished_tag)
    else:
        tip = git.rev(start_tag)
    start = git.rev(start_tag) if "start" in marks else None
    message = f"{name}: abandoned by reset; last commit {tip}"
    if start:
        message += f"; branched from {start}"
    git.tag(naming.tag_name(name, "abandoned"), tip, message)
    for tag, suffix in ((start_tag, "start"), (finished_tag, "finished")):
        if suffix in marks:
            git.delete_tag(tag)
    if "branch" in marks:
        git.delete_branch(name)


def _remove_stray_task_branches(git: Repository, home: Path) -> None:
    """Task branches whose generation is gone entirely (deleted by hand)."""
    for branch in git.branches(f"{naming.TASK_PREFIX}generation-*"):
        rest = branch.removeprefix(naming.TASK_PREFIX)
        generation = rest[: len("generation-YYYY-MM-DD-HH-MM-SS")]
        if naming.is_generation(generation) and not git.branch_exists(generation):
            remove_task_leftovers(git, home, generation)
    root = home / "worktrees"
    registered = {w.path for w in git.worktrees()}
    if root.is_dir():
        for child in root.iterdir():
            generation = child.name[: len("generation-YYYY-MM-DD-HH-MM-SS")]
            if (
                naming.is_generation(generation)
                and child not in registered
                and (
                    git.tag_exists(naming.tag_name(generation, "abandoned"))
                    or git.tag_exists(naming.tag_name(generation, "merged"))
                )
            ):
                remove_tree(child, root)
