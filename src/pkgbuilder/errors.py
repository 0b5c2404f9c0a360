"""User-facing errors: each carries one clear sentence and an exit code."""

from __future__ import annotations

from enum import StrEnum


class UserError(Exception):
    """An error the user can fix; the CLI prints the message (no traceback) and exits."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ErrorType(StrEnum):
    """Every ``ApplicationError`` type an activity or workflow raises.

    The one list that activities raise, retry policies name as non-retryable and the CLI
    reads to choose its exit code (tests/unit/test_error_types.py checks that no raw string
    stands in for one, and that every member is raised somewhere). Values are the wire names
    the Temporal UI shows.
    """

    # the model API answered with something that is not a Messages API response
    BadApiResponse = "BadApiResponse"
    # a fleet worker's checkout is not at the suite's commit, or is dirty (retried elsewhere)
    CheckoutMismatch = "CheckoutMismatch"
    ConfigError = "ConfigError"  # a configuration value is invalid (exit 2)
    ConnectionError = "ConnectionError"  # the model API could not be reached (retried)
    GenerationFailed = "GenerationFailed"  # a generation session ended failed
    GenerationInputError = (
        "GenerationInputError"  # a session was asked for something impossible (exit 2)
    )
    GitBusy = "GitBusy"  # another git process holds the index lock (retried)
    GitCommitFailed = "GitCommitFailed"  # git refused a commit
    GitFailed = "GitFailed"  # a git command failed (git's first line in the message)
    GitStateError = "GitStateError"  # the repository is not in the state a session needs (exit 2)
    InvalidFixInput = "InvalidFixInput"  # a fix attempt was started without what it needs
    InvalidModelResponse = "InvalidModelResponse"  # the model answer breaks the response contract
    MergeFailed = "MergeFailed"  # the session branch could not be merged
    MissingApiKey = "MissingApiKey"  # no ANTHROPIC_API_KEY in the LLM worker (no call is made)
    MissingTool = "MissingTool"  # a required program is not installed on the worker
    ModelRequestRejected = (
        "ModelRequestRejected"  # the API refused the request (400/401/403/404/413)
    )
    PackFailed = "PackFailed"  # npm pack failed
    PhaseOutputMissing = "PhaseOutputMissing"  # a phase answer lacks a file the phase must produce
    PlanError = "PlanError"  # the plan file is missing or malformed (exit 2)
    QueueSourceError = "QueueSourceError"  # the queue source (SQLite/MCP) failed
    RateLimited = "RateLimited"  # the API rate-limited the call (retried after its retry-after)
    RegistryUnavailable = (
        "RegistryUnavailable"  # the npm registry could not be asked or refused a publish (retried)
    )
    RequestFileInvalid = (
        "RequestFileInvalid"  # a stored model request is missing or was tampered with
    )
    ResponseFileInvalid = (
        "ResponseFileInvalid"  # a stored model answer is missing or was tampered with
    )
    SandboxUnavailable = (
        "SandboxUnavailable"  # model-changed scripts cannot be confined on this worker
    )
    SpendLimitReached = (
        "SpendLimitReached"  # the account spend limit is reached (no further call is made)
    )
    TaskRejected = "TaskRejected"  # a lifecycle task was refused
    Timeout = "Timeout"  # a model call exceeded its total deadline
    TokenLimitExceeded = "TokenLimitExceeded"  # the request exceeds the token budget
    UnsafeFileOperation = (
        "UnsafeFileOperation"  # a model answer tried to write outside the package (hostile input)
    )
    UserError = "UserError"  # a user error raised in an activity (one sentence)
    WorkspaceError = "WorkspaceError"  # the workspace cannot be built as given (exit 2)
