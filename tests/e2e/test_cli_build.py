"""`pkgbuilder build/status/cancel` as a user runs them: real subprocesses, exit codes,
--json schema, one-sentence errors, the embedded server, a worker killed mid-suite."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from pkgbuilder.config import load_settings
from pkgbuilder.models.build import BuildReport, PackageStatus
from pkgbuilder.runtime.client import has_dedicated_workers
from pkgbuilder.runtime.worker import running_workers
from pkgbuilder.workflows.suite import SuiteBuildWorkflow
from tests.conftest import EXAMPLES, REPO_ROOT, copy_workspace, free_port, pkgbuilder_cli

FAILING = REPO_ROOT / "tests" / "fixtures" / "failing-monorepo"


def cli_env(address: str | None, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PKGBUILDER_") or k == "PKGBUILDER_CACHE_DIR"
    }
    if address:
        env["TEMPORAL_ADDRESS"] = address
    env["TEMPORAL_TASK_QUEUE"] = f"tq-{uuid.uuid4()}"
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: dict[str, str], timeout: int = 300, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [pkgbuilder_cli(), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def assert_one_sentence_error(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert fragment in proc.stderr
    assert proc.stdout == ""


@pytest.fixture
def address(temporal_env: WorkflowEnvironment) -> str:
    return temporal_env.client.service_client.config.target_host


def test_json_summary_schema_and_exit_code_1(address: str, tmp_path: Path) -> None:
    ws = copy_workspace(FAILING, tmp_path / "ws")
    proc = run_cli(["build", str(ws), "--json", "--build-id", "json-schema"], cli_env(address))
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)  # stdout is exactly the summary JSON
    assert data["buildId"] == "json-schema"
    assert data["totalPackages"] == 6 and data["failed"] == 1 and data["blocked"] == 2
    for entry in data["packageReports"]:
        assert entry["status"] in {"success", "failed", "blocked", "skipped"}
        assert "error" in entry and "packageName" in entry
        for key in ("startTime", "endTime"):
            if entry[key] is not None:
                datetime.fromisoformat(entry[key].replace("Z", "+00:00"))
    never_started = [e for e in data["packageReports"] if e["status"] == "blocked"]
    assert all(e["startTime"] is None and e["endTime"] is None for e in never_started)


def test_user_errors_are_one_sentence_with_exit_code_2(address: str, tmp_path: Path) -> None:
    env = cli_env(address)
    assert_one_sentence_error(
        run_cli(["build", str(tmp_path / "missing")], env), "is not a directory"
    )
    cyc = tmp_path / "cyc"
    for name, dep in (("a", "b"), ("b", "a")):
        d = cyc / "packages" / name
        d.mkdir(parents=True)
        (d / "package.json").write_text(
            json.dumps(
                {"name": f"@c/{name}", "version": "1.0.0", "dependencies": {f"@c/{dep}": "*"}}
            )
        )
    (cyc / "package.json").write_text(json.dumps({"private": True, "workspaces": ["packages/*"]}))
    proc = run_cli(["build", str(cyc)], env)
    assert_one_sentence_error(proc, "@c/a → @c/b → @c/a")
    bad_cfg = copy_workspace(FAILING, tmp_path / "badcfg")
    (bad_cfg / "pkgbuilder.toml").write_text("max_concurrent_builds = 0\n")
    assert_one_sentence_error(run_cli(["build", str(bad_cfg)], env), "maxConcurrentBuilds")
    proc = run_cli(["build", str(bad_cfg), "--only", "@nope/x"], env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = run_cli(["status", "no-such-build"], env)
    assert_one_sentence_error(proc, "No build with id no-such-build")


@pytest.mark.slow
def test_main_job_on_embedded_server_then_status_reads_persisted_result(tmp_path: Path) -> None:
    """The README's main command: no server running → embedded, persistent server."""
    ws = copy_workspace(EXAMPLES / "demo-monorepo", tmp_path / "demo")
    home = tmp_path / "home"
    port = free_port()
    env = cli_env(f"localhost:{port}", PKGBUILDER_HOME=str(home), PKGBUILDER_HEADLESS="1")
    proc = run_cli(["build", str(ws), "--build-id", "demo1"], env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "booting an embedded one" in proc.stderr
    assert "7 succeeded" in proc.stdout.replace("\n", " ") or "succeeded" in proc.stdout
    assert (home / "temporal.db").is_file()
    day_dirs = [d for d in (ws / "production" / "reports").iterdir() if d.is_dir()]
    assert (day_dirs[0] / "suite-summary.json").is_file()
    # A later command boots the embedded server again and reads the persisted history.
    status = run_cli(["status", "demo1", "--json"], env)
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["buildId"] == "demo1" and data["failed"] == 0
    assert {e["status"] for e in data["packageReports"]} == {"success"}


@pytest.mark.slow
async def test_a_build_never_relies_on_another_commands_in_process_worker(
    address: str, client: Client, tmp_path: Path
) -> None:
    """Another command's in-process worker polls the task queue and stops mid-build (that
    command ended). The build ran its own worker all along, so it still completes."""
    ws = copy_workspace(EXAMPLES / "demo-monorepo", tmp_path / "demo")
    env = cli_env(address)
    tq = env["TEMPORAL_TASK_QUEUE"]
    settings = load_settings(ws, env={"TEMPORAL_TASK_QUEUE": tq, "TEMPORAL_ADDRESS": address})
    dedicated_tq = f"{tq}-dedicated"
    async with running_workers(client, settings, task_queue=dedicated_tq, in_process=False):
        deadline = time.monotonic() + 20
        while not await has_dedicated_workers(client, "default", dedicated_tq):
            assert time.monotonic() < deadline, "the dedicated worker never showed as a poller"
            await asyncio.sleep(0.2)
    async with running_workers(client, settings, in_process=True):
        await asyncio.sleep(1.0)  # polling by now, yet it is not a dedicated worker
        assert not await has_dedicated_workers(client, "default", tq)
        proc = await asyncio.create_subprocess_exec(
            pkgbuilder_cli(),
            "build",
            str(ws),
            "--json",
            "--build-id",
            "shared-queue",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        handle = client.get_workflow_handle("suite-shared-queue")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the suite's children are running
            with contextlib.suppress(RPCError, WorkflowQueryFailedError):
                state = await handle.query(SuiteBuildWorkflow.get_state)
                if state.active:
                    break
            await asyncio.sleep(0.2)
    # The other command's worker is gone, with whatever it was running.
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, stderr.decode()
    data = json.loads(stdout)
    assert {e["status"] for e in data["packageReports"]} == {"success"}


@pytest.mark.slow
async def test_worker_killed_mid_suite_resumes_without_rebuilding(
    address: str, client: Client, tmp_path: Path
) -> None:
    ws = copy_workspace(FAILING, tmp_path / "ws", extra_config="[timeouts]\nheartbeatSeconds = 3\n")
    log = tmp_path / "steps.log"
    env = cli_env(address, PKGBUILDER_TEST_LOG=str(log), PKGBUILDER_TEST_SLEEP_MS="1500")
    worker_log = (tmp_path / "worker1.log").open("w")
    worker = subprocess.Popen(
        [pkgbuilder_cli(), "worker", "--workspace", str(ws)],
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        proc = run_cli(["build", str(ws), "--detach", "--build-id", "killme"], env)
        assert proc.returncode == 0, proc.stderr
        handle = client.get_workflow_handle("suite-killme", result_type=BuildReport)
        done_before: set[str] = set()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = await handle.query(SuiteBuildWorkflow.get_state)
            done_before = {
                p.name
                for p in state.packages
                if p.status in (PackageStatus.SUCCESS, PackageStatus.FAILED)
            }
            if done_before and state.active:
                break
            await asyncio.sleep(0.3)
        assert done_before, "nothing finished before the kill"
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        lines_at_kill = log.read_text().count("\n")
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    worker2 = subprocess.Popen(
        [pkgbuilder_cli(), "worker", "--workspace", str(ws)],
        env=env,
        stdout=(tmp_path / "worker2.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        report = await handle.result()
    finally:
        os.killpg(worker2.pid, signal.SIGTERM)
        worker2.wait(timeout=30)
    statuses = {r.package_name: r.status.value for r in report.package_reports}
    assert statuses == {
        "@fx/base": "success",
        "@fx/other": "success",
        "@fx/solo": "success",
        "@fx/broken": "failed",
        "@fx/mid": "blocked",
        "@fx/top": "blocked",
    }
    builds: dict[str, int] = {}
    for line in log.read_text().splitlines():
        name, script = line.split()[:2]
        if script == "build":
            builds[name] = builds.get(name, 0) + 1
    for name in done_before:
        assert builds[name] == 1, f"{name} was rebuilt after the worker restart"
    assert log.read_text().count("\n") > lines_at_kill  # the second worker did real work


def test_server_command_runs_a_persistent_dev_server(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "t.db"
    proc = subprocess.Popen(
        [pkgbuilder_cli(), "server", "--port", str(port), "--headless", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        async def probe() -> bool:
            from pkgbuilder.runtime.client import connect, server_answers

            for _ in range(100):
                if await server_answers(f"127.0.0.1:{port}"):
                    try:
                        c = await connect(f"127.0.0.1:{port}")
                        await c.count_workflows()
                        return True
                    except Exception:
                        pass
                await asyncio.sleep(0.2)
            return False

        assert asyncio.run(probe())
        assert db.is_file()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.slow
async def test_cancel_stops_the_suite_and_its_children(
    address: str, client: Client, tmp_path: Path
) -> None:
    ws = copy_workspace(FAILING, tmp_path / "ws")
    env = cli_env(address, PKGBUILDER_TEST_SLEEP_MS="20000")
    worker = subprocess.Popen(
        [pkgbuilder_cli(), "worker", "--workspace", str(ws)],
        env=env,
        stdout=(tmp_path / "w.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert (
            run_cli(["build", str(ws), "--detach", "--build-id", "cancelme"], env).returncode == 0
        )
        handle = client.get_workflow_handle("suite-cancelme", result_type=BuildReport)
        for _ in range(200):
            state = await handle.query(SuiteBuildWorkflow.get_state)
            if state.active:
                break
            await asyncio.sleep(0.2)
        from pkgbuilder.models.common import name_slug

        child_id = f"build-cancelme-{name_slug(state.active[0])}"
        proc = run_cli(["cancel", "cancelme"], env)
        assert proc.returncode == 0, proc.stderr
        from temporalio.client import WorkflowExecutionStatus

        for _ in range(150):
            if (await handle.describe()).status == WorkflowExecutionStatus.CANCELED:
                break
            await asyncio.sleep(0.2)
        assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
        child = await client.get_workflow_handle(child_id).describe()
        assert child.status == WorkflowExecutionStatus.CANCELED
        again = run_cli(["cancel", "cancelme"], env)
        assert again.returncode == 1 and "is not running" in again.stderr
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
