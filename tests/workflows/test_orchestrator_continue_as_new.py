"""200 queued packages through several continue-as-new runs, on a dev server of its own
whose ``limit.historyCount.suggestContinueAsNew`` is lowered so the server suggests
continue-as-new every few dozen builds. Every package is built exactly once, none is lost,
retry counts survive the hand-over, and running children report to the next run."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from pkgbuilder.config import BuildSettings, TemporalSettings
from pkgbuilder.models.orchestrator import (
    NewPackages,
    OrchestratorInput,
    QueuedPackage,
    SourceStatus,
)
from pkgbuilder.queue.sources.sqlite import SqliteQueue
from pkgbuilder.runtime.binaries import temporal_cli_path
from pkgbuilder.workflows.orchestrator import ContinuousBuilderWorkflow
from tests.support.orchestrator import (
    BuildScript,
    orchestrator_worker,
    unique_id,
    wait_for,
    write_workspace,
)

SUGGEST_AFTER_EVENTS = 250
TOTAL = 200
FLAKY = {f"@t/p{i:03d}" for i in (7, 58, 121, 170, 199)}


@pytest_asyncio.fixture
async def small_history_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_cli_path(),
        dev_server_log_level="error",
        dev_server_extra_args=[
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_AFTER_EVENTS}",
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.mark.slow
async def test_200_packages_through_continue_as_new_each_built_exactly_once(
    small_history_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = small_history_env.client
    task_queue = unique_id("tq")
    names = [f"@t/p{i:03d}" for i in range(TOTAL)]
    # Chains of ten: each package depends on the one before it in its chain.
    deps = {n: ([names[i - 1]] if i % 10 else []) for i, n in enumerate(names)}
    ws = write_workspace(tmp_path / "ws", deps)
    queue = SqliteQueue(tmp_path / "queue.db")
    for n in names:
        queue.add(QueuedPackage(name=n))
    settings = BuildSettings(
        temporal=TemporalSettings(task_queue=task_queue),
        orchestrator={"queueDb": str(tmp_path / "queue.db"), "retryBackoffSeconds": [1]},
    )
    script = BuildScript()
    script.fail_first = dict.fromkeys(FLAKY, 1)
    async with orchestrator_worker(client, task_queue, script, max_concurrent_workflow_tasks=20):
        handle = await client.start_workflow(
            ContinuousBuilderWorkflow.run,
            OrchestratorInput(workspace_root=str(ws), config=settings, max_concurrent=8),
            id=unique_id("orchestrator"),
            task_queue=task_queue,
        )
        # Deliver the way the poller does: batches of 50, while earlier ones build.
        for start in range(0, TOTAL, 50):
            batch = [
                QueuedPackage(name=n, priority=TOTAL - i)
                for i, n in enumerate(names[start : start + 50], start)
            ]
            await handle.signal(ContinuousBuilderWorkflow.new_packages, NewPackages(packages=batch))
            await wait_for(lambda s=start: len(script.calls) > s, "builds to start", 120)

        async def all_done() -> bool:
            s = await handle.query(ContinuousBuilderWorkflow.get_state)
            return s.completed + s.failed >= TOTAL and not s.pending_reports

        await wait_for(all_done, "all 200 packages", timeout=280, interval=0.5)
        final = await handle.query(ContinuousBuilderWorkflow.get_state)
        await handle.execute_update(ContinuousBuilderWorkflow.drain)
        result = await handle.result()
        runs = [wf async for wf in client.list_workflows(f'WorkflowId = "{handle.id}"')]
        run_closed = {wf.run_id: wf.close_time for wf in runs}
        events = sum(wf.history_length for wf in runs)
        longest_run = max(wf.history_length for wf in runs)
        carried = 0
        for call in script.calls:
            child = await client.get_workflow_handle(call.child_workflow_id).describe()
            parent_closed = run_closed.get(child.parent_run_id or "")
            assert child.close_time is not None and parent_closed is not None
            carried += child.close_time > parent_closed

    starts = Counter(script.started())
    assert set(starts) == set(names)
    assert {n for n, c in starts.items() if c != 1} == FLAKY
    assert all(starts[n] == 2 for n in FLAKY)
    assert (result.completed, result.failed, result.remaining_queue) == (TOTAL, 0, [])
    assert final.runs >= 3, f"only {final.runs} runs: continue-as-new was not exercised"
    # Some children outlived the run that started them and reported to a later one.
    assert carried > 0
    # No polling timers: about 11 events per build (start, child events, the child's signal,
    # the write-back activity, workflow tasks), and each run ends soon after the suggestion.
    assert events / len(script.calls) < 16
    assert longest_run < 2 * SUGGEST_AFTER_EVENTS
    # A package starts only after its dependency's last (successful) attempt started.
    first = {n: i for i, n in reversed(list(enumerate(script.started())))}
    last = {n: i for i, n in enumerate(script.started())}
    assert all(first[n] > last[d] for n, ds in deps.items() for d in ds)
    assert all(i.status is SourceStatus.PUBLISHED for i in queue.items())
    assert len(queue.items()) == TOTAL
