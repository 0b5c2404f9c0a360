"""Hardening: ids and paths derived from names are unique and stay inside their roots
(issue 15 items 1, 2 and 3), against the real CLI, server, worker and npm."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from pkgbuilder.models.build import PackageStatus
from pkgbuilder.models.common import check_safe_id, name_slug
from pkgbuilder.workspace.discovery import WorkspaceError, discover_workspace
from tests.conftest import pkgbuilder_cli
from tests.support.hardening import make_workspace, run_suite


def _cli(args: list[str], address: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PKGBUILDER_")}
    env.update(TEMPORAL_ADDRESS=address, PKGBUILDER_HOME=str(tmp_path / "home"))
    return subprocess.run(
        [pkgbuilder_cli(), *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def address(temporal_env: WorkflowEnvironment) -> str:
    return temporal_env.client.service_client.config.target_host


async def test_colliding_names_get_two_children_two_logs_two_reports(
    client: Client, tmp_path: Path
) -> None:
    assert name_slug("@x/a-b") != name_slug("@x-a/b")
    assert name_slug("@x/a-b").startswith("x-a-b-")  # still readable
    ws = make_workspace(
        tmp_path / "ws", {"packages/one": {"name": "@x/a-b"}, "packages/two": {"name": "@x-a/b"}}
    )
    report = await run_suite(client, ws, overrides={"maxConcurrentBuilds": 2})
    assert {r.package_name: r.status for r in report.package_reports} == {
        "@x/a-b": PackageStatus.SUCCESS,
        "@x-a/b": PackageStatus.SUCCESS,
    }
    ids = {r.workflow_id for r in report.package_reports}
    assert len(ids) == 2
    day = Path(report.summary_path or "").parent
    assert (day / "@x" / "a-b.json").is_file() and (day / "@x-a" / "b.json").is_file()
    logs = [p for p in (day / "logs" / report.build_id).iterdir() if p.is_dir()]
    assert len(logs) == 2


def test_symlinked_package_directory_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "package.json").write_text(
        json.dumps({"name": "@evil/out", "version": "1.0.0", "scripts": {"build": "mkdir -p dist"}})
    )
    ws = make_workspace(
        tmp_path / "ws",
        {"packages/fine": {"name": "@ok/fine"}},
        workspaces=["packages/*", "linked"],
    )
    (ws / "linked").symlink_to(outside)
    with pytest.raises(WorkspaceError, match=r"linked .*outside the workspace root"):
        discover_workspace(ws)
    # packages/ itself a symlink out of the repository
    ws2 = make_workspace(tmp_path / "ws2", {})
    (ws2 / "packages").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere" / "p").mkdir(parents=True)
    (tmp_path / "elsewhere" / "p" / "package.json").write_text('{"name": "p"}')
    with pytest.raises(WorkspaceError, match="outside the workspace root"):
        discover_workspace(ws2)


def test_cli_refuses_symlinked_package_and_writes_nothing_outside(
    address: str, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "package.json").write_text(
        json.dumps({"name": "@evil/out", "version": "1.0.0", "scripts": {"build": "mkdir -p dist"}})
    )
    ws = make_workspace(tmp_path / "ws", {}, workspaces=["linked"])
    (ws / "linked").symlink_to(outside)
    proc = _cli(["build", str(ws)], address, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "outside the workspace root" in proc.stderr and "Traceback" not in proc.stderr
    assert not (outside / "dist").exists()


@pytest.mark.parametrize("bad", ["../../x", "a/b", "..", ".hidden", "", "x" * 201, "a b"])
def test_unsafe_ids_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid build id"):
        check_safe_id(bad)


def test_cli_build_id_cannot_escape_the_reports_root(address: str, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "deep" / "ws", {"packages/a": {"name": "a"}})
    proc = _cli(["build", str(ws), "--build-id", "../../x"], address, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "not a valid build id" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert not list(tmp_path.rglob("x")) and not (ws / "production").exists()
