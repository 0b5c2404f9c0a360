"""``pkgbuilder queue`` and ``pkgbuilder orchestrator`` as a user runs them (subprocesses)
against the session dev server, with an in-test worker hosting the real orchestrator and
the scripted child build."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from pkgbuilder.models.orchestrator import SourceStatus
from pkgbuilder.queue.sources.sqlite import SqliteQueue
from tests.support.orchestrator import (
    BuildScript,
    orchestrator_worker,
    release_all,
    unique_id,
    wait_for,
    write_workspace,
)

PKGBUILDER = str(Path(sys.executable).parent / "pkgbuilder")


class Cli:
    def __init__(self, env: dict[str, str], workspace: Path) -> None:
        self.env = env
        self.workspace = workspace

    async def __call__(self, *args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            PKGBUILDER,
            *args,
            "--workspace",
            str(self.workspace),
            cwd=self.workspace,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_queue_and_orchestrator_commands(
    temporal_env: WorkflowEnvironment, client: Client, task_queue: str, tmp_path: Path
) -> None:
    ws = write_workspace(tmp_path / "ws", {"@c/one": [], "@c/two": ["@c/one"], "@c/three": []})
    orch_id, schedule_id = unique_id("orchestrator"), unique_id("poller")
    db = tmp_path / "queue.db"
    (ws / "pkgbuilder.toml").write_text(
        f'[orchestrator]\nworkflow_id = "{orch_id}"\nschedule_id = "{schedule_id}"\n'
        f'queue_db = "{db}"\n'
    )
    env = {
        "PATH": os.environ["PATH"],
        "PKGBUILDER_HOME": str(tmp_path / "home"),
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "COLUMNS": "200",
    }
    cli = Cli(env, ws)
    assert (await cli("queue", "add", "@c/two", "--priority", "9"))[0] == 0
    code, out, _ = await cli("queue", "add", "@c/one", "--priority", "5")
    assert code == 0 and "queued @c/one (priority 5)" in out
    code, out, _ = await cli("queue", "list", "--json")
    assert [(r["name"], r["status"]) for r in json.loads(out)] == [
        ("@c/two", "queued"),
        ("@c/one", "queued"),
    ]

    script = BuildScript()
    async with orchestrator_worker(client, task_queue, script):
        try:
            code, out, err = await cli("orchestrator", "start", "--concurrency", "2")
            assert code == 0, err
            assert f"orchestrator {orch_id} started" in out
            assert f"poll schedule {schedule_id} created" in out
            queue = SqliteQueue(db)
            await wait_for(
                lambda: all(i.status is SourceStatus.PUBLISHED for i in queue.items()),
                "both packages published",
            )
            # @c/two outranks @c/one but depends on it.
            assert script.started() == ["@c/one", "@c/two"]

            code, out, _ = await cli("orchestrator", "status", "--json")
            state = json.loads(out)
            assert code == 0 and state["running"] is True
            assert (state["isPaused"], state["isDraining"], state["maxConcurrent"]) == (
                False,
                False,
                2,
            )
            assert (state["queue"], state["active"], state["completed"], state["failed"]) == (
                [],
                [],
                2,
                0,
            )

            code, out, _ = await cli("orchestrator", "pause")
            assert code == 0 and out.startswith("paused")
            code, out, _ = await cli("orchestrator", "status")
            assert code == 0 and f"{orch_id} paused" in " ".join(out.split())
            code, out, _ = await cli("orchestrator", "concurrency", "3")
            assert code == 0 and "concurrency set to 3" in out
            code, _, err = await cli("orchestrator", "concurrency", "65")
            assert code == 2 and "less than or equal to 64" in err
            code, out, _ = await cli("orchestrator", "resume")
            assert code == 0 and out.startswith("resumed")

            # A third package, delivered by poll-now, builds until the test releases it.
            script.hold_all = True
            assert (await cli("queue", "add", "@c/three"))[0] == 0
            code, out, _ = await cli("orchestrator", "poll-now")
            assert code == 0 and "triggered" in out
            await wait_for(lambda: script.started()[-1:] == ["@c/three"], "@c/three started")
            code, out, _ = await cli("orchestrator", "drain")
            assert code == 0 and out.startswith("draining: 1 build(s) finishing")
            code, out, err = await cli("orchestrator", "resume")
            assert code == 2 and "Cannot resume: the orchestrator is draining" in err
            assert "Traceback" not in err
            await release_all(client, [script.calls[-1].child_workflow_id])
            await wait_for(
                lambda: queue.items()[-1].status is SourceStatus.PUBLISHED, "@c/three published"
            )

            async def orchestrator_closed() -> bool:
                desc = await client.get_workflow_handle(orch_id).describe()
                return desc.status is not WorkflowExecutionStatus.RUNNING

            await wait_for(orchestrator_closed, "the drained orchestrator to complete")
            code, out, _ = await cli("orchestrator", "status")
            assert code == 1 and "last run COMPLETED (drained)" in out
            code, out, _ = await cli("orchestrator", "status", "--json")
            assert json.loads(out)["result"]["reason"] == "drained"
            code, _, err = await cli("orchestrator", "emergency-stop")
            assert code == 2 and "No orchestrator is running" in err
        finally:
            await client.get_schedule_handle(schedule_id).delete()
    code, _, err = await cli("orchestrator", "poll-now")
    assert code == 2 and f"The poll schedule '{schedule_id}' does not exist" in err
