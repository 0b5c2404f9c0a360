"""Operator experience: the state found from any subdirectory, the UI after a build, the
outcome of every package visible in Temporal, cancel and no-worker dead ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from pkgbuilder import search_attributes as sa
from pkgbuilder.config import find_workspace_root, resolve_home
from pkgbuilder.runtime.server import DYNAMIC_CONFIG
from pkgbuilder.workflows.suite import SuiteBuildWorkflow
from tests.conftest import REPO_ROOT, copy_workspace, free_port, pkgbuilder_cli
from tests.e2e.test_cli_build import cli_env, run_cli

FAILING = REPO_ROOT / "tests" / "fixtures" / "failing-monorepo"


@pytest.fixture
def address(temporal_env: WorkflowEnvironment) -> str:
    return temporal_env.client.service_client.config.target_host


def test_home_is_found_upward_from_any_subdirectory(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    deep = ws / "packages" / "core" / "a"
    deep.mkdir(parents=True)
    (ws / "package.json").write_text(json.dumps({"private": True, "workspaces": ["packages/*"]}))
    (deep / "package.json").write_text(json.dumps({"name": "a"}))  # a package, not a root
    assert find_workspace_root(deep) == ws
    assert resolve_home(deep, env={}) == ws / ".pkgbuilder"
    assert resolve_home(ws, env={}) == ws / ".pkgbuilder"
    # An explicit PKGBUILDER_HOME wins; outside any workspace it is ./.pkgbuilder.
    assert resolve_home(deep, env={"PKGBUILDER_HOME": str(tmp_path / "h")}) == tmp_path / "h"
    lone = tmp_path / "lone"
    lone.mkdir()
    assert resolve_home(lone, env={}) == lone / ".pkgbuilder"
    # pnpm workspaces and pkgbuilder.toml mark a root too.
    pnpm = tmp_path / "pnpm"
    (pnpm / "sub").mkdir(parents=True)
    (pnpm / "pnpm-workspace.yaml").write_text("packages: ['sub']\n")
    assert find_workspace_root(pnpm / "sub") == pnpm


def _kill_kept_server(home: Path) -> None:
    marker = home / "temporal-server.pid"
    if marker.exists():
        pid = int(marker.read_text().split()[0])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_history_stays_viewable_from_a_subdirectory(tmp_path: Path) -> None:
    """No PKGBUILDER_HOME: a build from a package directory keeps its state in the
    workspace root; `status` and `ui` find it from elsewhere in the tree; --keep-server
    leaves the UI up and `ui --stop` stops it."""
    ws = copy_workspace(
        FAILING,
        tmp_path / "ws",
        extra_config=('[verify]\ncommand = ["node", "-e", "console.log(42)"]\n'),
    )
    sub = ws / "packages" / "core"
    port, ui_port = free_port(), free_port()
    env = cli_env(f"localhost:{port}", PKGBUILDER_UI_PORT=str(ui_port))
    home = ws / ".pkgbuilder"
    try:
        proc = run_cli(
            ["build", "../..", "--only", "@fx/solo", "--build-id", "sub1", "--keep-server"],
            env,
            cwd=sub,
        )
        assert proc.returncode == 0, proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert last == (
            f"Temporal UI: http://localhost:{ui_port}/namespaces/default/workflows/suite-sub1"
        ), proc.stderr
        assert (home / "temporal.db").is_file() and (home / "temporal-server.pid").is_file()
        # The history database is in write-ahead-log mode (SQLite header bytes 18-19 are 2
        # for WAL, 1 for the rollback journal): see runtime/server.SQLITE_PRAGMAS.
        assert (home / "temporal.db").read_bytes()[18:20] == b"\x02\x02"
        # The kept server runs with the transfer-queue read limit raised (DYNAMIC_CONFIG).
        pid = int((home / "temporal-server.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        for setting in DYNAMIC_CONFIG:
            assert setting.encode() in cmdline, cmdline
        assert (
            subprocess.run(
                ["git", "status", "--porcelain", ".pkgbuilder"],
                cwd=ws,
                capture_output=True,
                text=True,
            ).stdout
            == ""
        )
        ui = run_cli(["ui", "sub1"], env, cwd=ws / "packages" / "utility" / "mid")
        assert ui.returncode == 0 and f"UI http://localhost:{ui_port}" in ui.stderr, ui.stderr
        stop = run_cli(["ui", "--stop"], env, cwd=sub)
        assert "stopped the embedded server" in stop.stderr, stop.stderr
        # Server gone: status boots the embedded one again on the same database.
        status = run_cli(["status", "sub1", "--json"], env, cwd=ws / "packages")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["successful"] == 1
        # Without --keep-server the last line names the command that reopens the UI.
        outside = run_cli(
            ["build", str(ws), "--only", "@fx/solo", "--build-id", "sub2"], env, cwd=tmp_path
        )
        assert outside.returncode == 0, outside.stderr
        assert "VERIFY passed" in outside.stdout  # the suite command's outcome is shown
        assert "report page: " in outside.stdout and "suites/sub2.html" in outside.stdout
        assert outside.stderr.strip().splitlines()[-1] == (
            "see it in the Temporal UI: pkgbuilder ui sub2 --workspace ws"
        )
        viewer = subprocess.Popen(
            [pkgbuilder_cli(), "ui", "sub2", "--workspace", "ws"],
            env=env,
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            assert viewer.stderr is not None
            assert "starting the Temporal dev server" in viewer.stderr.readline()
            first = viewer.stderr.readline()  # once the UI answers
            assert f"http://localhost:{ui_port}/namespaces/default/workflows/suite-sub2" in first
            assert str(home / "temporal.db") in first
        finally:
            os.killpg(viewer.pid, signal.SIGINT)
            try:
                viewer.wait(timeout=30)
            finally:  # never leave it behind, even when it did not stop
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(viewer.pid, signal.SIGKILL)
    finally:
        _kill_kept_server(home)


async def _visible(client: Client, query: str, want: int) -> list[str]:
    """Workflow ids matching a list filter (visibility may lag a moment)."""
    ids: list[str] = []
    for _ in range(50):
        ids = [wf.id async for wf in client.list_workflows(query)]
        if len(ids) >= want:
            return ids
        await asyncio.sleep(0.2)
    return ids


@pytest.mark.slow
async def test_no_worker_is_noticed_and_outcomes_are_search_attributes(
    address: str, client: Client, tmp_path: Path
) -> None:
    ws = copy_workspace(FAILING, tmp_path / "ws")
    env = cli_env(address)
    detached = run_cli(["build", str(ws), "--detach", "--build-id", "nowork"], env)
    assert detached.returncode == 0, detached.stderr
    assert "no live worker polls task queue" in detached.stderr
    assert "pkgbuilder build --resume" in detached.stderr
    started = time.monotonic()
    status = run_cli(["status", "nowork"], env)
    assert time.monotonic() - started < 10, "status took too long to notice"
    assert status.returncode == 1 and "no live worker serves task queue" in status.stderr
    assert "pkgbuilder build --resume" in status.stderr and "Traceback" not in status.stderr
    # One suite per workspace at a time.
    again = run_cli(["build", str(ws), "--build-id", "second"], env)
    assert again.returncode == 2 and "Build nowork of this workspace is unfinished" in again.stderr
    resumed = run_cli(["build", str(ws), "--resume", "--json"], env)
    assert resumed.returncode == 1, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["buildId"] == "nowork" and summary["failed"] == 1
    by_name = {r["packageName"]: r for r in summary["packageReports"]}
    # Blocked packages never started: no workflow id that would not exist.
    assert by_name["@fx/top"]["status"] == "blocked" and by_name["@fx/top"]["workflowId"] == ""
    failed = await _visible(client, 'PkgBuildId = "nowork" AND PkgStatus = "failed"', 1)
    assert failed == [by_name["@fx/broken"]["workflowId"]]
    ok = await _visible(client, 'PkgBuildId = "nowork" AND PkgStatus = "success"', 3)
    assert len(ok) == 3
    suites = await _visible(
        client, 'PkgBuildId = "nowork" AND PkgKind = "suite" AND PkgResult = "failed"', 1
    )
    assert suites == ["suite-nowork"]
    child = await client.get_workflow_handle(failed[0]).describe()
    assert child.typed_search_attributes.get(sa.BUILD_PHASE) == "done"
    assert child.typed_search_attributes.get(sa.PACKAGE_NAME) == "@fx/broken"
    assert child.typed_search_attributes.get(sa.KIND) == "package"
    # The suite set name, build, kind and first phase at the child's start: a package that
    # passed upserted only its outcome (one event, one visibility write per package).
    history = await client.get_workflow_handle(ok[0]).fetch_history()
    upserts = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    ]
    assert len(upserts) == 1
    # A finished build id is not silently reused; --rebuild reuses it on purpose.
    reuse = run_cli(["build", str(ws), "--build-id", "nowork"], env)
    assert reuse.returncode == 2 and "--rebuild" in reuse.stderr, reuse.stderr
    rebuilt = run_cli(
        ["build", str(ws), "--build-id", "nowork", "--rebuild", "--only", "@fx/solo"], env
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    # Without an id, status shows this workspace's newest suite (the server has others).
    other = copy_workspace(FAILING, tmp_path / "other")
    assert (
        run_cli(
            ["build", str(other), "--only", "@fx/base", "--build-id", "elsewhere"], env
        ).returncode
        == 0
    )
    latest = run_cli(["status", "--json"], env, cwd=ws / "packages")
    assert json.loads(latest.stdout)["buildId"] == "nowork", latest.stderr


@pytest.mark.slow
async def test_interrupt_then_cancel_prints_the_summary(
    address: str, client: Client, tmp_path: Path
) -> None:
    """Ctrl-C leaves the suite unfinished and says what to run; cancel (no worker left)
    runs one in-process, and the resumed foreground build ends with the summary and
    'cancelled'; status shows that summary afterwards."""
    ws = copy_workspace(FAILING, tmp_path / "ws")
    env = cli_env(address, PKGBUILDER_TEST_SLEEP_MS="15000")
    handle = client.get_workflow_handle("suite-intr")

    async def wait_active() -> None:
        for _ in range(300):
            with contextlib.suppress(RPCError, WorkflowQueryFailedError):
                if (await handle.query(SuiteBuildWorkflow.get_state)).active:
                    return
            await asyncio.sleep(0.2)
        raise AssertionError("no package started")

    first = subprocess.Popen(
        [pkgbuilder_cli(), "build", str(ws), "--build-id", "intr"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    await wait_active()
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    assert "Interrupted: build intr is unfinished" in err and "packages are done and kept" in err
    assert "pkgbuilder build --resume" in err and "pkgbuilder cancel intr" in err
    resumed = subprocess.Popen(
        [pkgbuilder_cli(), "build", str(ws), "--resume"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    await asyncio.sleep(1.0)
    await wait_active()
    cancel = run_cli(["cancel", "intr"], env)
    assert cancel.returncode == 0, cancel.stderr
    assert "suite intr cancelled" in cancel.stderr and "cancelled" in cancel.stdout
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 1, err
    assert "— cancelled" in out.replace("\n", " "), out
    status = run_cli(["status", "intr", "--json"], env)
    assert status.returncode == 1, status.stderr
    report = json.loads(status.stdout)
    assert report["error"] == "cancelled" and report["cancelled"] >= 1
    for r in report["packageReports"]:
        assert r["version"] == "1.0.0"
        if r["status"] == "cancelled" and r["startTime"] is None:
            assert r["duration"] == 0 and r["endTime"] is None
    running = [r for r in report["packageReports"] if r["status"] == "cancelled" and r["startTime"]]
    assert running and all(r["duration"] > 0 for r in running)
    assert not [r for r in report["slowestPackages"] if r["status"] == "cancelled"]


def test_progress_lines_and_header_for_a_pipe() -> None:
    """Plain lines when not a terminal: one per change, nothing repeated; the header is
    its own line, never wrapped into the table's width; rows keep the workspace order."""
    from datetime import UTC, datetime

    from rich.console import Console

    from pkgbuilder.cli.progress import LineProgress, state_table
    from pkgbuilder.models.build import PackageState, PackageStatus, SuitePhase, SuiteState
    from pkgbuilder.models.common import Category

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    state = SuiteState(
        build_id="20261202-004001-abcdef",
        phase=SuitePhase.BUILD,
        max_concurrent=4,
        packages=[
            PackageState(name="@x/zeta", category=Category.CORE, dependencies=[]),
            PackageState(name="@x/alpha", category=Category.CORE, dependencies=[]),
        ],
    )
    lines = LineProgress()
    assert lines.lines(state) == ["phase BUILD"]
    state.packages[0].status = PackageStatus.BUILDING
    state.packages[0].start_time = t0
    assert lines.lines(state) == ["@x/zeta building"]
    assert lines.lines(state) == []
    state.packages[0].status = PackageStatus.FAILED
    state.packages[0].end_time = t0.replace(second=2)
    state.packages[0].error = "test: 1 failing"
    assert lines.lines(state) == ["@x/zeta failed in 2.0s: test: 1 failing"]
    wide = Console(width=100, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    wide.print(state_table(state))
    text = wide.export_text()
    # One line although the table below is narrower than the header.
    assert text.splitlines()[0] == (
        "suite 20261202-004001-abcdef — BUILD — 1/2 done, 0 building (max 4)"
    )
    assert text.index("@x/zeta") < text.index("@x/alpha")  # workspace order, not re-sorted


def test_help_shows_no_bool_placeholder() -> None:
    from typer.testing import CliRunner

    from pkgbuilder.cli.app import app

    for command in (["build", "--help"], ["status", "--help"], ["ui", "--help"]):
        result = CliRunner().invoke(app, command, env={"COLUMNS": "120"})
        assert (
            result.exit_code == 0
            and "--json" in CliRunner().invoke(app, ["build", "--help"]).stdout
        )
        assert "<bool>" not in result.stdout, result.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_terminal_ends_with_the_summary_not_a_stale_frame(address: str, tmp_path: Path) -> None:
    """In a real terminal (tmux) the live table gives way to the summary: the final screen
    holds the summary and no 'N building' frame above it."""
    ws = copy_workspace(FAILING, tmp_path / "ws")
    env = cli_env(address)
    script = tmp_path / "run.sh"
    exports = "".join(
        f"export {k}={shlex.quote(v)}\n"
        for k, v in env.items()
        if k.startswith(("TEMPORAL_", "PATH", "HOME", "VIRTUAL_ENV"))
    )
    script.write_text(
        f"{exports}{shlex.quote(pkgbuilder_cli())} build {shlex.quote(str(ws))} "
        "--only @fx/other --build-id tty1; echo EXIT=$?; sleep 60\n"
    )
    sock = f"pkgb-{os.getpid()}"
    subprocess.run(
        ["tmux", "-L", sock, "new-session", "-d", "-x", "110", "-y", "60", "bash", str(script)],
        check=True,
    )
    try:
        screen = ""
        for _ in range(300):
            screen = subprocess.run(
                ["tmux", "-L", sock, "capture-pane", "-p"], capture_output=True, text=True
            ).stdout
            if "EXIT=" in screen:
                break
            time.sleep(0.3)
        assert "EXIT=0" in screen, screen
        assert "suite tty1: 2 succeeded, 0 failed" in screen, screen
        assert "building (max" not in screen, screen
        assert "pkgbuilder ui tty1" in screen or "Temporal UI:" in screen
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)


