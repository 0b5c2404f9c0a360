"""Activity options shared by workflows (workflow-safe: no I/O)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

# Shell steps: a worker crash (heartbeat timeout) retries; a failing build does not raise,
# it returns ok=False, so retries only cover infrastructure faults.
SHELL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=3,
    non_retryable_error_types=["WorkspaceError", "MissingTool", "ConfigError"],
)

FILE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=5,
    non_retryable_error_types=["WorkspaceError", "ConfigError"],
)

SHORT_TIMEOUT = timedelta(minutes=2)


def shell_timeout(seconds: int) -> timedelta:
    # a little slack over the command's own timeout so the command reports it first
    return timedelta(seconds=seconds + 60)


def heartbeat_timeout(seconds: int) -> timedelta:
    return timedelta(seconds=seconds)
