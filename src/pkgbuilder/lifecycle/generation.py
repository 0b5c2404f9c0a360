"""The generation lifecycle: start, stop, switch and the clean-up before a resume.

A generation is a branch ``generation-YYYY-MM-DD-HH-MM-SS`` cut from a base branch (tagged
``<name>-start`` there). Packages are generated on task branches merged into it (see
:mod:`pkgbuilder.lifecycle.tasks`); `stop` merges it into the base with ``--no-ff`` between the
``-finished`` and ``-merged`` tags. All functions act on the main worktree of ``root`` and
refuse, in one sentence and before changing anything, when the repository is not in the state
they need.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pkgbuilder.errors import UserError
from pkgbuilder.lifecycle import naming, store
from pkgbuilder.lifecycle.common import (
    commit_wip,
    confined,
    dirty,
    ensure_excluded,
    leave_branch,
    open_repo,
    remove_tree,
    resolve_generation,
)
from pkgbuilder.lifecycle.log import Log, no_log
from pkgbuilder.lifecycle.tasks import prune_worktrees, remove_task, remove_task_slug
from pkgbuilder.models.lifecycle import (
    GenerationRecord,
    GenerationStatus,
    ResumePrep,
    TaskStatus,
)
from pkgbuilder.vcs import GitFailed, Repository, repo_lock


def _free_name(git: Repository, home: Path, now: datetime) -> str:
    """The generation name for ``now``, moved on by a second while it is taken (two starts in
    one second, or a name left by another repository in a shared home)."""
    when = now
    while True:
        name = naming.generation_name(when)
        taken = (
            git.branch_exists(name)
            or any(git.tag_exists(naming.tag_name(name, s)) for s in naming.TAG_SUFFIXES)
            or store.record_path(home, name).exists()
        )
        if not taken:
            return name
        when += timedelta(seconds=1)


def _squash_since(git: Repository, since: str, message: str) -> str:
    """Collapse every commit after ``since`` (and anything staged) into one commit: the
    seed's squash (`git reset --soft` to the recorded SHA, then one clean commit)."""
    git.reset_soft(since)
    return git.commit(message, allow_empty=True)


def start(
    root: Path,
    home: Path,
    *,
    base: str = "main",
    regenerate: Sequence[tuple[str, str]] = (),
    plan_path: str | None = None,
    now: datetime | None = None,
    log: Log = no_log,
) -> GenerationRecord:
    """Start a generation from ``base``.

    Args:
        root: any path inside the repository.
        home: ``$PKGBUILDER_HOME``.
        base: the branch to start from; it must be checked out with a clean tree.
        regenerate: (package name, repository-relative directory) of each package whose
            sources are removed so that the run generates it again.
        plan_path: master plan (repository-relative), remembered for `run`.
        now: the start time (the name is derived from it).
        log: receives ``(generation, message)`` lines.

    Returns:
        The saved record; the new branch is checked out, exactly one commit ahead of the
        ``-start`` tag.
    """
    git = open_repo(root)
    home = home.resolve()
    if not git.branch_exists(base):
        raise UserError(f"The base branch '{base}' does not exist; pass --base with a branch.")
    current = git.current_branch()
    if current != base:
        where = f"branch '{current}'" if current else "a detached HEAD"
        raise UserError(
            f"You are on {where}; switch to '{base}' (git switch {base}) before starting a "
            "generation."
        )
    changes = dirty(git, home)
    if changes:
        raise UserError(
            f"The working tree has {len(changes)} uncommitted change(s) (e.g. {changes[0]}); "
            "commit or stash them before starting a generation."
        )
    targets = [(pkg, confined(git.cwd, path)) for pkg, path in regenerate]
    ensure_excluded(git, home)
    with repo_lock(git):
        name = _free_name(git, home, now or datetime.now(UTC))
        start_commit = git.rev("HEAD")
        log(name, f"starting from {base} at {start_commit[:12]}")
        try:
            git.tag(naming.tag_name(name, "start"), start_commit, f"{name}: start from {base}")
            git.switch(name, create=True)
            for pkg, target in targets:
                rel = target.relative_to(git.cwd).as_posix()
                if git.remove_tracked(rel):
                    git.commit(f"chore(generation): remove sources of {pkg} ({rel})")
                # Untracked and ignored leftovers (dist/, node_modules/) go too: a package
                # without a directory is what `run` generates.
                remove_tree(target, git.cwd)
                log(name, f"removed sources of {pkg} ({rel}) for regeneration")
            lines = [f"chore(generation): start {name}", "", f"Base: {base} at {start_commit}"]
            if targets:
                lines.append("Regenerate: " + ", ".join(pkg for pkg, _ in targets))
            setup = _squash_since(git, start_commit, "\n".join(lines))
        except BaseException:
            _undo_start(git, base, name)
            raise
    record = GenerationRecord(
        name=name,
        repo=str(git.cwd),
        base_branch=base,
        start_commit=start_commit,
        setup_commit=setup,
        started_at=now or datetime.now(UTC),
        regenerate=[pkg for pkg, _ in targets],
        plan_path=plan_path,
    )
    store.save(home, record)
    log(name, f"started: branch {name}, setup commit {setup[:12]}")
    return record


