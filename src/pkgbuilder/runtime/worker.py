"""Worker assembly: which workflows and activities run on which task queue."""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import AsyncIterator

from temporalio.client import Client
from temporalio.worker import Worker

from pkgbuilder.activities.registry import build_activities, llm_activities
from pkgbuilder.config import BuildSettings
from pkgbuilder.workflows.registry import ALL_WORKFLOWS


def make_workers(
    client: Client,
    settings: BuildSettings,
    task_queue: str | None = None,
    llm_task_queue: str | None = None,
    max_concurrent_activities: int = 64,
) -> list[Worker]:
    """Main worker (all workflows + I/O activities) and the LLM worker on its own queue.

    The LLM activities live on a separate task queue so that model calls can be scaled
    (and rate-limited) independently of shell-heavy build activities.
    """
    tq = task_queue or settings.temporal.task_queue
    llm_tq = llm_task_queue or settings.temporal.llm_task_queue
    main = Worker(
        client,
        task_queue=tq,
        workflows=list(ALL_WORKFLOWS),
        activities=build_activities(settings),
        max_concurrent_activities=max_concurrent_activities,
        activity_executor=concurrent.futures.ThreadPoolExecutor(max_concurrent_activities),
    )
    workers = [main]
    llm = llm_activities(settings)
    if llm:
        workers.append(
            Worker(
                client,
                task_queue=llm_tq,
                activities=llm,
                max_concurrent_activities=16,
                activity_executor=concurrent.futures.ThreadPoolExecutor(16),
            )
        )
    return workers


@contextlib.asynccontextmanager
async def running_workers(
    client: Client, settings: BuildSettings, **kwargs: object
) -> AsyncIterator[list[Worker]]:
    """Run the workers for the duration of the block (in-process worker of ``build``)."""
    workers = make_workers(client, settings, **kwargs)  # type: ignore[arg-type]
    async with contextlib.AsyncExitStack() as stack:
        for w in workers:
            await stack.enter_async_context(w)
        yield workers
