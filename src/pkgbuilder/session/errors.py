"""Why a session step refused: each class is named after the ``ErrorType`` the activity
raises for it (non-retryable: a retry would fail the same way)."""

from __future__ import annotations

from typing import Any

from pkgbuilder.errors import UserError


class SessionError(UserError):
    """A session step cannot go on; ``details`` travel with the activity's error (the
    workflow reads them, e.g. the outputs a phase answer lacked)."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details


class GenerationInputError(SessionError):
    """The session was asked for something impossible (a path outside the workspace, a
    session id in use)."""


class GitStateError(SessionError):
    """The repository is not in the state the session needs."""


class PhaseOutputMissing(SessionError):
    """The phase answer lacks a file the phase must produce (the workflow re-asks)."""


class UnsafeFileOperation(SessionError):
    """The model's answer tried to write outside the package (hostile input)."""


class ResponseFileInvalid(SessionError):
    """The stored model answer is missing or was tampered with."""


class MergeFailed(SessionError):
    """The session branch could not be merged into its base."""
