"""Operator experience: the state found from any subdirectory, the UI after a build, the
outcome of every package visible in Temporal, cancel and no-worker dead ends."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT, copy_workspace, free_port, pkgbuilder_cli
from tests.test_cli_build import cli_env, run_cli

from pkgbuilder.config import find_workspace_root, resolve_home

FAILING = REPO_ROOT / "tests" / "fixtures" / "failing-monorepo"


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
    ws = copy_workspace(FAILING, tmp_path / "ws")
    sub = ws / "packages" / "core"
    port, ui_port = free_port(), free_port()
    env = cli_env(f"localhost:{port}", PKGBUILDER_UI_PORT=str(ui_port))
    home = ws / ".pkgbuilder"
    try:
        proc = run_cli(["build", "../..", "--build-id", "sub1", "--keep-server"], env, cwd=sub)
        assert proc.returncode == 1, proc.stderr  # @fx/broken fails on purpose
        last = proc.stderr.strip().splitlines()[-1]
        assert last == (f"Temporal UI: http://localhost:{ui_port}/namespaces/default/"
                        "workflows/suite-sub1"), proc.stderr
        assert (home / "temporal.db").is_file() and (home / "temporal-server.pid").is_file()
        assert subprocess.run(["git", "status", "--porcelain", ".pkgbuilder"], cwd=ws,
                              capture_output=True, text=True).stdout == ""
        ui = run_cli(["ui", "sub1"], env, cwd=ws / "packages" / "utility" / "mid")
        assert ui.returncode == 0 and f"UI http://localhost:{ui_port}" in ui.stderr, ui.stderr
        stop = run_cli(["ui", "--stop"], env, cwd=sub)
        assert "stopped the embedded server" in stop.stderr, stop.stderr
        # Server gone: status boots the embedded one again on the same database.
        status = run_cli(["status", "sub1", "--json"], env, cwd=ws / "packages")
        assert status.returncode == 1, status.stderr
        assert json.loads(status.stdout)["failed"] == 1
        # Without --keep-server the last line names the command that reopens the UI.
        outside = run_cli(["build", str(ws), "--only", "@fx/solo", "--build-id", "sub2"],
                          env, cwd=tmp_path)
        assert outside.returncode == 0, outside.stderr
        assert outside.stderr.strip().splitlines()[-1] == (
            "see it in the Temporal UI: pkgbuilder ui sub2 --workspace ws")
        viewer = subprocess.Popen([pkgbuilder_cli(), "ui", "sub2", "--workspace", "ws"],
                                  env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                                  start_new_session=True)
        try:
            assert viewer.stderr is not None
            first = viewer.stderr.readline()
            assert f"http://localhost:{ui_port}/namespaces/default/workflows/suite-sub2" in first
            assert str(home / "temporal.db") in first
        finally:
            os.killpg(viewer.pid, signal.SIGINT)
            viewer.wait(timeout=30)
    finally:
        _kill_kept_server(home)
