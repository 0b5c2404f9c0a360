"""ContinuousBuilderWorkflow on the real dev server: queue discipline, control updates,
write-back to the embedded queue. Child builds are the scripted fake (tests/support)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)

from pkgbuilder.config import BuildSettings, TemporalSettings
from pkgbuilder.models.orchestrator import (
    ConcurrencyInput,
    NewPackages,
    OrchestratorInput,
    OrchestratorResult,
    OrchestratorStatus,
    QueuedPackage,
    QueueSourceSettings,
    SourceStatus,
)
from pkgbuilder.queue.sources.sqlite import SqliteQueue
from pkgbuilder.workflows.orchestrator import ContinuousBuilderWorkflow
from tests.support.orchestrator import (
    BuildScript,
    orchestrator_worker,
    release_all,
    unique_id,
    wait_for,
    write_workspace,
)

Handle = WorkflowHandle[ContinuousBuilderWorkflow, OrchestratorResult]


def make_settings(tmp_path: Path, task_queue: str, **orchestrator: Any) -> BuildSettings:
    return BuildSettings(
        temporal=TemporalSettings(task_queue=task_queue),
        orchestrator={"queueDb": str(tmp_path / "queue.db"), **orchestrator},
    )


async def start(
    client: Client, task_queue: str, workspace: Path, settings: BuildSettings, concurrency: int
) -> Handle:
    return await client.start_workflow(
        ContinuousBuilderWorkflow.run,
        OrchestratorInput(
            workspace_root=str(workspace), config=settings, max_concurrent=concurrency
        ),
        id=unique_id("orchestrator"),
        task_queue=task_queue,
    )


async def state(handle: Handle) -> OrchestratorStatus:
    return await handle.query(ContinuousBuilderWorkflow.get_state)


def pkgs(*specs: tuple[str, int]) -> NewPackages:
    return NewPackages(packages=[QueuedPackage(name=n, priority=p) for n, p in specs])


async def test_priority_order_dedup_dependencies_and_write_back(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    ws = write_workspace(tmp_path / "ws", {"@t/a": [], "@t/b": [], "@t/c": ["@t/d"], "@t/d": []})
    settings = make_settings(tmp_path, task_queue)
    queue = SqliteQueue(tmp_path / "queue.db")
    for name in ("@t/a", "@t/b", "@t/c", "@t/d"):
        queue.add(QueuedPackage(name=name))
    script = BuildScript()
    async with orchestrator_worker(client, task_queue, script):
        handle = await start(client, task_queue, ws, settings, concurrency=1)
        # One signal: a is delivered twice, the higher priority wins; c waits for d
        # (a workspace dependency) although c outranks d.
        await handle.signal(
            ContinuousBuilderWorkflow.new_packages,
            pkgs(("@t/a", 1), ("@t/b", 10), ("@t/c", 5), ("@t/d", 0), ("@t/a", 20)),
        )
        await wait_for(lambda: _completed(handle, 4), "four builds")
        await handle.execute_update(ContinuousBuilderWorkflow.drain)
        result = await handle.result()
    assert script.started() == ["@t/a", "@t/b", "@t/d", "@t/c"]
    assert (result.reason, result.completed, result.failed) == ("drained", 4, 0)
    assert result.remaining_queue == []
    assert {i.name: i.status for i in queue.items()} == {
        n: SourceStatus.PUBLISHED for n in ("@t/a", "@t/b", "@t/c", "@t/d")
    }


async def _completed(handle: Handle, n: int) -> bool:
    return (await state(handle)).completed >= n


async def test_pause_holds_builds_and_resume_releases_them(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    ws = write_workspace(tmp_path / "ws", {"@t/a": [], "@t/b": []})
    # The packages come from another queue than the configured one: outcomes go back there.
    origin = SqliteQueue(tmp_path / "origin.db")
    for name in ("@t/a", "@t/b"):
        origin.add(QueuedPackage(name=name))
    delivery = pkgs(("@t/a", 1), ("@t/b", 2))
    delivery.source = QueueSourceSettings(queue_db=str(origin.path))
    script = BuildScript()
    async with orchestrator_worker(client, task_queue, script):
        handle = await start(client, task_queue, ws, make_settings(tmp_path, task_queue), 4)
        paused = await handle.execute_update(ContinuousBuilderWorkflow.pause)
        assert paused.is_paused
        await handle.signal(ContinuousBuilderWorkflow.new_packages, delivery)
        # The signal and the loop that would start builds share one workflow task: once
        # the query shows the packages queued, a running orchestrator would have started them.
        held = await wait_for(lambda: _queued(handle, 2), "packages queued while paused")
        assert held.active == [] and script.calls == []
        resumed = await handle.execute_update(ContinuousBuilderWorkflow.resume)
        assert not resumed.is_paused
        await wait_for(lambda: _completed(handle, 2), "builds after resume")
        assert sorted(script.started()) == ["@t/a", "@t/b"]
        await handle.execute_update(ContinuousBuilderWorkflow.drain)
        assert (await handle.result()).completed == 2
    assert [i.status for i in origin.items()] == [SourceStatus.PUBLISHED] * 2
    assert not (tmp_path / "queue.db").exists()


async def _queued(handle: Handle, n: int) -> OrchestratorStatus | None:
    s = await state(handle)
    return s if len(s.queue) >= n else None


async def _active(handle: Handle, n: int) -> OrchestratorStatus | None:
    s = await state(handle)
    return s if len(s.active) == n else None


async def test_drain_finishes_active_builds_starts_nothing_then_completes(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    ws = write_workspace(tmp_path / "ws", {"@t/a": [], "@t/b": [], "@t/c": []})
    script = BuildScript()
    script.hold_all = True
    async with orchestrator_worker(client, task_queue, script):
        handle = await start(client, task_queue, ws, make_settings(tmp_path, task_queue), 2)
        await handle.signal(
            ContinuousBuilderWorkflow.new_packages, pkgs(("@t/a", 3), ("@t/b", 2), ("@t/c", 1))
        )
        running = await wait_for(lambda: _active(handle, 2), "two builds running")
        draining = await handle.execute_update(ContinuousBuilderWorkflow.drain)
        assert draining.is_draining and [q.name for q in draining.queue] == ["@t/c"]
        await release_all(client, [a.child_workflow_id for a in running.active])
        result = await handle.result()
    assert result.reason == "drained"
    assert result.completed == 2
    assert [p.name for p in result.remaining_queue] == ["@t/c"]
    assert sorted(script.started()) == ["@t/a", "@t/b"]


async def test_emergency_stop_cancels_running_children(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    ws = write_workspace(tmp_path / "ws", {"@t/a": [], "@t/b": [], "@t/c": []})
    script = BuildScript()
    script.hold_all = True
    async with orchestrator_worker(client, task_queue, script):
        handle = await start(client, task_queue, ws, make_settings(tmp_path, task_queue), 2)
        await handle.signal(
            ContinuousBuilderWorkflow.new_packages, pkgs(("@t/a", 3), ("@t/b", 2), ("@t/c", 1))
        )
        running = await wait_for(lambda: _active(handle, 2), "two builds running")
        stopped = await handle.execute_update(ContinuousBuilderWorkflow.emergency_stop)
        assert sorted(stopped.cancelled) == ["@t/a", "@t/b"]
        result = await handle.result()
        for build in running.active:
            child = client.get_workflow_handle(build.child_workflow_id)
            await wait_for(
                lambda c=child: _status_is(c, WorkflowExecutionStatus.CANCELED),
                f"{build.child_workflow_id} cancelled",
            )
    assert result.reason == "emergency-stop"
    assert sorted(result.cancelled) == ["@t/a", "@t/b"]
    assert [p.name for p in result.remaining_queue] == ["@t/c"]


async def test_cancelling_the_orchestrator_cancels_its_children_too(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    ws = write_workspace(tmp_path / "ws", {"@t/a": []})
    script = BuildScript()
    script.hold_all = True
    async with orchestrator_worker(client, task_queue, script):
        handle = await start(client, task_queue, ws, make_settings(tmp_path, task_queue), 2)
        await handle.signal(ContinuousBuilderWorkflow.new_packages, pkgs(("@t/a", 1)))
        running = await wait_for(lambda: _active(handle, 1), "the build running")
        await wait_for(lambda: len(script.calls) == 1, "the child running")
        await handle.cancel()
        await wait_for(
            lambda: _status_is(handle, WorkflowExecutionStatus.CANCELED),
            "the orchestrator cancelled",
        )
        child = client.get_workflow_handle(running.active[0].child_workflow_id)
        await wait_for(
            lambda: _status_is(child, WorkflowExecutionStatus.CANCELED),
            "the abandoned-policy child cancelled as well",
        )


async def _status_is(handle: WorkflowHandle[Any, Any], status: WorkflowExecutionStatus) -> bool:
    return (await handle.describe()).status == status


async def test_adjust_concurrency_bounds_active_builds(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    names = [f"@t/p{i}" for i in range(6)]
    ws = write_workspace(tmp_path / "ws", {n: [] for n in names})
    script = BuildScript()
    script.hold_all = True
    async with orchestrator_worker(client, task_queue, script):
        handle = await start(client, task_queue, ws, make_settings(tmp_path, task_queue), 1)
        await handle.signal(
            ContinuousBuilderWorkflow.new_packages,
            pkgs(*[(n, 10 - i) for i, n in enumerate(names)]),
        )
        await wait_for(lambda: _active(handle, 1), "one build at concurrency 1")
        wider = await handle.execute_update(
            ContinuousBuilderWorkflow.adjust_concurrency, ConcurrencyInput(max_concurrent=3)
        )
        assert wider.max_concurrent == 3
        three = await wait_for(lambda: _active(handle, 3), "three builds at concurrency 3")
        await handle.execute_update(
            ContinuousBuilderWorkflow.adjust_concurrency, ConcurrencyInput(max_concurrent=2)
        )
        # Lowering the limit never cancels running builds; it bounds the next starts.
        await release_all(client, [a.child_workflow_id for a in three.active])
        await wait_for(lambda: len(script.calls) == 5, "two more builds started")
        after = await wait_for(lambda: _active(handle, 2), "two builds at concurrency 2")
        assert len(after.queue) == 1 and after.completed == 3
        await handle.execute_update(ContinuousBuilderWorkflow.emergency_stop)
        await handle.result()


async def test_invalid_control_inputs_are_rejected_with_a_message_and_not_recorded(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    ws = write_workspace(tmp_path / "ws", {"@t/a": [], "@t/zz": []})
    script = BuildScript()
    script.hold_all = True
    async with orchestrator_worker(client, task_queue, script):
        handle = await start(client, task_queue, ws, make_settings(tmp_path, task_queue), 1)
        await handle.signal(ContinuousBuilderWorkflow.new_packages, pkgs(("@t/a", 1)))
        running = await wait_for(lambda: _active(handle, 1), "the build running")
        for bad in (0, 65):
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await handle.execute_update(
                    ContinuousBuilderWorkflow.adjust_concurrency,
                    ConcurrencyInput(max_concurrent=bad),
                )
            assert f"between 1 and 64 (got {bad})" in str(err.value.cause)
        # A signal cannot be refused, but a malformed one is dropped, never queued.
        await handle.signal("new_packages", {"packages": [{"name": "not a name"}]})
        await handle.signal(ContinuousBuilderWorkflow.new_packages, pkgs(("@t/zz", 1)))
        queued = await wait_for(lambda: _queued(handle, 1), "the valid package queued")
        assert [q.name for q in queued.queue] == ["@t/zz"]
        await handle.execute_update(ContinuousBuilderWorkflow.drain)
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(ContinuousBuilderWorkflow.pause)
        assert "draining" in str(err.value.cause)
        assert (await state(handle)).max_concurrent == 1
        await release_all(client, [a.child_workflow_id for a in running.active])
        result = await handle.result()
        assert result.reason == "drained"
        assert [p.name for p in result.remaining_queue] == ["@t/zz"]
        history = await handle.fetch_history()
    accepted = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    # Only the drain reached history; the three rejected updates left no trace.
    assert [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for e in accepted
    ] == ["drain"]


async def test_a_carried_over_child_that_ends_without_signalling_is_still_accounted_for(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    ws = write_workspace(tmp_path / "ws", {"@t/a": [], "@t/b": []})
    script = BuildScript()
    script.hold_all = True
    settings = make_settings(
        tmp_path, task_queue, continueAsNewAfterBuilds=1, retryBackoffSeconds=[1]
    )
    async with orchestrator_worker(client, task_queue, script):
        handle = await start(client, task_queue, ws, settings, 2)
        first_run = (await handle.describe()).run_id
        await handle.signal(ContinuousBuilderWorkflow.new_packages, pkgs(("@t/a", 2), ("@t/b", 1)))
        both = await wait_for(lambda: _active(handle, 2), "two builds running")
        by_name = {a.name: a.child_workflow_id for a in both.active}
        await release_all(client, [by_name["@t/a"]])
        # One build finished: the orchestrator continues as new, carrying @t/b's child.
        carried = await wait_for(lambda: _new_run(handle, first_run), "a new run")
        assert [a.name for a in carried.active] == ["@t/b"] and carried.completed == 1
        # Terminated, the child never signals: the new run's watcher notices, and the
        # package is retried (attempt 2), which the test lets succeed.
        await client.get_workflow_handle(by_name["@t/b"]).terminate("operator")
        await wait_for(lambda: script.attempts("@t/b") == 2, "the second attempt of @t/b")
        await release_all(client, [script.calls[-1].child_workflow_id])
        done = await wait_for(lambda: _completed_state(handle, 2), "both completed")
        await handle.execute_update(ContinuousBuilderWorkflow.drain)
        await handle.result()
    [b] = [r for r in done.recently_completed if r.name == "@t/b"]
    assert b.attempts == 2 and done.failed == 0 and done.runs >= 2


async def _new_run(handle: Handle, old_run: str | None) -> OrchestratorStatus | None:
    s = await state(handle)
    return s if s.run_id != old_run and s.runs >= 2 else None


async def _completed_state(handle: Handle, n: int) -> OrchestratorStatus | None:
    s = await state(handle)
    return s if s.completed >= n else None
