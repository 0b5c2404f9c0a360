"""The ``package-queue-poller`` Schedule end to end on the real dev server: a real MCP
packages server (``mcp`` SDK, streamable HTTP, bearer token) feeds the poller, the poller
signals-with-start the orchestrator, and the outcomes are written back to the MCP server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, ScheduleOverlapPolicy

from pkgbuilder.config import BuildSettings, TemporalSettings
from pkgbuilder.models.orchestrator import PollerResult
from pkgbuilder.runtime.orchestrator import (
    bootstrap,
    ensure_poll_schedule,
    orchestrator_running,
    trigger_poll,
)
from pkgbuilder.workflows.orchestrator import ContinuousBuilderWorkflow
from tests.support.orchestrator import (
    BuildScript,
    orchestrator_worker,
    unique_id,
    wait_for,
    write_workspace,
)
from tests.support.packages_mcp import packages_mcp_server

TOKEN = "poller-test-token-81c2"  # accepted by the test server only; not a secret
TOKEN_ENV = "PKGBUILDER_TEST_PACKAGES_MCP_TOKEN"


def settings_for(task_queue: str, **orchestrator: Any) -> BuildSettings:
    return BuildSettings(
        temporal=TemporalSettings(task_queue=task_queue),
        orchestrator={
            "workflowId": unique_id("orchestrator"),
            "scheduleId": unique_id("poller"),
            **orchestrator,
        },
    )


async def poll_results(client: Client, schedule_id: str) -> list[PollerResult]:
    desc = await client.get_schedule_handle(schedule_id).describe()
    results = []
    for action in desc.info.recent_actions:
        wid = action.action.workflow_id  # type: ignore[attr-defined]
        results.append(await client.get_workflow_handle(wid, result_type=PollerResult).result())
    return results


async def test_scheduled_poller_feeds_the_orchestrator_from_mcp_and_gets_outcomes_back(
    client: Client, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    ws = write_workspace(tmp_path / "ws", {"@m/good": [], "@m/bad": []})
    script = BuildScript()
    script.fail_first = {"@m/bad": 99}
    async with packages_mcp_server(TOKEN) as api, orchestrator_worker(client, task_queue, script):
        api.queue[:] = [
            {"id": "id-good", "name": "@m/good", "priority": 5, "dependencies": []},
            {"id": "id-bad", "name": "@m/bad", "priority": 9, "dependencies": []},
            {"id": "id-junk", "name": "not a package", "priority": 1},
        ]
        settings = settings_for(
            task_queue,
            source="mcp",
            maxAttempts=2,
            retryBackoffSeconds=[1],
            mcp={"url": api.url, "tokenEnv": TOKEN_ENV},
        )
        orch_id = settings.orchestrator["workflowId"]
        schedule_id = settings.orchestrator["scheduleId"]
        assert await ensure_poll_schedule(client, settings, str(ws)) == "created"
        assert await ensure_poll_schedule(client, settings, str(ws)) == "updated"
        schedule = (await client.get_schedule_handle(schedule_id).describe()).schedule
        assert schedule.spec.intervals[0].every == timedelta(minutes=30)
        assert schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        try:
            assert not await orchestrator_running(client, orch_id)
            await trigger_poll(client, settings)
            await wait_for(lambda: len(api.updates) == 2, "both outcomes written back", 90)
            assert await orchestrator_running(client, orch_id)  # started by the poll
            await trigger_poll(client, settings)  # nothing ready any more
            await wait_for(lambda: len(api.queue_requests) == 2, "the second poll", 60)
            results = await wait_for(
                lambda: _two_results(client, schedule_id), "two finished polls", 60
            )
        finally:
            await client.get_schedule_handle(schedule_id).delete()
            orchestrator = client.get_workflow_handle_for(ContinuousBuilderWorkflow.run, orch_id)
            status = await orchestrator.query(ContinuousBuilderWorkflow.get_state)
            await orchestrator.terminate("test over")

    assert api.updates_for("id-good") == [{"id": "id-good", "data": {"status": "published"}}]
    [bad] = api.updates_for("id-bad")
    assert bad["data"]["status"] == "failed"
    assert "scripted failure of @m/bad" in bad["data"]["metadata"]["error"]
    assert script.attempts("@m/bad") == 2 and script.attempts("@m/good") == 1
    assert api.queue_requests[0] == {"limit": 50, "filters": {"exclude_blocked": True}}
    assert set(api.tokens_seen) == {TOKEN}
    first, second = results
    assert (sorted(first.names), first.rejected, first.signalled) == (
        ["@m/bad", "@m/good"],
        ["not a package"],
        True,
    )
    assert (second.fetched, second.signalled) == (0, False)
    assert (status.completed, status.failed) == (1, 1)


async def _two_results(client: Client, schedule_id: str) -> list[PollerResult] | None:
    results = await poll_results(client, schedule_id)
    return results if len(results) == 2 else None


async def test_worker_bootstrap_starts_orchestrator_and_schedule_when_configured(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    ws = write_workspace(tmp_path / "ws", {"@b/one": []})
    settings = settings_for(
        task_queue,
        autoStart=True,
        pollerEnabled=True,
        pollIntervalMinutes=45,
        queueDb=str(tmp_path / "q.db"),
    )
    orch_id = settings.orchestrator["workflowId"]
    schedule_id = settings.orchestrator["scheduleId"]
    async with orchestrator_worker(client, task_queue, BuildScript()):
        try:
            first = await bootstrap(client, settings, str(ws))
            assert first == [
                f"orchestrator {orch_id} started",
                f"poll schedule {schedule_id} created (every 45 min)",
            ]
            again = await bootstrap(client, settings, str(ws))
            assert again == [
                f"orchestrator {orch_id} already running",
                f"poll schedule {schedule_id} updated (every 45 min)",
            ]
            state = await client.get_workflow_handle_for(
                ContinuousBuilderWorkflow.run, orch_id
            ).query(ContinuousBuilderWorkflow.get_state)
            assert state.workspace_root == str(ws) and not state.is_paused
        finally:
            await client.get_schedule_handle(schedule_id).delete()
            await client.get_workflow_handle(orch_id).terminate("test over")
    nothing = settings_for(task_queue)
    assert await bootstrap(client, nothing, str(ws)) == []
