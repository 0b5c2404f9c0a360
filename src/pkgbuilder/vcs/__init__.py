"""The one git layer: every git process pkgbuilder starts is started here.

Built on GitPython, with the environment under our control (:mod:`.command`): secrets
scrubbed, repository-local variables (``GIT_DIR``, ``GIT_WORK_TREE``, ``GIT_INDEX_FILE`` & co.)
removed, no prompts. :class:`Repository` is the handle; :mod:`.commits` commits exactly the
named paths and finds a commit again by a trailer. Failures are this layer's own exceptions
(:class:`GitBusy` when another process holds a lock: try again later; :class:`GitFailed`
with git's first line), never Temporal's: activities decide what they mean for a retry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pkgbuilder.vcs.commits import (
    LOOKBACK_COMMITS,
    CommitOutcome,
    commit_exact,
    commit_only,
    find_commit,
    find_commit_by_trailer,
    literal,
)
from pkgbuilder.vcs.env import FALLBACK_IDENTITY, GIT_LOCAL_ENV, git_env
from pkgbuilder.vcs.errors import GitBusy, GitFailed, GitNotInstalled, NotARepository, VcsError
from pkgbuilder.vcs.porcelain import Worktree, porcelain_paths
from pkgbuilder.vcs.repository import Repository


@contextlib.contextmanager
def repo_lock(repo: Repository) -> Iterator[None]:
    """:meth:`Repository.locked` as a function."""
    with repo.locked():
        yield


__all__ = [
    "FALLBACK_IDENTITY",
    "GIT_LOCAL_ENV",
    "LOOKBACK_COMMITS",
    "CommitOutcome",
    "GitBusy",
    "GitFailed",
    "GitNotInstalled",
    "NotARepository",
    "Repository",
    "VcsError",
    "Worktree",
    "commit_exact",
    "commit_only",
    "find_commit",
    "find_commit_by_trailer",
    "git_env",
    "literal",
    "porcelain_paths",
    "repo_lock",
]
