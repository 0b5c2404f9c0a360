"""The in-process LLM worker starts on demand: LLMDemand fires when, and only when, a
workflow schedules an activity on the LLM task queue (real dev server, real worker)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from pkgbuilder.runtime.worker import LLMDemand, workflow_runner

LLM_QUEUE = f"llm-demand-{uuid.uuid4().hex[:8]}"


@activity.defn
async def local_step(n: int) -> int:
    return n + 1


@activity.defn
async def model_call(n: int) -> int:
    return n * 10


@workflow.defn(sandboxed=True)
class DemandProbe:
    @workflow.run
    async def run(self, call_model: bool) -> int:
        value = await workflow.execute_activity(
            local_step, 1, start_to_close_timeout=timedelta(seconds=30)
        )
        if call_model:
            value = await workflow.execute_activity(
                model_call,
                value,
                task_queue=LLM_QUEUE,
                start_to_close_timeout=timedelta(seconds=30),
            )
        return value


async def test_llm_worker_is_wanted_only_when_a_model_call_is_scheduled(
    client: Client, task_queue: str
) -> None:
    calls: list[str] = []
    lock = threading.Lock()

    def wanted() -> None:  # called on a workflow thread
        with lock:
            calls.append(threading.current_thread().name)

    main = Worker(
        client,
        task_queue=task_queue,
        workflows=[DemandProbe],
        activities=[local_step],
        interceptors=[LLMDemand(LLM_QUEUE, wanted)],
        workflow_runner=workflow_runner(),
    )
    llm = Worker(client, task_queue=LLM_QUEUE, activities=[model_call])
    async with main, llm:
        quiet = await client.execute_workflow(
            DemandProbe.run, False, id=f"probe-{uuid.uuid4().hex}", task_queue=task_queue
        )
        assert quiet == 2
        assert calls == []  # a main-queue activity wants no LLM worker
        called = await asyncio.wait_for(
            client.execute_workflow(
                DemandProbe.run, True, id=f"probe-{uuid.uuid4().hex}", task_queue=task_queue
            ),
            60,
        )
        assert called == 20
        assert len(calls) == 1