def _undo_start(git: Repository, base: str, name: str) -> None:
    """Put the repository back as it was before a failed start (tree was clean)."""
    steps: list[Callable[[], object]] = [
        lambda: git.switch(base, force=True),
        lambda: git.delete_branch(name),
        lambda: git.delete_tag(naming.tag_name(name, "start")),
    ]
    for step in steps:
        with contextlib.suppress(GitFailed):
            step()


def switch(root: Path, home: Path, name: str, log: Log = no_log) -> str | None:
    """Commit work in progress (on a generation branch) and check out generation ``name``;
    returns the WIP commit, if one was made."""
    git = open_repo(root)
    name = resolve_generation(git, name)
    if git.current_branch() == name:
        return None
    wip = leave_branch(git, home, f"switch to {name}")
    if wip:
        log(git.current_branch(), f"committed work in progress {wip[:12]}")
    git.switch(name)
    log(name, "switched to this generation")
    return wip


def ensure_record(git: Repository, home: Path, name: str) -> GenerationRecord:
    """The record of ``name``; rebuilt from git when ``$PKGBUILDER_HOME`` was lost (the
    `-start` tag is the branch point, the base defaults to ``main``)."""
    record = store.load(home, name, git.cwd)
    if record is not None:
        return record
    start_tag = naming.tag_name(name, "start")
    start_commit = git.rev(start_tag) if git.tag_exists(start_tag) else git.rev(name)
    record = GenerationRecord(
        name=name,
        repo=str(git.cwd),
        base_branch="main",
        start_commit=start_commit,
        started_at=naming.generation_time(name),
    )
    store.save(home, record)
    return record


def stop(root: Path, home: Path, name: str | None = None, log: Log = no_log) -> GenerationRecord:
    """Finish a generation: tag ``-finished``, merge into the base with ``--no-ff``, tag the
    base ``-merged``, delete the generation branch and its leftover task branches/worktrees."""
    git = open_repo(root)
    home = home.resolve()
    explicit = name
    if (
        explicit
        and naming.is_generation(explicit)
        and not git.branch_exists(explicit)
        and (git.tag_exists(naming.tag_name(explicit, "merged")))
    ):
        record = ensure_record(git, home, explicit)
        if record.status != GenerationStatus.MERGED:
            # A stop interrupted after the merge: only the clean-up is left.
            return _finish_stop(git, home, record, log)
    name = resolve_generation(git, explicit, "a NAME argument")
    record = ensure_record(git, home, name)
    base = record.base_branch
    if not git.branch_exists(base):
        raise UserError(f"The base branch '{base}' of {name} no longer exists; recreate it.")
    if git.current_branch() == name:
        wip = commit_wip(git, home, name)
        if wip:
            log(name, f"committed work in progress {wip[:12]}")
    else:
        leave_branch(git, home, f"stop {name}")
    tip = git.rev(name)
    git.tag(naming.tag_name(name, "finished"), tip, f"{name}: finished")
    log(name, f"tagged {naming.tag_name(name, 'finished')} at {tip[:12]}")
    if git.current_branch() != base:
        git.switch(base)
    if not git.is_ancestor(tip, "HEAD"):
        try:
            git.merge(name, f"Merge {name} into {base}")
        except GitFailed as e:
            conflicts = git.unmerged_paths()
            git.abort_merge()
            with contextlib.suppress(GitFailed):
                git.delete_tag(naming.tag_name(name, "finished"))
            with contextlib.suppress(GitFailed):
                git.switch(name)
            if conflicts:
                raise UserError(
                    f"Merging {name} into '{base}' conflicts in {len(conflicts)} file(s) "
                    f"(e.g. {conflicts[0]}); merge '{base}' into {name}, resolve, and run "
                    "stop again."
                ) from e
            raise
    merged = git.rev("HEAD")
    git.tag(naming.tag_name(name, "merged"), merged, f"{name}: merged into {base}")
    log(name, f"merged into {base} at {merged[:12]}")
    record.finished_commit = tip
    record.merged_commit = merged
    return _finish_stop(git, home, record, log)


