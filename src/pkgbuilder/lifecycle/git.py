"""A small git runner: argv lists, explicit cwd, timeout and a scrubbed environment.

Everything pkgbuilder does to a repository goes through :class:`Git`, so the rules (no shell
strings, no inherited ``GIT_DIR``, no secrets in git's environment, no interactive prompts)
live in one place.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pkgbuilder.errors import UserError
from pkgbuilder.steps.shell import is_secret_env_name
from pkgbuilder.util.filelock import file_lock

# Variables a git hook or a parent git process may leave behind; inherited, they would make
# every command act on another repository.
GIT_LOCAL_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX")
FALLBACK_IDENTITY = ("pkgbuilder", "pkgbuilder@localhost")
DEFAULT_TIMEOUT = 120.0


class GitError(UserError):
    """A git command failed; the message names the command and git's own first line."""

    exit_code = 1

    def __init__(self, argv: list[str], cwd: Path, returncode: int, stderr: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
        first = next((ln.strip() for ln in stderr.splitlines() if ln.strip()), "no output")
        super().__init__(f"'git {' '.join(argv[:2])}' failed in {cwd}: {first.rstrip('.')}.")


@dataclass(frozen=True)
class Worktree:
    """One entry of ``git worktree list --porcelain``."""

    path: Path
    head: str | None
    branch: str | None  # short name, None when detached
    prunable: bool = False


def git_env() -> dict[str, str]:
    """The environment of every git call: secrets scrubbed (git runs hooks, which are the
    repository's code) and repository-local variables removed."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in GIT_LOCAL_ENV and not is_secret_env_name(k)
    }
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"  # git's messages are parsed in a few places
    return env


class Git:
    """Runs git in one working tree (``cwd``)."""

    def __init__(self, cwd: Path | str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.cwd = Path(cwd)
        self.timeout = timeout
        self._env: dict[str, str] | None = None

    @property
    def env(self) -> dict[str, str]:
        if self._env is None:
            env = git_env()
            # Commits made by pkgbuilder must not fail on a machine without a git identity.
            probe = subprocess.run(
                ["git", "config", "user.email"],
                cwd=self.cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
            if not probe.stdout.strip():
                name, email = FALLBACK_IDENTITY
                for who in ("AUTHOR", "COMMITTER"):
                    env.setdefault(f"GIT_{who}_NAME", name)
                    env.setdefault(f"GIT_{who}_EMAIL", email)
            self._env = env
        return self._env

    def run(self, *args: str, check: bool = True, input: str | None = None) -> str:
        """Run ``git ARGS``; returns stdout with the trailing newline stripped."""
        argv = list(args)
        try:
            proc = subprocess.run(
                ["git", *argv],
                cwd=self.cwd,
                env=self.env,
                capture_output=True,
                text=True,
                input=input,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise GitError(argv, self.cwd, -1, f"timed out after {self.timeout:.0f}s") from e
        if check and proc.returncode != 0:
            raise GitError(argv, self.cwd, proc.returncode, proc.stderr or proc.stdout)
        return proc.stdout.rstrip("\n")

    def ok(self, *args: str) -> bool:
        """True when ``git ARGS`` exits 0 (for predicates such as ``show-ref --verify``)."""
        try:
            self.run(*args)
        except GitError:
            return False
        return True

    # ---- queries ------------------------------------------------------------------------

    def toplevel(self) -> Path:
        return Path(self.run("rev-parse", "--show-toplevel")).resolve()

    def common_dir(self) -> Path:
        path = Path(self.run("rev-parse", "--git-common-dir"))
        return (path if path.is_absolute() else self.cwd / path).resolve()

    def current_branch(self) -> str | None:
        """The checked-out branch, or None when HEAD is detached."""
        out = self.run("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        return out or None

    def rev(self, ref: str) -> str:
        return self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")

    def branch_exists(self, branch: str) -> bool:
        return self.ok("show-ref", "--verify", "--quiet", f"refs/heads/{branch}")

    def tag_exists(self, tag: str) -> bool:
        return self.ok("show-ref", "--verify", "--quiet", f"refs/tags/{tag}")

    def branches(self, pattern: str) -> list[str]:
        out = self.run("for-each-ref", "--format=%(refname:short)", f"refs/heads/{pattern}")
        return [ln for ln in out.splitlines() if ln]

    def tags(self, pattern: str) -> list[str]:
        out = self.run("for-each-ref", "--format=%(refname:short)", f"refs/tags/{pattern}")
        return [ln for ln in out.splitlines() if ln]

    def dirty_paths(self, exclude: list[str] | None = None) -> list[str]:
        """Modified, staged and untracked (not ignored) paths, minus ``exclude`` prefixes."""
        paths = porcelain_paths(self.run("status", "--porcelain=v1", "-z", "--untracked-files=all"))
        skip = [e.rstrip("/") + "/" for e in exclude or []]
        return [p for p in paths if not any((p + "/").startswith(s) for s in skip)]

    def count(self, rev_range: str) -> int:
        return int(self.run("rev-list", "--count", rev_range))

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.ok("merge-base", "--is-ancestor", ancestor, descendant)

    def changed_files(self, base: str, tip: str) -> list[str]:
        """Paths changed on ``tip`` since it forked from ``base`` (``base...tip``)."""
        out = self.run("diff", "--name-only", "-z", "--no-renames", f"{base}...{tip}")
        return [p for p in out.split("\0") if p]

    def worktrees(self) -> list[Worktree]:
        out = self.run("worktree", "list", "--porcelain")
        result: list[Worktree] = []
        for block in out.split("\n\n"):
            fields: dict[str, str] = {}
            for line in block.splitlines():
                key, _, value = line.partition(" ")
                fields[key] = value
            if "worktree" not in fields:
                continue
            branch = fields.get("branch")
            result.append(
                Worktree(
                    path=Path(fields["worktree"]),
                    head=fields.get("HEAD"),
                    branch=branch.removeprefix("refs/heads/") if branch else None,
                    prunable="prunable" in fields,
                )
            )
        return result

    # ---- changes ------------------------------------------------------------------------

    def commit(self, message: str, *, allow_empty: bool = False) -> str:
        """Commit what is staged (hooks skipped: these are pkgbuilder's own bookkeeping
        commits); returns the new HEAD."""
        args = ["commit", "--quiet", "--no-verify", "-m", message]
        if allow_empty:
            args.append("--allow-empty")
        self.run(*args)
        return self.rev("HEAD")

    def stage_all(self, exclude: list[str] | None = None) -> None:
        """Stage every change of this working tree except the ``exclude`` directories."""
        pathspec = ["."] + [f":(exclude){e}" for e in exclude or []]
        self.run("add", "--all", "--", *pathspec)

    def tag(self, name: str, target: str, message: str) -> None:
        """Annotated tag (it records who and when); an existing tag on ``target`` is kept."""
        if self.tag_exists(name):
            if self.rev(name) == self.rev(target):
                return
            raise UserError(f"Tag '{name}' already exists on another commit; delete it first.")
        self.run("tag", "--annotate", "--message", message, name, target)


def porcelain_paths(out: str) -> list[str]:
    """The paths of ``git status --porcelain=v1 -z`` output, relative to the repository's
    top level (a rename's source path is skipped)."""
    paths: list[str] = []
    entries = out.split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        if entry[0] in "RC":  # a rename is followed by its source path
            i += 1
        paths.append(entry[3:])
    return paths


@contextlib.contextmanager
def repo_lock(git: Git) -> Iterator[None]:
    """Serialise pkgbuilder's own ref and worktree updates of one repository (parallel task
    activities of one worker, or of several workers on one machine)."""
    with file_lock(git.common_dir() / "pkgbuilder.lock"):
        yield
