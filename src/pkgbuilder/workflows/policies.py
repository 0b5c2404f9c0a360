"""Every retry policy and timeout pkgbuilder gives Temporal, in one place (workflow-safe).

Temporal owns retries: activities raise ``ApplicationError(type=ErrorType...)`` and the
policies below decide what is tried again. No other module constructs a ``RetryPolicy`` or
passes a literal ``timedelta`` as a Temporal timeout (tests/unit/test_policies.py).

Retry policies (backoff: first interval, doubling, up to the cap):

==============  ========  ===========  ======================================================
policy          attempts  backoff      non-retryable ``ErrorType`` / used for / why
==============  ========  ===========  ======================================================
SHELL_RETRY     3         2 s → 30 s   WorkspaceError, MissingTool, ConfigError. Install,
                                       check_package, verify. A failing command is a
                                       result (ok=False), so this covers dead workers only.
FLEET_RETRY     40        2 s → 30 s   WorkspaceError, MissingTool, ConfigError. The checks
                                       of a fleet suite: SHELL_RETRY's faults, and refusals
                                       (CheckoutMismatch: this worker's checkout is not at the
                                       suite's commit), retried after the 1 s the refusal asks
                                       for until another worker takes the task (~1 min).
FILE_RETRY      5         1 s → 10 s   WorkspaceError, ConfigError. Reports, discovery,
                                       estimates, summaries, cache lookup/save, validation
                                       targets: idempotent file work.
PUBLISH_RETRY   3         2 s → 30 s   MissingTool, PackFailed, WorkspaceError, ConfigError.
                                       Publish and registry check. The seed retried once; a
                                       crash uses an attempt too. Safe: the activity asks the
                                       registry before it publishes.
GIT_RETRY       5         1 s → 20 s   UserError, TaskRejected, WorkspaceError. Lifecycle git
                                       steps, its log and cache steps; GitError is transient
                                       (locks), a refused task final.
SESSION_RETRY   5         1 s → 10 s   SESSION_NON_RETRYABLE (bad input or plan, git state,
                                       missing phase output, unsafe or tampered answer, failed
                                       merge: a retry repeats them). Session steps and saves.
FETCH_RETRY     4         1 s → 30 s   ConfigError. The poller's fetch: the next scheduled
                                       poll tries again, so it gives up quickly.
SIGNAL_RETRY    10        1 s → 30 s   none. The poller's signal: fetched packages must land.
RESOLVE_RETRY   5         1 s → 30 s   WorkspaceError. The orchestrator resolving queued
                                       names: a name not in the workspace stays so.
REPORT_RETRY    unlimited 5 s → 5 min  none (the activity raises permanent source errors
                within 1 d             non-retryable). Outcome write-backs: the source keeps
                                       listing a package until it hears back.
WATCH_RETRY     unlimited 1 s → 1 min  none. Watching a package build outlives restarts.
llm_retry_      llm.max-  llm.retry-   LLM_NON_RETRYABLE_ERROR_TYPES. call_llm, on the LLM
policy()        Attempts  Initial/Max  queue: paid, so never unlimited; a rejected request,
                                       a spent budget or a missing key repeats.
FIX_RETRY       5         1 s → 30 s   FIX_NON_RETRYABLE_ERROR_TYPES. Prepare/apply a fix:
                                       cheap, idempotent; hostile or tampered answers and a
                                       refused commit are final.
==============  ========  ===========  ======================================================

Timeouts: ``SHORT_TIMEOUT`` (2 min) for activities that read or write a few files or ask a
queue source; ``FILE_TIMEOUT`` (1 min) for one state, log or target file;
``SESSION_TIMEOUT`` (5 min) for a session's git/file steps; ``GIT_TIMEOUT`` (10 min) for a
checkout of a large monorepo; ``PACKAGE_CACHE_TIMEOUT`` (10 min) and
``SUITE_CACHE_TIMEOUT`` (30 min, every package of a suite) for cache lookups and saves;
``shell_timeout`` a minute over the command's own timeout so the command reports it first;
``check_timeout`` (``check_package``) the sum of its build, test and quality budgets plus a
minute, and 10 min more when it stores its result in the cache;
``publish_timeout`` likewise over ``publishing.timeoutSeconds``; ``heartbeat_timeout`` from
``timeouts.heartbeatSeconds`` (how soon a dead worker is noticed); ``child_timeout`` a
lifecycle task's session; ``WATCH_TIMEOUT`` (7 days, heartbeat ``WATCH_HEARTBEAT``);
``REPORT_DEADLINE`` (1 day) for a write-back; ``FIX_TIMEOUT`` and the ``llm_*`` functions for
the fix and LLM activities. Client side: ``QUERY_TIMEOUT`` / ``UPDATE_TIMEOUT`` for the CLI's
queries and updates (``STATUS_QUERY_TIMEOUT`` for ``pkgbuilder status``),
``POLL_EXECUTION_TIMEOUT`` for one scheduled poll, ``DRAIN_TIMEOUT`` for a fleet worker's
graceful shutdown. Subprocess timeouts inside the domain (git, npm, package-manager probes)
are plain seconds on the calls themselves, not Temporal's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio.common import RetryPolicy

from pkgbuilder.errors import ErrorType

if TYPE_CHECKING:
    from pkgbuilder.config import BuildSettings, LLMSettings

# ---- timeouts ---------------------------------------------------------------------------

SHORT_TIMEOUT = timedelta(minutes=2)
FILE_TIMEOUT = timedelta(minutes=1)
SESSION_TIMEOUT = timedelta(minutes=5)
GIT_TIMEOUT = timedelta(minutes=10)  # a checkout of a large monorepo; heartbeats catch deaths
PACKAGE_CACHE_TIMEOUT = timedelta(minutes=10)
SUITE_CACHE_TIMEOUT = timedelta(minutes=30)
WATCH_TIMEOUT = timedelta(days=7)
WATCH_HEARTBEAT = timedelta(seconds=60)
REPORT_DEADLINE = timedelta(days=1)  # schedule-to-close of an outcome write-back
LLM_HEARTBEAT_TIMEOUT = timedelta(seconds=60)
QUERY_TIMEOUT = timedelta(seconds=5)  # the CLI's rpc timeout for a workflow query
STATUS_QUERY_TIMEOUT = timedelta(seconds=10)  # `pkgbuilder status` asks a busy build
UPDATE_TIMEOUT = timedelta(seconds=30)  # the CLI's rpc timeout for an orchestrator update
POLL_EXECUTION_TIMEOUT = timedelta(minutes=15)  # one scheduled poll of the queue source
# SIGTERM lets a fleet worker's running steps finish (it is drained, not killed); a step
# still running after this long is cancelled and retried on another worker.
DRAIN_TIMEOUT = timedelta(minutes=5)


def shell_timeout(seconds: int) -> timedelta:
    # a little slack over the command's own timeout so the command reports it first
    return timedelta(seconds=seconds + 60)


# check_package: slack over the sum of its step budgets (a command's own timeout reports
# first), and an allowance for the cache store it may end with.
CHECK_MARGIN_SECONDS = 60
CHECK_STORE_SECONDS = 600


def check_timeout(
    config: BuildSettings, build_only: bool = False, store: bool = False, fleet: bool = False
) -> timedelta:
    """start-to-close of ``check_package``: its step budgets' sum (build, test, quality; the
    build alone for ``build_only``) plus the margin, and the store's allowance; on a fleet
    worker also its checkout's install and the dependencies' restore."""
    t = config.timeouts
    steps = t.build_seconds if build_only else t.build_seconds + t.test_seconds + t.quality_seconds
    if fleet:
        steps += t.install_seconds + CHECK_STORE_SECONDS
    return timedelta(seconds=steps + CHECK_MARGIN_SECONDS + (CHECK_STORE_SECONDS if store else 0))


def heartbeat_timeout(seconds: int | float) -> timedelta:
    return timedelta(seconds=seconds)


def child_timeout(seconds: int | float) -> timedelta:
    """A child workflow's execution timeout, from a configured number of seconds."""
    return timedelta(seconds=seconds)


