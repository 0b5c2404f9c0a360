"""GitPython's command runner, with the environment under our control.

``git.cmd.Git.execute`` starts every process from a copy of ``os.environ`` and can only add
to it, so an inherited ``GIT_DIR`` or an API key would reach git and the repository's hooks.
:class:`ScrubbedGit` runs the same commands with exactly :func:`pkgbuilder.vcs.env.git_env`
(plus the variables set through GitPython's ``update_environment``). Every git process of
pkgbuilder, those GitPython's object model starts included, goes through it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# GitPython runs `git version` when imported and raises ImportError where git is missing;
# pkgbuilder must still start there (and say in one sentence what needs git). This module is
# the only one that imports GitPython, so the setting is in place before it loads.
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import git
from git.compat import safe_decode
from git.exc import (
    GitCommandError,
    GitCommandNotFound,
    InvalidGitRepositoryError,
    NoSuchPathError,
)
from git.refs.symbolic import SymbolicReference

from pkgbuilder.vcs.env import git_env
from pkgbuilder.vcs.errors import GitNotInstalled, NotARepository


class ScrubbedGit(git.cmd.Git):
    """A :class:`git.cmd.Git` whose processes see :func:`git_env`, never ``os.environ``."""

    def execute(
        self,
        command: str | Sequence[Any],
        istream: Any = None,
        with_extended_output: bool = False,
        with_exceptions: bool = True,
        as_process: bool = False,
        output_stream: Any = None,
        stdout_as_string: bool = True,
        kill_after_timeout: float | None = None,
        with_stdout: bool = True,
        universal_newlines: bool = False,
        shell: bool | None = None,
        env: Mapping[str, str] | None = None,
        max_chunk_size: int = 0,
        strip_newline_in_stdout: bool = True,
        **subprocess_kwargs: Any,
    ) -> Any:
        if isinstance(command, str) or shell or universal_newlines or output_stream is not None:
            # pkgbuilder passes argv lists and reads output itself; refuse the rest loudly.
            raise ValueError("ScrubbedGit runs argv lists only, without a shell or stream")
        argv = [str(a) for a in command]
        full_env = {**git_env(), **self._environment, **(env or {})}
        cwd = self._working_dir or None
        stdout = subprocess.PIPE if with_stdout else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(
                argv,
                env=full_env,
                cwd=cwd,
                stdin=istream if istream is not None else subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.PIPE,
                **subprocess_kwargs,
            )
        except FileNotFoundError as e:
            raise GitCommandNotFound(argv, e) from e
        if as_process:
            return self.AutoInterrupt(proc, argv)
        try:
            out, err = proc.communicate(timeout=kill_after_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise GitCommandError(
                argv, -9, f"timed out after {kill_after_timeout:g}s".encode(), out
            ) from None
        out = out or b""
        if strip_newline_in_stdout and out.endswith(b"\n"):
            out = out[:-1]
        err = (err or b"").removesuffix(b"\n")
        if with_exceptions and proc.returncode != 0:
            raise GitCommandError(argv, proc.returncode, err, out)
        stdout_value: str | bytes = safe_decode(out) if stdout_as_string else out
        if with_extended_output:
            return proc.returncode, stdout_value, safe_decode(err)
        return stdout_value

    def run(
        self, cwd: Path, argv: list[str], timeout: float, *, binary: bool = False
    ) -> tuple[int, str | bytes, str]:
        """Run ``git ARGV`` in ``cwd``; (status, stdout, stderr). The one place the vcs layer
        maps GitPython's exceptions: a missing git or directory, and a timeout (raised as
        :class:`GitTimeout`, which each caller turns into its own error type)."""
        if not cwd.is_dir():
            raise NotARepository(f"{cwd} is not a directory, so not a git repository.")
        try:
            status, out, err = self.execute(
                [self.GIT_PYTHON_GIT_EXECUTABLE or "git", *argv],
                with_extended_output=True,
                with_exceptions=False,
                stdout_as_string=not binary,
                strip_newline_in_stdout=False,
                kill_after_timeout=timeout,
            )
        except GitCommandNotFound as e:
            raise GitNotInstalled("git is not installed (or not on PATH).") from e
        except GitCommandError as e:  # only raised for a timeout here
            raise GitTimeout(f"timed out after {timeout:.0f}s") from e
        return int(status), out, str(err)


class GitTimeout(Exception):
    """``ScrubbedGit.run`` hit its timeout (the message says after how long)."""


class ScrubbedRepo(git.Repo):
    """A :class:`git.Repo` whose commands run through :class:`ScrubbedGit`."""

    GitCommandWrapperType = ScrubbedGit


def open_gitpython_repo(path: Path) -> ScrubbedRepo | None:
    """GitPython's repository holding ``path`` (read in-process), None outside one."""
    try:
        return ScrubbedRepo(path, search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError):
        return None


__all__ = [
    "GitCommandError",
    "GitCommandNotFound",
    "ScrubbedGit",
    "ScrubbedRepo",
    "SymbolicReference",
    "open_gitpython_repo",
]
