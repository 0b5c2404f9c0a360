"""Starting git: the one runner every git process of pkgbuilder goes through, GitPython's
included (:class:`pkgbuilder.vcs.command.ScrubbedGit` delegates to it).

Each process sees exactly :func:`pkgbuilder.vcs.env.git_env` plus the variables its caller
adds, never ``os.environ``. This module does not import GitPython: :class:`GitRunner` runs
the commands of :class:`~pkgbuilder.vcs.repository.Repository` and the cache's object reader
without it, so that a command which reads no git objects in-process never loads GitPython
(about 45 ms of imports, and two ``git version`` processes GitPython starts when imported).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from pkgbuilder.vcs.env import git_env
from pkgbuilder.vcs.errors import GitNotInstalled, NotARepository

# GitPython's variable naming the git program; honoured here the way GitPython does.
GIT_EXECUTABLE_ENV = "GIT_PYTHON_GIT_EXECUTABLE"


class GitTimeout(Exception):
    """A git process hit its timeout and was killed (the message says after how long;
    ``stdout`` is what it wrote until then)."""

    def __init__(self, message: str, stdout: bytes = b"") -> None:
        super().__init__(message)
        self.stdout = stdout


def git_executable() -> str:
    """``$GIT_PYTHON_GIT_EXECUTABLE`` when it names a program, else ``git`` (GitPython falls
    back the same way when the variable names nothing it can run)."""
    configured = os.environ.get(GIT_EXECUTABLE_ENV)
    return configured if configured and shutil.which(configured) else "git"


def start_git(
    argv: Sequence[str],
    cwd: str | os.PathLike[str] | None,
    extra_env: Mapping[str, str],
    stdin: int | IO[Any] | None = None,
    with_stdout: bool = True,
    **popen_kwargs: Any,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` (a git command line) in ``cwd`` with :func:`git_env` plus
    ``extra_env``; stdout and stderr piped (stdout discarded unless ``with_stdout``).

    Raises:
        FileNotFoundError: the program does not exist.
    """
    return subprocess.Popen(
        list(argv),
        env={**git_env(), **extra_env},
        cwd=cwd,
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE if with_stdout else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **popen_kwargs,
    )


def finish(proc: subprocess.Popen[bytes], timeout: float | None) -> tuple[int, bytes, bytes]:
    """Wait for ``proc``: (exit status, stdout, stderr without its last newline).

    Raises:
        GitTimeout: it ran longer than ``timeout`` seconds (it is killed).
    """
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise GitTimeout(f"timed out after {timeout:g}s", out or b"") from None
    return proc.returncode, out or b"", (err or b"").removesuffix(b"\n")


def decode(raw: bytes) -> str:
    """git's output as text, undecodable bytes kept (as GitPython decodes it)."""
    return raw.decode(sys.getfilesystemencoding(), "surrogateescape")


class GitRunner:
    """Runs git commands in one directory, with the scrubbed environment plus the variables
    given to :meth:`update_environment`."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.environment: dict[str, str] = {}

    def update_environment(self, **values: str) -> None:
        self.environment.update(values)

    def run(
        self, argv: list[str], timeout: float, *, binary: bool = False
    ) -> tuple[int, str | bytes, str]:
        """Run ``git ARGV``; (status, stdout, stderr). A missing git or directory raises this
        layer's errors; a timeout raises :class:`GitTimeout`, which each caller turns into
        its own error type.

        Raises:
            NotARepository: ``cwd`` is not a directory.
            GitNotInstalled: there is no git.
            GitTimeout: git ran longer than ``timeout`` seconds.
        """
        if not self.cwd.is_dir():
            raise NotARepository(f"{self.cwd} is not a directory, so not a git repository.")
        try:
            proc = start_git([git_executable(), *argv], self.cwd, self.environment)
        except FileNotFoundError as e:
            raise GitNotInstalled("git is not installed (or not on PATH).") from e
        try:
            status, out, err = finish(proc, timeout)
        except GitTimeout:
            raise GitTimeout(f"timed out after {timeout:.0f}s") from None
        return status, out if binary else decode(out), decode(err)