def publish_timeout(config: BuildSettings, packages: int = 1) -> timedelta:
    # slack over the commands' own timeouts so npm's timeout is reported first
    per_package = 30 * packages if packages > 1 else 0
    return timedelta(seconds=config.publishing.timeout_seconds + 60 + per_package)


# ---- retry policies ---------------------------------------------------------------------


def _retry(
    cap: timedelta,
    attempts: int = 0,
    first: timedelta = timedelta(seconds=1),
    final: tuple[ErrorType, ...] = (),
) -> RetryPolicy:
    """Exponential backoff (coefficient 2) from ``first`` up to ``cap``; ``attempts`` 0 is
    unlimited; ``final`` are the error types never retried. The one RetryPolicy constructor."""
    return RetryPolicy(
        initial_interval=first,
        backoff_coefficient=2.0,
        maximum_interval=cap,
        maximum_attempts=attempts,
        non_retryable_error_types=final,
    )


SHELL_RETRY = _retry(
    timedelta(seconds=30),
    attempts=3,
    first=timedelta(seconds=2),
    final=(ErrorType.WorkspaceError, ErrorType.MissingTool, ErrorType.ConfigError),
)
FLEET_RETRY = _retry(
    timedelta(seconds=30),
    attempts=40,
    first=timedelta(seconds=2),
    final=(ErrorType.WorkspaceError, ErrorType.MissingTool, ErrorType.ConfigError),
)
FILE_RETRY = _retry(
    timedelta(seconds=10), attempts=5, final=(ErrorType.WorkspaceError, ErrorType.ConfigError)
)
PUBLISH_RETRY = _retry(
    timedelta(seconds=30),
    attempts=3,
    first=timedelta(seconds=2),
    final=(
        ErrorType.MissingTool,
        ErrorType.PackFailed,
        ErrorType.WorkspaceError,
        ErrorType.ConfigError,
    ),
)
GIT_RETRY = _retry(
    timedelta(seconds=20),
    attempts=5,
    final=(ErrorType.UserError, ErrorType.TaskRejected, ErrorType.WorkspaceError),
)
# Error types of the session activities that a retry would only repeat.
SESSION_NON_RETRYABLE = (
    ErrorType.GenerationInputError,
    ErrorType.PlanError,
    ErrorType.GitStateError,
    ErrorType.PhaseOutputMissing,
    ErrorType.UnsafeFileOperation,
    ErrorType.ResponseFileInvalid,
    ErrorType.MergeFailed,
)
SESSION_RETRY = _retry(timedelta(seconds=10), attempts=5, final=SESSION_NON_RETRYABLE)
FETCH_RETRY = _retry(timedelta(seconds=30), attempts=4, final=(ErrorType.ConfigError,))
SIGNAL_TIMEOUT = timedelta(seconds=30)
SIGNAL_RETRY = _retry(timedelta(seconds=30), attempts=10)
RESOLVE_RETRY = _retry(timedelta(seconds=30), attempts=5, final=(ErrorType.WorkspaceError,))
REPORT_RETRY = _retry(timedelta(minutes=5), first=timedelta(seconds=5))
WATCH_RETRY = _retry(timedelta(minutes=1))

