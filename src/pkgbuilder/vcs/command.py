"""GitPython's object model, with the environment under our control.

``git.cmd.Git.execute`` starts every process from a copy of ``os.environ`` and can only add
to it, so an inherited ``GIT_DIR`` or an API key would reach git and the repository's hooks.
:class:`ScrubbedGit` starts the processes of GitPython's object model through
:mod:`pkgbuilder.vcs.process` instead (exactly :func:`pkgbuilder.vcs.env.git_env`, plus the
variables set through GitPython's ``update_environment``), like every other git process of
pkgbuilder. Only :attr:`Repository.repo <pkgbuilder.vcs.repository.Repository.repo>` loads
this module: importing GitPython costs about 45 ms and two ``git version`` processes.
"""

from __future__ import annotations

import os
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

from pkgbuilder.vcs.process import GitTimeout, finish, start_git


class ScrubbedGit(git.cmd.Git):
    """A :class:`git.cmd.Git` whose processes see :func:`~pkgbuilder.vcs.env.git_env`,
    never ``os.environ``."""

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
        extra = {**self._environment, **(env or {})}
        try:
            proc = start_git(
                argv,
                self._working_dir or None,
                extra,
                stdin=istream,
                with_stdout=with_stdout,
                **subprocess_kwargs,
            )
        except FileNotFoundError as e:
            raise GitCommandNotFound(argv, e) from e
        if as_process:
            return self.AutoInterrupt(proc, argv)
        try:
            status, out, err = finish(proc, kill_after_timeout)
        except GitTimeout as e:
            raise GitCommandError(argv, -9, str(e).encode(), e.stdout) from None
        if strip_newline_in_stdout and out.endswith(b"\n"):
            out = out[:-1]
        if with_exceptions and status != 0:
            raise GitCommandError(argv, status, err, out)
        stdout_value: str | bytes = safe_decode(out) if stdout_as_string else out
        if with_extended_output:
            return status, stdout_value, safe_decode(err)
        return stdout_value


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
