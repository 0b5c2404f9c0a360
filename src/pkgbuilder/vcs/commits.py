"""Commits of exactly the named paths, and finding a commit again by its message.

Never ``git add -A``: only the named paths are staged and committed (``git commit --only``),
so files other builds are writing in the same checkout, staged or not, stay out. A trailer
or marker line in the message lets a retried activity find its own earlier commit instead
of committing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pkgbuilder.vcs.porcelain import LOG_FORMAT, log_records, z_list
from pkgbuilder.vcs.repository import Repository

# How far back a retried activity looks for its own commit.
LOOKBACK_COMMITS = 500


@dataclass(frozen=True)
class CommitOutcome:
    commit: str | None
    already_committed: bool = False
    note: str | None = None


def literal(paths: Sequence[str]) -> list[str]:
    """Pathspecs that match exactly these names (a model may name a file ``*.js``)."""
    return [f":(literal){p}" for p in paths]


def find_commit(
    repo: Repository,
    *needles: str,
    rev: str = "HEAD",
    since: str | None = None,
    trailer: str | None = None,
    limit: int | None = None,
) -> str | None:
    """The newest commit reachable from ``rev`` (and not from ``since``) whose message
    contains every needle and, when given, has ``trailer`` as one of its lines; None when
    there is none or ``rev`` names no commit (an unborn branch)."""
    if not repo.is_commit(rev):
        return None
    args = ["log", LOG_FORMAT]
    if limit:
        args += ["-n", str(limit)]
    args.append(rev if since is None else f"{since}..{rev}")
    for sha, body in log_records(repo.run(*args)):
        if all(n in body for n in needles) and (trailer is None or trailer in body.splitlines()):
            return sha
    return None


def find_commit_by_trailer(
    repo: Repository, trailer: str, rev: str = "HEAD", limit: int = LOOKBACK_COMMITS
) -> str | None:
    """A recent commit (of the last ``limit`` on ``rev``) carrying ``trailer`` as a line."""
    return find_commit(repo, rev=rev, trailer=trailer, limit=limit)


def changed_among(repo: Repository, paths: Sequence[str]) -> list[str]:
    """Which of ``paths`` (relative to ``cwd``) differ from HEAD or are untracked."""
    prefix = repo.prefix()
    dirty = {p.removeprefix(prefix) for p in repo.status_paths(list(paths))}
    return [p for p in paths if p in dirty]


def commit_only(
    repo: Repository, paths: Sequence[str], subject: str, trailer: str
) -> CommitOutcome:
    """Stage and commit only those of ``paths`` (relative to ``cwd``) that changed, with
    ``trailer`` as the message's last paragraph; idempotent: when nothing changed, the
    earlier commit carrying ``trailer`` is returned."""
    if not repo.is_work_tree():
        return CommitOutcome(None, note="workspace is not a git repository; changes not committed")
    paths = list(dict.fromkeys(paths))
    dirty = changed_among(repo, paths) if paths else []
    if not dirty:
        earlier = find_commit_by_trailer(repo, trailer)
        if earlier:
            return CommitOutcome(earlier, already_committed=True, note="already committed")
        return CommitOutcome(None, note="the answer changed no file; nothing to commit")
    repo.run("add", "--", *literal(dirty))
    # --no-verify: hooks of the user's repository (lint-staged, ...) are not ours to run
    # here; pkgbuilder re-runs build, tests and quality checks right after such a commit.
    repo.run(
        "commit",
        "--no-verify",
        "-q",
        "-m",
        subject,
        "-m",
        trailer,
        "--only",
        "--",
        *literal(dirty),
    )
    return CommitOutcome(repo.rev("HEAD"))


def commit_exact(
    repo: Repository, paths: Sequence[str], message_for: Callable[[list[str]], str]
) -> tuple[str, list[str]]:
    """Commit exactly ``paths`` (relative to ``cwd``; created, updated or deleted), even if
    nothing changed. ``message_for`` gets the paths that really changed (relative to the
    top level) and returns the commit message.

    Returns:
        (commit sha, changed paths relative to the top level)
    """
    changed: list[str] = []
    if paths:
        prefix = repo.prefix()
        tracked = set(z_list(repo.run("ls-files", "-z", "--full-name", "--", *literal(paths))))
        # A delete of a file that never existed names a path git does not know: skip it.
        present = [p for p in paths if (repo.cwd / p).exists() or f"{prefix}{p}" in tracked]
        if present:
            repo.run("add", "--all", "--", *literal(present))
            out = repo.run(
                "diff",
                "--cached",
                "--name-only",
                "-z",
                "--no-renames",
                "HEAD",
                "--",
                *literal(present),
            )
            changed = sorted(z_list(out))
    args = [
        "commit",
        "--quiet",
        "--no-verify",
        "--allow-empty",
        "--only",
        "-m",
        message_for(changed),
    ]
    if changed:
        args += ["--", *(f":(top,literal){p}" for p in changed)]
    repo.run(*args)
    return repo.rev("HEAD"), changed