# ---- the LLM and fix activities ---------------------------------------------------------

LLM_NON_RETRYABLE_ERROR_TYPES = (
    ErrorType.MissingApiKey,
    ErrorType.ModelRequestRejected,
    ErrorType.SpendLimitReached,
    ErrorType.TokenLimitExceeded,
    ErrorType.InvalidModelResponse,
    ErrorType.RequestFileInvalid,
)
FIX_NON_RETRYABLE_ERROR_TYPES = (
    ErrorType.UnsafeFileOperation,
    ErrorType.ResponseFileInvalid,
    ErrorType.GitCommitFailed,
    ErrorType.InvalidFixInput,
)
FIX_TIMEOUT = timedelta(seconds=300)
FIX_RETRY = _retry(timedelta(seconds=30), attempts=5, final=FIX_NON_RETRYABLE_ERROR_TYPES)


def llm_retry_policy(llm: LLMSettings) -> RetryPolicy:
    """Exponential backoff, at most ``llm.max_attempts`` paid attempts (never unlimited)."""
    return _retry(
        timedelta(seconds=llm.retry_max_interval_seconds),
        attempts=max(1, llm.max_attempts),
        first=timedelta(seconds=llm.retry_initial_interval_seconds),
        final=LLM_NON_RETRYABLE_ERROR_TYPES,
    )


def llm_start_to_close(llm: LLMSettings) -> timedelta:
    """One attempt may wait for the budget and make up to four calls (re-ask, larger budgets)."""
    return timedelta(seconds=llm.request_timeout_seconds * 4 + llm.rate_window_seconds * 2 + 60)


def llm_activity_options(settings: BuildSettings) -> dict[str, Any]:
    """Keyword arguments for ``workflow.execute_activity`` of ``call_llm``, e.g.
    ``execute_activity(CALL_LLM_ACTIVITY, inp, **llm_activity_options(settings))``."""
    return {
        "task_queue": settings.temporal.llm_task_queue,
        "start_to_close_timeout": llm_start_to_close(settings.llm),
        "heartbeat_timeout": LLM_HEARTBEAT_TIMEOUT,
        "retry_policy": llm_retry_policy(settings.llm),
    }


def fix_activity_options(settings: BuildSettings) -> dict[str, Any]:
    """Keyword arguments for ``prepare_fix_request`` / ``apply_fix_response``.

    No task queue: they run on the calling workflow's (main) queue.
    """
    return {"start_to_close_timeout": FIX_TIMEOUT, "retry_policy": FIX_RETRY}
