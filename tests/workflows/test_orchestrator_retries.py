"""Durable retry backoff on the time-skipping server: a failing package is retried after
1 and 2 minutes (3 attempts in total), then reported failed at the queue source with its
error; a flaky one succeeds on its second attempt. Dependents of the failure are failed as
blocked instead of waiting forever."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from pkgbuilder.config import BuildSettings, TemporalSettings
from pkgbuilder.models.orchestrator import (
    NewPackages,
    OrchestratorInput,
    OrchestratorStatus,
    QueuedPackage,
    SourceStatus,
)
from pkgbuilder.queue.sources.sqlite import SqliteQueue
from pkgbuilder.workflows.orchestrator import ContinuousBuilderWorkflow
from tests.support.orchestrator import (
    BuildScript,
    orchestrator_worker,
    unique_id,
    write_workspace,
)


async def _skip_time(env: WorkflowEnvironment, seconds: int) -> None:
    """``env.sleep``, asked again when the time-skipping test server lets the call time out
    (it does under load, after rejecting a workflow-task completion it then accepts)."""
    for attempt in range(3):
        try:
            await env.sleep(timedelta(seconds=seconds))
            return
        except RPCError as e:
            if "Timeout expired" not in str(e) or attempt == 2:
                raise


async def test_failed_build_is_retried_with_durable_backoff_then_reported_failed(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    env = time_skipping_env
    client = env.client
    task_queue = unique_id("tq")
    ws = write_workspace(
        tmp_path / "ws", {"@t/bad": [], "@t/flaky": [], "@t/needs-bad": ["@t/bad"]}
    )
    queue = SqliteQueue(tmp_path / "queue.db")
    for name in ("@t/bad", "@t/flaky", "@t/needs-bad"):
        queue.add(QueuedPackage(name=name))
    settings = BuildSettings(
        temporal=TemporalSettings(task_queue=task_queue),
        orchestrator={"queueDb": str(tmp_path / "queue.db"), "retryBackoffSeconds": [60, 120, 240]},
    )
    script = BuildScript()
    script.fail_first = {"@t/bad": 99, "@t/flaky": 1}
    async with orchestrator_worker(client, task_queue, script):
        handle = await client.start_workflow(
            ContinuousBuilderWorkflow.run,
            OrchestratorInput(workspace_root=str(ws), config=settings, max_concurrent=4),
            id=unique_id("orchestrator"),
            task_queue=task_queue,
        )
        await handle.signal(
            ContinuousBuilderWorkflow.new_packages,
            NewPackages(
                packages=[QueuedPackage(name=n) for n in ("@t/bad", "@t/flaky", "@t/needs-bad")]
            ),
        )
        status: OrchestratorStatus | None = None
        for _ in range(100):
            # Timers only fire while time is unlocked; each sleep skips 30 virtual seconds.
            await _skip_time(env, 30)
            status = await handle.query(ContinuousBuilderWorkflow.get_state)
            if status.failed == 2 and status.completed == 1 and not status.pending_reports:
                break
        assert status is not None
        assert (status.completed, status.failed) == (1, 2), status
        bad_children = [c.child_workflow_id for c in script.calls if c.name == "@t/bad"]
        spans = []
        for wid in bad_children:
            desc = await client.get_workflow_handle(wid).describe()
            assert desc.close_time is not None
            spans.append((desc.start_time, desc.close_time))
        await handle.terminate("test over")

    assert script.attempts("@t/bad") == 3
    assert script.attempts("@t/flaky") == 2
    assert script.attempts("@t/needs-bad") == 0
    # The backoff is durable workflow time: attempt n+1 starts only after 1, then 2 minutes.
    # It counts from the child's build_finished signal, a moment before the child closes.
    slack = timedelta(seconds=1)
    assert spans[1][0] - spans[0][1] >= timedelta(minutes=1) - slack
    assert spans[2][0] - spans[1][1] >= timedelta(minutes=2) - slack
    failed = {r.name: r for r in status.recently_failed}
    assert failed["@t/bad"].attempts == 3
    assert "scripted failure of @t/bad" in (failed["@t/bad"].error or "")
    assert failed["@t/needs-bad"].error == "blocked: dependency @t/bad failed"
    rows = {i.name: i for i in queue.items()}
    assert rows["@t/bad"].status is SourceStatus.FAILED
    assert "scripted failure of @t/bad" in (rows["@t/bad"].error or "")
    assert rows["@t/needs-bad"].status is SourceStatus.FAILED
    assert rows["@t/flaky"].status is SourceStatus.PUBLISHED
