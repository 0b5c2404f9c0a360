"""A handle on one git working directory: the only place pkgbuilder starts git.

Commands run as argv lists (:mod:`pkgbuilder.vcs.process`), in the handle's directory, with a
timeout and the scrubbed environment; a few reads go through GitPython's object model
(:attr:`Repository.repo`, loaded on first use). Paths given to and returned by the methods
are relative to that directory unless a docstring says otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pkgbuilder.util.filelock import file_lock
from pkgbuilder.vcs.env import fallback_identity_env
from pkgbuilder.vcs.errors import (
    GitBusy,
    GitFailed,
    GitNotInstalled,
    NotARepository,
    VcsError,
)
from pkgbuilder.vcs.porcelain import Worktree, porcelain_paths, worktree_list, z_list
from pkgbuilder.vcs.process import GitRunner, GitTimeout

if TYPE_CHECKING:
    from pkgbuilder.vcs.command import ScrubbedRepo

DEFAULT_TIMEOUT = 120.0
# Commands that record an author, committer or tagger.
_IDENTITY_COMMANDS = frozenset(
    {
        "am",
        "cherry-pick",
        "commit",
        "commit-tree",
        "merge",
        "notes",
        "rebase",
        "revert",
        "stash",
        "tag",
    }
)
# git's words for "another process holds the lock".
_BUSY_MARKERS = ("index.lock", ".lock': File exists", "cannot lock ref")


class Repository:
    """Runs git in one working directory (``cwd``)."""

    def __init__(self, cwd: Path | str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.cwd = Path(cwd)
        self.timeout = timeout
        self._cmd = GitRunner(self.cwd)
        self._identity_checked = False
        self._repo: ScrubbedRepo | None = None

    @classmethod
    def open(cls, path: Path | str, timeout: float = DEFAULT_TIMEOUT) -> Repository:
        """A handle on ``path``, which must lie in a git working tree.

        Raises:
            NotARepository: it does not.
        """
        repo = cls(path, timeout)
        if not repo.is_work_tree():
            raise NotARepository(f"{path} is not inside a git repository.")
        return repo

    # ---- running git --------------------------------------------------------------------

    def run(self, *args: str, check: bool = True) -> str:
        """Run ``git ARGS``; returns stdout with trailing newlines stripped.

        Raises:
            GitBusy: a lock of the repository is held, or git timed out.
            GitFailed: git exited non-zero (only when ``check``).
            GitNotInstalled: there is no git.
        """
        argv = list(args)
        if not self._identity_checked and argv and argv[0] in _IDENTITY_COMMANDS:
            self._ensure_identity()
        status, out, err = self._execute(argv)
        if check and status != 0:
            if any(marker in err for marker in _BUSY_MARKERS):
                raise GitBusy(argv, self.cwd, status, err or out)
            raise GitFailed(argv, self.cwd, status, err or out)
        return out.rstrip("\n")

    def ok(self, *args: str) -> bool:
        """True when ``git ARGS`` exits 0 (for predicates such as ``show-ref --verify``)."""
        return self._execute(list(args))[0] == 0

    def _execute(self, argv: list[str]) -> tuple[int, str, str]:
        try:
            status, out, err = self._cmd.run(argv, self.timeout)
        except GitTimeout as e:
            raise GitBusy(argv, self.cwd, -1, str(e)) from e
        return status, str(out), err

    def _ensure_identity(self) -> None:
        """Commits made by pkgbuilder must not fail on a machine without a git identity."""
        self._identity_checked = True
        status, out, _ = self._execute(["config", "user.email"])
        if status != 0 or not out.strip():
            self._cmd.update_environment(**fallback_identity_env())

    @property
    def repo(self) -> ScrubbedRepo:
        """GitPython's view of the repository (its commands run scrubbed, too).

        Raises:
            NotARepository: ``cwd`` is not inside one.
        """
        if self._repo is None:
            from pkgbuilder.vcs.command import open_gitpython_repo

            self._repo = open_gitpython_repo(self.cwd)
            if self._repo is None:
                raise NotARepository(f"{self.cwd} is not inside a git repository.")
        return self._repo

    # ---- where ---------------------------------------------------------------------------

    def is_repository(self) -> bool:
        """Whether ``cwd`` is inside a git repository (a work tree or a git directory)."""
        try:
            return self.ok("rev-parse", "--git-dir")
        except NotARepository:
            return False

    def is_work_tree(self) -> bool:
        try:
            return self.run("rev-parse", "--is-inside-work-tree", check=False) == "true"
        except (GitNotInstalled, NotARepository):
            return False

    def toplevel(self) -> Path:
        return Path(self.run("rev-parse", "--show-toplevel")).resolve()

    def prefix(self) -> str:
        """``cwd`` relative to the top level, with a trailing slash ('' at the top)."""
        return self.run("rev-parse", "--show-prefix")

    def common_dir(self) -> Path:
        path = Path(self.run("rev-parse", "--git-common-dir"))
        return (path if path.is_absolute() else self.cwd / path).resolve()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise pkgbuilder's own ref and worktree updates of this repository (parallel
        activities of one worker, or of several workers on one machine)."""
        with file_lock(self.common_dir() / "pkgbuilder.lock"):
            yield

    # ---- commits and refs ---------------------------------------------------------------

    def head_commit(self) -> str | None:
        """The commit HEAD points at; None before the first commit."""
        from pkgbuilder.vcs.command import SymbolicReference

        try:
            # Read from the ref files in-process: no object lookup, so no git process.
            return SymbolicReference.dereference_recursive(self.repo, "HEAD")
        except ValueError:  # unborn branch
            return None

    def current_branch(self) -> str | None:
        """The checked-out branch, or None when HEAD is detached."""
        head = self.repo.head
        return None if head.is_detached else head.ref.name

    def rev(self, ref: str) -> str:
        return self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")

    def is_commit(self, ref: str) -> bool:
        return self.ok("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")

    def branch_exists(self, branch: str) -> bool:
        return self._ref_exists(f"refs/heads/{branch}")

    def tag_exists(self, tag: str) -> bool:
        return self._ref_exists(f"refs/tags/{tag}")

    def _ref_exists(self, ref: str) -> bool:
        from pkgbuilder.vcs.command import SymbolicReference

        try:  # loose ref files and packed-refs, read in-process
            SymbolicReference.dereference_recursive(self.repo, ref)
        except ValueError:
            return False
        return True

    def branches(self, pattern: str) -> list[str]:
        out = self.run("for-each-ref", "--format=%(refname:short)", f"refs/heads/{pattern}")
        return [ln for ln in out.splitlines() if ln]

    def tags(self, pattern: str) -> list[str]:
        out = self.run("for-each-ref", "--format=%(refname:short)", f"refs/tags/{pattern}")
        return [ln for ln in out.splitlines() if ln]

    def count(self, rev_range: str) -> int:
        return int(self.run("rev-list", "--count", rev_range))

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.ok("merge-base", "--is-ancestor", ancestor, descendant)

    def changed_files(self, base: str, tip: str) -> list[str]:
        """Paths changed on ``tip`` since it forked from ``base`` (``base...tip``), relative
        to the top level."""
        return z_list(self.run("diff", "--name-only", "-z", "--no-renames", f"{base}...{tip}"))

    def delete_branch(self, branch: str) -> bool:
        """Delete ``branch`` (merged or not); False when it did not exist."""
        if not self.branch_exists(branch):
            return False
        self.run("branch", "--quiet", "-D", branch)
        return True

    def create_branch(self, branch: str, start: str) -> None:
        self.run("branch", branch, start)

    def merge_base(self, a: str, b: str) -> str:
        return self.run("merge-base", a, b)

    def commit_files(self, rev: str) -> list[str]:
        """Paths ``rev`` changed against its first parent, relative to the top level."""
        return z_list(self.run("show", "--format=", "--name-only", "-z", "--no-renames", rev))

    def delete_tag(self, tag: str) -> bool:
        """Delete ``tag``; False when it did not exist."""
        if not self.tag_exists(tag):
            return False
        self.run("tag", "-d", tag)
        return True

    def tag(self, name: str, target: str, message: str) -> None:
        """Annotated tag (it records who and when); an existing tag on ``target`` is kept.

        Raises:
            VcsError: the tag exists on another commit.
        """
        if self.tag_exists(name):
            if self.rev(name) == self.rev(target):
                return
            raise VcsError(f"Tag '{name}' already exists on another commit; delete it first.")
        self.run("tag", "--annotate", "--message", message, name, target)

    # ---- the working tree ---------------------------------------------------------------

    def status_paths(self, paths: list[str] | None = None) -> list[str]:
        """Modified, staged and untracked (not ignored) paths, relative to the top level;
        only under ``paths`` (literal, relative to ``cwd``) when given."""
        spec = ["--", *(f":(literal){p}" for p in paths)] if paths else []
        return porcelain_paths(
            self.run("status", "--porcelain=v1", "-z", "--untracked-files=all", *spec)
        )

    def dirty_paths(self, exclude: list[str] | None = None) -> list[str]:
        """:meth:`status_paths` of the whole tree minus the ``exclude`` directories."""
        skip = [e.rstrip("/") + "/" for e in exclude or []]
        return [p for p in self.status_paths() if not any((p + "/").startswith(s) for s in skip)]

    def is_dirty(self, path: str | None = None) -> bool:
        """Whether anything (tracked or untracked, not ignored) differs from HEAD, under
        ``path`` when given."""
        return bool(self.status_paths([path] if path else None))

    def tracked_files(self, path: str = ".", *, untracked: bool = False) -> list[str]:
        """Files git tracks under ``path``, relative to ``cwd``, sorted; with ``untracked``
        also the files it would track (untracked and not ignored)."""
        args = ["ls-files", "-z", "--cached"]
        if untracked:
            args += ["--others", "--exclude-standard"]
        return sorted(set(z_list(self.run(*args, "--", f":(literal){path}"))))

    def stage_all(self, exclude: list[str] | None = None) -> None:
        """Stage every change of this working tree except the ``exclude`` directories."""
        pathspec = ["."] + [f":(exclude){e}" for e in exclude or []]
        self.run("add", "--all", "--", *pathspec)

    def switch(self, branch: str, *, create: bool = False, force: bool = False) -> None:
        """Check out ``branch`` (made at HEAD when ``create``; local changes thrown away when
        ``force``)."""
        args = ["switch", "--quiet"]
        if force:
            args.append("--force")
        if create:
            args.append("-c")
        self.run(*args, branch)

    def checkout(self, branch: str) -> None:
        """``git checkout`` (uncommitted changes git can carry over are carried over)."""
        self.run("checkout", "--quiet", branch)

    def merge(self, branch: str, message: str, *, verify: bool = True) -> str:
        """Merge ``branch`` into the checked-out branch with a merge commit (``--no-ff``);
        returns it. A failed merge is left in progress: see :meth:`abort_merge`."""
        args = ["merge", "--no-ff", "--no-edit"]
        if not verify:
            args.append("--no-verify")
        self.run(*args, "-m", message, branch)
        return self.rev("HEAD")

    def abort_merge(self) -> None:
        """Abandon a merge in progress (nothing happens when there is none)."""
        self.run("merge", "--abort", check=False)

    def unmerged_paths(self) -> list[str]:
        """Paths with unresolved conflicts, relative to the top level."""
        return z_list(self.run("diff", "--name-only", "--diff-filter=U", "-z", check=False))

    def has_staged_changes(self) -> bool:
        return not self.ok("diff", "--cached", "--quiet")

    def reset_soft(self, rev: str) -> None:
        """Move the branch to ``rev``, keeping index and working tree (for a squash)."""
        self.run("reset", "--soft", rev)

    def remove_tracked(self, path: str) -> bool:
        """``git rm -r`` the tracked files under ``path``; False when none are tracked."""
        if not self.tracked_files(path):
            return False
        self.run("rm", "-r", "-q", "--", f":(literal){path}")
        return True

    def commit(self, message: str, *, allow_empty: bool = False) -> str:
        """Commit what is staged (hooks skipped: these are pkgbuilder's own bookkeeping
        commits); returns the new HEAD."""
        args = ["commit", "--quiet", "--no-verify", "-m", message]
        if allow_empty:
            args.append("--allow-empty")
        self.run(*args)
        return self.rev("HEAD")

    # ---- worktrees ----------------------------------------------------------------------

    def worktrees(self) -> list[Worktree]:
        """Every worktree of the repository, the main one first."""
        return worktree_list(self.run("worktree", "list", "--porcelain"))

    def main_worktree(self) -> Path:
        found = self.worktrees()
        return found[0].path if found else self.toplevel()

    def add_worktree(
        self, path: Path, ref: str, *, new_branch: str | None = None, detach: bool = False
    ) -> bool:
        """Check out ``ref`` at ``path`` (on a new branch ``new_branch`` made from ``ref``,
        or detached); False when a healthy worktree of that checkout is already there."""
        path = Path(path)
        want = new_branch or (None if detach else ref)
        for wt in self.worktrees():
            healthy = wt.path == path and not wt.prunable and (path / ".git").exists()
            if healthy and (want is None or wt.branch == want):
                return False
        path.parent.mkdir(parents=True, exist_ok=True)
        args = ["worktree", "add", "--quiet"]
        if detach:
            args.append("--detach")
        if new_branch:
            args += ["-b", new_branch]
        self.run(*args, str(path), ref)
        return True

    def remove_worktree(self, path: Path) -> bool:
        """Unregister the worktree at ``path`` and delete its files (uncommitted changes
        too); False when git knew no worktree there."""
        path = Path(path)
        if not any(wt.path == path for wt in self.worktrees()):
            return False
        self.run("worktree", "remove", "--force", "--force", str(path))
        return True

    def prune_worktrees(self) -> list[Path]:
        """Forget worktrees whose directories are gone; returns their paths."""
        stale = [wt.path for wt in self.worktrees() if wt.prunable]
        self.run("worktree", "prune")
        return stale
