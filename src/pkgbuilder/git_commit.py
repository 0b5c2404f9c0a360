"""Commit exactly the given paths, idempotently (several builds share one repository).

Never ``git add -A``: only the named paths are staged and committed (``git commit --only``
semantics), so files other package builds are writing at the same time stay out. A trailer
with a unique key (the request hash) lets a retried activity find its own earlier commit.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from temporalio.exceptions import ApplicationError

from pkgbuilder.lifecycle.git import git_env, porcelain_paths

GIT_TIMEOUT_SECONDS = 120
DEFAULT_IDENTITY = ("-c", "user.name=pkgbuilder", "-c", "user.email=pkgbuilder@localhost")
# How far back a retried activity looks for its own commit.
LOOKBACK_COMMITS = 500


@dataclass(frozen=True)
class CommitOutcome:
    commit: str | None
    already_committed: bool = False
    note: str | None = None


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run git (argv list, literal pathspecs, no prompts, timeout); raises ApplicationError."""
    argv = ["git", "--literal-pathspecs", *args]
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=git_env(),  # secrets scrubbed, GIT_DIR & co. removed
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise ApplicationError(f"git {args[0]} timed out in {cwd}", type="GitBusy") from e
    if check and proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip()[-2000:]
        if "index.lock" in err:
            # Another build is committing in the same repository: try again later.
            raise ApplicationError(f"git {args[0]} found the index locked: {err}", type="GitBusy")
        raise ApplicationError(
            f"git {args[0]} failed in {cwd}: {err}", type="GitCommitFailed", non_retryable=True
        )
    return proc


def is_work_tree(cwd: Path) -> bool:
    proc = git(cwd, "rev-parse", "--is-inside-work-tree", check=False)
    return proc.returncode == 0 and proc.stdout.strip() == "true"


def dirty_paths(cwd: Path, paths: Sequence[str]) -> list[str]:
    """Which of ``paths`` (relative to ``cwd``) differ from HEAD or are untracked."""
    prefix = git(cwd, "rev-parse", "--show-prefix").stdout.strip()
    out = git(cwd, "status", "--porcelain", "-z", "--untracked-files=all", "--", *paths).stdout
    # Porcelain paths are relative to the repository root.
    dirty = {p.removeprefix(prefix) for p in porcelain_paths(out)}
    return [p for p in paths if p in dirty]


def find_commit_with(cwd: Path, trailer: str) -> str | None:
    """Hash of a recent commit whose message contains ``trailer``."""
    proc = git(cwd, "log", "-n", str(LOOKBACK_COMMITS), "--format=%H%x00%B%x1e", check=False)
    if proc.returncode != 0:  # e.g. no commit yet
        return None
    for record in proc.stdout.split("\x1e"):
        sha, _, body = record.strip("\n").partition("\0")
        if trailer in body.splitlines():
            return sha
    return None


def commit_paths(cwd: Path, paths: Sequence[str], subject: str, trailer: str) -> CommitOutcome:
    """Stage and commit only ``paths`` (relative to ``cwd``); idempotent via ``trailer``."""
    if not is_work_tree(cwd):
        return CommitOutcome(None, note="workspace is not a git repository; changes not committed")
    paths = list(dict.fromkeys(paths))
    dirty = dirty_paths(cwd, paths) if paths else []
    if not dirty:
        earlier = find_commit_with(cwd, trailer)
        if earlier:
            return CommitOutcome(earlier, already_committed=True, note="already committed")
        return CommitOutcome(None, note="the answer changed no file; nothing to commit")
    git(cwd, "add", "--", *dirty)
    identity: tuple[str, ...] = ()
    if git(cwd, "config", "user.email", check=False).returncode != 0:
        identity = DEFAULT_IDENTITY
    # --no-verify: hooks of the user's repo (lint-staged, ...) are not ours to run here; the
    # workflow re-runs build, tests and quality checks right after this commit.
    git(
        cwd,
        *identity,
        "commit",
        "--no-verify",
        "-q",
        "-m",
        subject,
        "-m",
        trailer,
        "--only",
        "--",
        *dirty,
    )
    return CommitOutcome(git(cwd, "rev-parse", "HEAD").stdout.strip())
