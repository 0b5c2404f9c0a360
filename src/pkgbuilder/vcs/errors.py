"""The vcs layer's exceptions: Temporal-free, so domain code can raise and catch them and
activities decide what each means for a retry."""

from __future__ import annotations

from pathlib import Path

from pkgbuilder.errors import UserError


class VcsError(UserError):
    """Something about a repository stops the operation (one sentence)."""

    exit_code = 1


class NotARepository(VcsError):
    """The directory is not inside a git working tree."""


class GitNotInstalled(VcsError):
    """No git executable on PATH."""


class GitFailed(VcsError):
    """A git command failed; the message names the command and git's own first line."""

    def __init__(self, argv: list[str], cwd: Path, returncode: int, stderr: str) -> None:
        self.argv = argv
        self.cwd = cwd
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(
            f"'git {' '.join(argv[:2])}' failed in {cwd}: {self.first_line.rstrip('.')}."
        )

    @property
    def first_line(self) -> str:
        """git's first non-empty line of output (its reason)."""
        return next((ln.strip() for ln in self.stderr.splitlines() if ln.strip()), "no output")


class GitBusy(GitFailed):
    """Another git process holds a lock of this repository (``index.lock``, a ref lock), or
    git did not finish in time: the same command may well succeed later."""
