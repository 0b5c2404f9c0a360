"""PackageQueuePollerWorkflow: the action of the ``package-queue-poller`` Schedule.

Reads up to ``limit`` packages from the queue source and signals-with-start the
orchestrator, so a poll both feeds a running orchestrator and revives a stopped one.
Short-lived: the Schedule (every 30 minutes, overlap SKIP) owns the cadence.
"""

from __future__ import annotations

from temporalio import workflow

from pkgbuilder.workflows.policies import FETCH_RETRY, SHORT_TIMEOUT, SIGNAL_RETRY, SIGNAL_TIMEOUT

with workflow.unsafe.imports_passed_through():
    from pkgbuilder.activities import queue as queue_acts
    from pkgbuilder.models.orchestrator import (
        FetchQueueInput,
        PollerInput,
        PollerResult,
        SignalOrchestratorInput,
    )


@workflow.defn
class PackageQueuePollerWorkflow:
    @workflow.run
    async def run(self, inp: PollerInput) -> PollerResult:
        fetched = await workflow.execute_activity(
            queue_acts.fetch_build_queue,
            FetchQueueInput(source=inp.source, limit=inp.limit),
            start_to_close_timeout=SHORT_TIMEOUT,
            retry_policy=FETCH_RETRY,
        )
        result = PollerResult(
            fetched=len(fetched.packages),
            names=[p.name for p in fetched.packages],
            rejected=fetched.rejected,
        )
        if not fetched.packages:
            return result
        await workflow.execute_activity(
            queue_acts.signal_orchestrator,
            SignalOrchestratorInput(
                orchestrator_id=inp.orchestrator_id,
                task_queue=inp.task_queue,
                start=inp.start,
                packages=fetched.packages,
                source=inp.source,
            ),
            start_to_close_timeout=SIGNAL_TIMEOUT,
            retry_policy=SIGNAL_RETRY,
        )
        result.signalled = True
        return result