@pytest.mark.slow
async def test_no_command_relies_on_the_stale_poller_of_a_gone_worker(
    address: str, client: Client, tmp_path: Path
) -> None:
    """A SIGKILLed local worker's poller is still listed by the server, yet no command counts
    on it (its pid is gone). A stale poller of another host can only be told by its work
    waiting: a foreground build and a cancel then say what they waited for and run a worker
    themselves."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
    from temporalio.worker import Worker

    from pkgbuilder.runtime.client import has_dedicated_workers
    from pkgbuilder.runtime.worker import workflow_runner

    ws = copy_workspace(FAILING, tmp_path / "ws")
    env = cli_env(address)
    tq = env["TEMPORAL_TASK_QUEUE"]

    async def wait_dedicated() -> None:
        for _ in range(150):
            if await has_dedicated_workers(client, "default", tq):
                return
            await asyncio.sleep(0.2)
        raise AssertionError("the dedicated worker never polled")

    worker = subprocess.Popen(
        [pkgbuilder_cli(), "worker", "--workspace", str(ws)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        await wait_dedicated()
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    listed = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace="default",
            task_queue=TaskQueue(name=tq),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    assert any(p.identity.startswith(f"{worker.pid}@") for p in listed.pollers)
    assert not await has_dedicated_workers(client, "default", tq)
    # A worker of another host that stopped: its recent poller looks alive.
    async with Worker(
        client,
        task_queue=tq,
        workflows=[SuiteBuildWorkflow],
        identity="4242@elsewhere",
        workflow_runner=workflow_runner(),
    ):
        await wait_dedicated()
    assert await has_dedicated_workers(client, "default", tq)
    proc = await asyncio.to_thread(
        run_cli, ["build", str(ws), "--only", "@fx/solo", "--build-id", "stale"], env
    )
    assert proc.returncode == 0, proc.stderr
    assert "a workflow task of suite-stale waited more than 10 s for a worker" in proc.stderr
    assert "running one in-process" in proc.stderr
    detached = run_cli(["build", str(ws), "--detach", "--build-id", "stale2"], env)
    assert detached.returncode == 0, detached.stderr
    cancel = await asyncio.to_thread(run_cli, ["cancel", "stale2"], env)
    assert cancel.returncode == 0, cancel.stderr
    assert "the cancellation waited more than 10 s for a worker" in cancel.stderr
    assert "suite stale2 cancelled" in cancel.stderr


def test_foreground_server_dies_with_the_command_even_by_sigkill(tmp_path: Path) -> None:
    from pkgbuilder.runtime.client import server_answers

    port = free_port()
    proc = subprocess.Popen(
        [
            pkgbuilder_cli(),
            "server",
            "--port",
            str(port),
            "--headless",
            "--db",
            str(tmp_path / "t.db"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(150):
            if asyncio.run(server_answers(f"127.0.0.1:{port}")):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the server never answered")
        proc.kill()  # the command only, not its process group
        proc.wait()
        for _ in range(100):
            if not asyncio.run(server_answers(f"127.0.0.1:{port}", timeout=0.3)):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the dev server outlived its command")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
