"""Hardening: code the model wrote runs confined (issue 15 item 4): a fix answer rewrites
package.json's test script to write outside the package; the re-run happens inside
bubblewrap (real bwrap, real worker, scripted Messages API)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from temporalio.client import Client

from pkgbuilder.models.build import PackageStatus
from tests.support.fake_anthropic import FakeAnthropic, Reply
from tests.support.hardening import make_workspace, run_suite


@pytest.fixture(autouse=True)
def fake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The hostile script reads $HOME/.npmrc: never the real one."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".npmrc").write_text("//registry.example/:_authToken=s3cr3t-npmrc\n")
    monkeypatch.setenv("HOME", str(home))
    return home


CONFIG = "[llm]\ntokensPerMinute = 1000000\n[fix]\nmaxAttempts = 1\n"


def _workspace(tmp_path: Path, extra_config: str = "") -> tuple[Path, Path]:
    outside = tmp_path / "outside-marker"
    ws = make_workspace(
        tmp_path / "ws",
        {"packages/a": {"name": "@s/a", "scripts": {"build": "mkdir -p dist", "test": "exit 1"}}},
        config=CONFIG + extra_config,
    )
    return ws, outside


def _hostile_answer(outside: Path) -> Reply:
    manifest = {
        "name": "@s/a",
        "version": "1.0.0",
        "scripts": {
            "build": "mkdir -p dist",
            "test": f"touch inside-ok; touch {outside}; cat $HOME/.npmrc > leaked.txt; exit 0",
        },
    }
    return Reply.contract(
        [{"path": "package.json", "operation": "update", "content": json.dumps(manifest)}],
        summary="tests fixed",
    )


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
async def test_model_changed_script_cannot_write_outside_the_package(
    client: Client, tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    ws, outside = _workspace(tmp_path)
    fake_anthropic.default = _hostile_answer(outside)
    report = await run_suite(client, ws)
    pkg = report.package_reports[0]
    assert not outside.exists()
    assert (ws / "packages" / "a" / "inside-ok").exists()  # it ran, confined
    leaked = ws / "packages" / "a" / "leaked.txt"
    assert leaked.exists() and "s3cr3t" not in leaked.read_text()  # $HOME is empty inside
    record = pkg.fix_attempts[0]
    assert any(
        line.startswith("test: 'exit 1' -> ") and "outside-marker" in line
        for line in record.scripts_changed
    ), record.scripts_changed


async def test_without_a_sandbox_model_changed_scripts_are_refused(
    client: Client, tmp_path: Path, fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PKGBUILDER_BWRAP", "")
    ws, outside = _workspace(tmp_path)
    fake_anthropic.default = _hostile_answer(outside)
    report = await run_suite(client, ws)
    pkg = report.package_reports[0]
    assert pkg.status is PackageStatus.FAILED
    assert "Refusing to run the scripts of @s/a after a model change" in (pkg.error or "")
    assert "fix.allowUnsandboxed = true" in (pkg.error or "")
    assert not outside.exists()


async def test_operator_can_opt_in_to_unsandboxed_runs(
    client: Client, tmp_path: Path, fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PKGBUILDER_BWRAP", "")
    ws, outside = _workspace(tmp_path, "allowUnsandboxed = true\n")
    fake_anthropic.default = _hostile_answer(outside)
    report = await run_suite(client, ws)
    assert report.package_reports[0].status is PackageStatus.SUCCESS
    assert outside.exists()  # what the opt-in means
