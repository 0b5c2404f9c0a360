"""How workflows schedule the LLM and fix activities: queue, timeouts, capped retry policies.

Safe to import from workflow code (no SDK, no I/O)::

    with workflow.unsafe.imports_passed_through():
        from pkgbuilder.activities.llm_policy import llm_activity_options

    result = await workflow.execute_activity(
        CALL_LLM_ACTIVITY, LLMCallInput(...), result_type=LLMCallResult,
        **llm_activity_options(settings),
    )
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

from pkgbuilder.config import BuildSettings, LLMSettings
from pkgbuilder.errors import ErrorType

# Mirrors activities.llm.NON_RETRYABLE_ERROR_TYPES (kept here so workflows need not import
# the anthropic SDK); a test checks both lists are equal.
LLM_NON_RETRYABLE_ERROR_TYPES = [
    ErrorType.MissingApiKey,
    ErrorType.ModelRequestRejected,
    ErrorType.SpendLimitReached,
    ErrorType.TokenLimitExceeded,
    ErrorType.InvalidModelResponse,
    ErrorType.RequestFileInvalid,
]
LLM_HEARTBEAT_TIMEOUT = timedelta(seconds=60)


def llm_retry_policy(llm: LLMSettings) -> RetryPolicy:
    """Exponential backoff, at most ``llm.max_attempts`` paid attempts (never unlimited)."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=llm.retry_initial_interval_seconds),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=llm.retry_max_interval_seconds),
        maximum_attempts=max(1, llm.max_attempts),
        non_retryable_error_types=list(LLM_NON_RETRYABLE_ERROR_TYPES),
    )


def llm_start_to_close(llm: LLMSettings) -> timedelta:
    """One attempt may wait for the budget and make up to four calls (re-ask, larger budgets)."""
    return timedelta(seconds=llm.request_timeout_seconds * 4 + llm.rate_window_seconds * 2 + 60)


def llm_activity_options(settings: BuildSettings) -> dict[str, Any]:
    """Keyword arguments for ``workflow.execute_activity`` of ``call_llm``."""
    return {
        "task_queue": settings.temporal.llm_task_queue,
        "start_to_close_timeout": llm_start_to_close(settings.llm),
        "heartbeat_timeout": LLM_HEARTBEAT_TIMEOUT,
        "retry_policy": llm_retry_policy(settings.llm),
    }


# Fix activities on the main queue: cheap, idempotent, retried a few times.
FIX_NON_RETRYABLE_ERROR_TYPES = [
    ErrorType.UnsafeFileOperation,
    ErrorType.ResponseFileInvalid,
    ErrorType.GitCommitFailed,
    ErrorType.InvalidFixInput,
]


def fix_activity_options(settings: BuildSettings) -> dict[str, Any]:
    """Keyword arguments for ``prepare_fix_request`` / ``apply_fix_response``.

    No task queue: they run on the calling workflow's (main) queue.
    """
    return {
        "start_to_close_timeout": timedelta(seconds=300),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(seconds=1),
            maximum_interval=timedelta(seconds=30),
            maximum_attempts=5,
            non_retryable_error_types=list(FIX_NON_RETRYABLE_ERROR_TYPES),
        ),
    }
