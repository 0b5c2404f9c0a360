"""Worker assembly: which workflows and activities run on which task queue."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

from temporalio.client import Client
from temporalio.worker import (
    Interceptor,
    StartActivityInput,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from pkgbuilder import __version__
from pkgbuilder.activities.catalog import build_activities, llm_activities
from pkgbuilder.config import BuildSettings
from pkgbuilder.runtime.client import IN_PROCESS_TAG
from pkgbuilder.runtime.logs import one_line_expected_failures
from pkgbuilder.workflows.catalog import ALL_WORKFLOWS

LLM_ACTIVITY_MODULE = "pkgbuilder.activities.llm"
# The worker's build id, given rather than computed: without one the SDK hashes the code of
# every loaded module at each worker start (0.1-0.3 s of a no-op build's wall time here).
WORKER_BUILD_ID = f"pkgbuilder-{__version__}"
log = logging.getLogger(__name__)


def worker_identity(in_process: bool) -> str:
    """``pid@host``, the SDK's default, tagged for the in-process workers of a command."""
    base = f"{os.getpid()}@{socket.gethostname()}"
    return f"{base} {IN_PROCESS_TAG}" if in_process else base


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox with every module passed through.

    The sandbox still restricts non-deterministic calls (``datetime.now``, ``random``, file
    and network I/O) inside workflow code; passing modules through only skips re-importing
    the workflow's own module for every new workflow run, about 10-25 ms of CPU per child
    workflow (far more when no ``.pyc`` can be written). That is safe because pkgbuilder's
    workflow modules hold no mutable module-level state (constants only, checked by
    ``tests/unit/test_determinism.py``)."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
    )


class LLMDemand(Interceptor):
    """Calls ``wanted`` whenever a workflow on this worker schedules an activity on the LLM
    task queue (the first model call of a fix attempt or a session, also on replay).

    A command's in-process LLM worker starts on that call instead of at once: importing the
    anthropic SDK costs about 2 s of CPU, which a build that needs no model call (the usual
    case) no longer pays while its steps compete for the same cores. ``wanted`` must be
    thread-safe: workflow code runs on the worker's workflow threads."""

    def __init__(self, llm_task_queue: str, wanted: Callable[[], None]) -> None:
        self.llm_task_queue = llm_task_queue
        self.wanted = wanted

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        demand = self

        class Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(_LLMDemandOutbound(outbound, demand))

        return Inbound


class _LLMDemandOutbound(WorkflowOutboundInterceptor):
    def __init__(self, next: WorkflowOutboundInterceptor, demand: LLMDemand) -> None:
        super().__init__(next)
        self._demand = demand

    def start_activity(self, input: StartActivityInput) -> Any:
        if input.task_queue == self._demand.llm_task_queue:
            self._demand.wanted()
        return super().start_activity(input)


def make_main_worker(
    client: Client,
    settings: BuildSettings,
    task_queue: str | None = None,
    max_concurrent_activities: int = 64,
    in_process: bool = True,
    llm_demand: LLMDemand | None = None,
) -> Worker:
    """All workflows plus the I/O activities (shell, git, files, reports, registry, queue)."""
    one_line_expected_failures()
    return Worker(
        client,
        task_queue=task_queue or settings.temporal.task_queue,
        identity=worker_identity(in_process),
        build_id=WORKER_BUILD_ID,
        workflows=list(ALL_WORKFLOWS),
        activities=build_activities(settings),
        interceptors=[llm_demand] if llm_demand is not None else [],
        workflow_runner=workflow_runner(),
        max_concurrent_activities=max_concurrent_activities,
        activity_executor=concurrent.futures.ThreadPoolExecutor(max_concurrent_activities),
    )


def make_llm_worker(
    client: Client,
    settings: BuildSettings,
    llm_task_queue: str | None = None,
    in_process: bool = True,
) -> Worker | None:
    """The paid model calls on their own task queue, so that they can be scaled (and
    rate-limited) independently of shell-heavy build activities. None when no LLM activity
    is registered."""
    llm = llm_activities(settings)
    if not llm:
        return None
    one_line_expected_failures()
    return Worker(
        client,
        task_queue=llm_task_queue or settings.temporal.llm_task_queue,
        identity=worker_identity(in_process),
        build_id=WORKER_BUILD_ID,
        activities=llm,
        max_concurrent_activities=16,
        activity_executor=concurrent.futures.ThreadPoolExecutor(16),
    )


@contextlib.asynccontextmanager
async def running_workers(
    client: Client,
    settings: BuildSettings,
    task_queue: str | None = None,
    llm_task_queue: str | None = None,
    in_process: bool = True,
) -> AsyncIterator[Worker]:
    """Run the workers for the duration of the block; yields the main worker.

    ``in_process``: the workers of a command such as ``build`` (tagged in their identity);
    False for ``pkgbuilder worker``, a dedicated worker other commands may rely on.

    The main worker polls at once. The LLM worker of a dedicated worker starts as soon as
    the anthropic SDK is imported (about 1.3 s, done in a thread meanwhile); an in-process
    one when a workflow on this worker first schedules a model call (:class:`LLMDemand`).
    Until then model-call activities simply wait on their task queue, while every build
    step already runs."""
    loop = asyncio.get_running_loop()
    wanted = asyncio.Event()
    if not in_process:
        wanted.set()

    def want() -> None:
        with contextlib.suppress(RuntimeError):  # the block has ended: its loop is closed
            loop.call_soon_threadsafe(wanted.set)

    demand = LLMDemand(llm_task_queue or settings.temporal.llm_task_queue, want)
    main = make_main_worker(client, settings, task_queue, in_process=in_process, llm_demand=demand)
    stop = asyncio.Event()

    starting = asyncio.Event()

    async def llm_worker() -> None:
        try:
            await wanted.wait()
            await asyncio.to_thread(importlib.import_module, LLM_ACTIVITY_MODULE)
            if stop.is_set():
                return
            starting.set()
            worker = make_llm_worker(client, settings, llm_task_queue, in_process)
            if worker is None:
                return
            async with worker:
                await stop.wait()
        except Exception:
            log.exception("the LLM worker failed; model calls wait for another LLM worker")
            raise

    async with main:
        llm_task = asyncio.create_task(llm_worker())
        try:
            yield main
        finally:
            stop.set()
            if not starting.is_set():
                # A short block (a fully cached build) ends before the SDK import: nothing
                # to stop, and no reason to wait for the import.
                llm_task.cancel()
            # Its failure was logged when it happened; it must not mask the
            # block's own outcome here.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await llm_task
