"""User-facing errors: each carries one clear sentence and an exit code."""

from __future__ import annotations


class UserError(Exception):
    """An error the user can fix; the CLI prints the message (no traceback) and exits."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
