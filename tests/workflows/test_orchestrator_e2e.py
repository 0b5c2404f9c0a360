"""End to end with nothing replaced: the real worker (every workflow and activity), the real
PackageBuildWorkflow running npm on the failing-monorepo fixture, the embedded SQLite queue
and the scheduled poller. A failing package is retried, then reported failed with its real
error; its queued dependent is failed as blocked; the others are published."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from pkgbuilder.config import load_settings
from pkgbuilder.models.orchestrator import QueuedPackage, SourceStatus
from pkgbuilder.queue.sources.sqlite import SqliteQueue
from pkgbuilder.runtime.orchestrator import ensure_poll_schedule, trigger_poll
from pkgbuilder.runtime.worker import running_workers
from pkgbuilder.workflows.orchestrator import ContinuousBuilderWorkflow
from tests.conftest import REPO_ROOT, copy_workspace
from tests.support.orchestrator import unique_id, wait_for

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "failing-monorepo"


@pytest.mark.slow
async def test_real_builds_through_the_poller_and_orchestrator(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    ws = copy_workspace(FIXTURE, tmp_path / "ws")
    db = tmp_path / "queue.db"
    orch_id, schedule_id = unique_id("orchestrator"), unique_id("poller")
    settings = load_settings(
        ws,
        env={},
        overrides={
            "temporal": {"taskQueue": task_queue, "llmTaskQueue": f"{task_queue}-llm"},
            "fix": {"enabled": False},
            "orchestrator": {
                "workflowId": orch_id,
                "scheduleId": schedule_id,
                "queueDb": str(db),
                "maxAttempts": 2,
                "retryBackoffSeconds": [1],
            },
        },
    )
    queue = SqliteQueue(db)
    for name, priority in (("@fx/base", 1), ("@fx/broken", 5), ("@fx/mid", 9)):
        queue.add(QueuedPackage(name=name, priority=priority))
    async with running_workers(client, settings):
        try:
            await ensure_poll_schedule(client, settings, str(ws))
            await trigger_poll(client, settings)
            await wait_for(
                lambda: all(i.status is not SourceStatus.QUEUED for i in queue.items()),
                "every outcome written back",
                timeout=280,
                interval=0.5,
            )
            handle = client.get_workflow_handle_for(ContinuousBuilderWorkflow.run, orch_id)
            state = await handle.query(ContinuousBuilderWorkflow.get_state)
            await handle.execute_update(ContinuousBuilderWorkflow.drain)
            result = await handle.result()
            [base] = state.recently_completed
            assert base.child_workflow_id is not None
            child_history = await client.get_workflow_handle(base.child_workflow_id).fetch_history()
        finally:
            await client.get_schedule_handle(schedule_id).delete()

    rows = {i.name: i for i in queue.items()}
    assert rows["@fx/base"].status is SourceStatus.PUBLISHED
    assert rows["@fx/broken"].status is SourceStatus.FAILED
    assert "test" in (rows["@fx/broken"].error or "")
    assert rows["@fx/mid"].error == "blocked: dependency @fx/broken failed"
    failed = {r.name: r for r in state.recently_failed}
    assert failed["@fx/broken"].attempts == 2
    assert (result.reason, result.completed, result.failed) == ("drained", 1, 2)
    # The real child reported back by signal (what survives continue-as-new).
    assert any(
        e.event_type == EventType.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED
        for e in child_history.events
    )
    # The real child wrote its per-package JSON report into the workspace.
    assert list((ws / "production" / "reports").rglob("base.json"))
