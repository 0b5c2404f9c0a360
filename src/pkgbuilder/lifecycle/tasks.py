"""Task branches and worktrees of a generation.

Each package task gets a branch ``task/<generation>-<slug>`` checked out in its own worktree
``$PKGBUILDER_HOME/worktrees/<generation>-<slug>``. When its gate passed, the task is merged
into the generation branch *without* a checkout (``git merge-tree --write-tree`` +
``commit-tree`` + a compare-and-swap ``update-ref``), so parallel tasks never share a working
tree; a checkout of the generation branch (usually the main worktree) is then brought forward
with a two-tree ``read-tree``, which keeps any unrelated local edits. Every function here is
idempotent: an activity retried after a crash finds the work done and returns the same answer.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from pkgbuilder.errors import UserError
from pkgbuilder.lifecycle import naming
from pkgbuilder.lifecycle.common import remove_tree
from pkgbuilder.models.common import name_slug
from pkgbuilder.models.lifecycle import MergeTaskResult, TaskWorktree
from pkgbuilder.vcs import GitFailed, Repository, repo_lock
from pkgbuilder.vcs.merging import (
    commit_tree,
    fast_forward_checkout,
    find_merge,
    merge_tree,
    swap_ref,
)


class TaskRejected(UserError):
    """The task's work cannot be merged (outside its package, empty, or conflicting); retrying
    the merge cannot help."""

    exit_code = 1


def create_task_worktree(
    git: Repository, home: Path, generation: str, package: str
) -> TaskWorktree:
    """Check out ``task/<generation>-<slug>`` (created from the generation branch's tip when
    new) in its worktree; an existing healthy worktree of that branch is reused."""
    home = home.resolve()
    branch = naming.task_branch(generation, package)
    path = naming.worktree_path(home, generation, package)
    with repo_lock(git):
        if not git.branch_exists(generation):
            raise UserError(f"There is no active generation named '{generation}'.")
        registered = [w for w in git.worktrees() if w.branch == branch]
        for wt in registered:
            if wt.path == path and (path / ".git").exists() and not wt.prunable:
                return TaskWorktree(
                    branch=branch, worktree=str(path), head=git.rev(branch), created=False
                )
            _drop_worktree(git, wt.path, home)
        # A directory left by a crash between `mkdir` and registration blocks `worktree add`.
        remove_tree(path, home / "worktrees")
        git.prune_worktrees()
        if git.branch_exists(branch):
            git.add_worktree(path, branch)
        else:
            git.add_worktree(path, generation, new_branch=branch)
        return TaskWorktree(branch=branch, worktree=str(path), head=git.rev(branch), created=True)


def _drop_worktree(git: Repository, path: Path, home: Path) -> None:
    try:
        git.remove_worktree(path)
    except GitFailed:
        # Not removable through git (already gone or half-created): delete what is ours.
        with contextlib.suppress(UserError):
            remove_tree(path, home / "worktrees")
        git.prune_worktrees()


def remove_task(git: Repository, home: Path, generation: str, package: str) -> bool:
    """Remove the task's worktree and branch; False when both were already gone."""
    return remove_task_slug(git, home, generation, name_slug(package))


def remove_task_slug(git: Repository, home: Path, generation: str, slug: str) -> bool:
    """:func:`remove_task` by the task's slug (what its branch name carries)."""
    home = home.resolve()
    branch = naming.task_branch_of_slug(generation, slug)
    path = naming.worktree_path_of_slug(home, generation, slug)
    removed = False
    with repo_lock(git):
        for wt in git.worktrees():
            if wt.branch == branch or wt.path == path:
                _drop_worktree(git, wt.path, home)
                removed = True
        if path.exists():
            remove_tree(path, home / "worktrees")
            removed = True
        git.prune_worktrees()
        removed = git.delete_branch(branch) or removed
    return removed


def remove_worktree(git: Repository, home: Path, generation: str, package: str) -> None:
    """Remove only the task's worktree, keeping its branch (a failed task's work stays
    inspectable until `stop` or `reset`)."""
    home = home.resolve()
    branch = naming.task_branch(generation, package)
    path = naming.worktree_path(home, generation, package)
    with repo_lock(git):
        for wt in git.worktrees():
            if wt.branch == branch or wt.path == path:
                _drop_worktree(git, wt.path, home)
        remove_tree(path, home / "worktrees")
        git.prune_worktrees()