def _finish_stop(
    git: Repository, home: Path, record: GenerationRecord, log: Log
) -> GenerationRecord:
    name = record.name
    remove_task_leftovers(git, home, name)
    git.delete_branch(name)
    record.status = GenerationStatus.MERGED
    record.ended_at = datetime.now(UTC)
    if record.merged_commit is None:
        record.merged_commit = git.rev(naming.tag_name(name, "merged"))
    for task in record.tasks.values():
        if task.status == TaskStatus.IN_PROGRESS:
            task.status = TaskStatus.FAILED
            task.reason = task.reason or "the generation was stopped before the task finished"
        task.worktree = None
    store.save(home, record)
    log(name, "stopped: generation branch, task branches and worktrees removed")
    return record


def remove_task_leftovers(git: Repository, home: Path, name: str) -> list[str]:
    """Delete every task branch and worktree of generation ``name``."""
    packages: list[str] = []
    prefix = f"{naming.TASK_PREFIX}{name}-"
    for branch in git.branches(naming.task_branch_glob(name)):
        packages.append(branch.removeprefix(prefix))
    for slug in packages:
        remove_task_slug(git, home, name, slug)
    prune_worktrees(git, home, name)
    return packages


def resume_prep(root: Path, home: Path, name: str | None = None, log: Log = no_log) -> ResumePrep:
    """Get an interrupted generation ready to continue: switch to its branch (committing work in
    progress), prune stale worktrees, put stuck tasks back to pending and delete their branches,
    and list the pending tasks (they are finished before new ones start)."""
    git = open_repo(root)
    home = home.resolve()
    name = resolve_generation(git, name, "a NAME argument")
    record = ensure_record(git, home, name)
    prep = ResumePrep(generation=name)
    current = git.current_branch()
    if current == name:
        prep.wip_commit = commit_wip(git, home, name)
    else:
        prep.wip_commit = leave_branch(git, home, f"resume {name}")
        git.switch(name)
    if prep.wip_commit:
        log(current, f"committed work in progress {prep.wip_commit[:12]}")
    prep.pruned_worktrees = prune_worktrees(git, home, name)
    stuck = [t for t in record.tasks.values() if t.status == TaskStatus.IN_PROGRESS]
    for task in stuck:
        remove_task(git, home, name, task.package)
        log(name, f"reset stuck task {task.package} (attempt {task.attempts}) to pending")
    prep.reset_tasks = [t.package for t in stuck]

    def change(rec: GenerationRecord) -> None:
        for task in rec.tasks.values():
            if task.status == TaskStatus.IN_PROGRESS:
                task.status = TaskStatus.PENDING
                task.reason = "reset by resume after an interrupted run"
                task.worktree = None
        prep.pending_tasks = [
            t.package for t in rec.tasks.values() if t.status == TaskStatus.PENDING
        ]

    store.update(home, name, change)
    log(name, f"ready to resume: {len(prep.pending_tasks)} pending task(s)")
    return prep