def _outside(files: list[str], package_path: str) -> list[str]:
    prefix = package_path.strip("/") + "/"
    return [f for f in files if not f.startswith(prefix)]


def merge_task(
    git: Repository, home: Path, generation: str, package: str, package_path: str
) -> MergeTaskResult:
    """Merge the task branch into the generation branch, then remove its worktree and branch.

    Raises:
        TaskRejected: the task changed files outside ``package_path``, changed nothing, or
            conflicts with the generation branch.
    """
    home = home.resolve()
    branch = naming.task_branch(generation, package)
    with repo_lock(git):
        if not git.branch_exists(generation):
            raise UserError(f"There is no active generation named '{generation}'.")
        gen_tip = git.rev(generation)
        if not git.branch_exists(branch):
            merged = _find_merge(git, generation, branch)
            if merged is None:
                raise TaskRejected(f"Task branch '{branch}' does not exist; nothing to merge.")
            return MergeTaskResult(merge_commit=merged, already_merged=True)
        task_tip = git.rev(branch)
        if git.is_ancestor(task_tip, gen_tip):
            merged = _find_merge(git, generation, branch)
            if merged is None:
                raise TaskRejected(f"Task '{package}' committed no changes on '{branch}'.")
            result = MergeTaskResult(merge_commit=merged, already_merged=True)
        else:
            result = _merge(git, generation, branch, package, package_path, gen_tip, task_tip)
    remove_task(git, home, generation, package)
    return result


def _merge(
    git: Repository,
    generation: str,
    branch: str,
    package: str,
    package_path: str,
    gen_tip: str,
    task_tip: str,
) -> MergeTaskResult:
    files = git.changed_files(gen_tip, task_tip)
    if not files:
        raise TaskRejected(f"Task '{package}' committed no changes on '{branch}'.")
    outside = _outside(files, package_path)
    if outside:
        raise TaskRejected(
            f"Task '{package}' changed {len(outside)} file(s) outside {package_path} "
            f"(e.g. {outside[0]}); parallel tasks may only touch their own package."
        )
    merged = merge_tree(git, gen_tip, task_tip)
    if merged.tree is None:
        raise TaskRejected(
            f"Task '{package}' conflicts with '{generation}'"
            + (f" in {merged.conflicts[0]}" if merged.conflicts else "")
            + "; it was not merged."
        )
    message = (
        f"Merge {branch} into {generation}\n\n"
        f"Generated package {package} ({len(files)} file(s) under {package_path})."
    )
    merge_commit = commit_tree(git, merged.tree, [gen_tip, task_tip], message)
    # Compare-and-swap: fails (and Temporal retries) if the branch moved under us.
    ref = f"refs/heads/{generation}"
    swap_ref(git, ref, merge_commit, gen_tip, f"pkgbuilder: merge {branch}")
    try:
        _sync_checkouts(git, generation, gen_tip, merge_commit)
    except GitFailed:
        swap_ref(git, ref, gen_tip, merge_commit)
        raise
    return MergeTaskResult(merge_commit=merge_commit, files=files)


def _sync_checkouts(git: Repository, branch: str, old: str, new: str) -> None:
    """Bring every worktree that has ``branch`` checked out from ``old`` to ``new`` (like a
    fast-forward checkout; refuses, and changes nothing, if local edits would be lost)."""
    for wt in git.worktrees():
        if wt.branch == branch and not wt.prunable and wt.path.exists():
            fast_forward_checkout(Repository(wt.path, git.timeout), old, new)


def _find_merge(git: Repository, generation: str, branch: str) -> str | None:
    """The merge commit of ``branch`` on ``generation`` (found by its message)."""
    return find_merge(git, f"Merge {branch} into {generation}", generation)


def prune_worktrees(git: Repository, home: Path, generation: str) -> list[str]:
    """``git worktree prune`` and delete directories under ``$PKGBUILDER_HOME/worktrees`` of
    this generation that git no longer knows; returns what was removed."""
    home = home.resolve()
    removed: list[str] = []
    with repo_lock(git):
        removed.extend(sorted({str(p) for p in git.prune_worktrees()}))
        known = {w.path for w in git.worktrees()}
        root = home / "worktrees"
        if root.is_dir():
            for child in sorted(root.glob(f"{generation}-*")):
                if child not in known:
                    remove_tree(child, root)
                    removed.append(str(child))
    return removed
