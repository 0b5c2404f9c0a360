"""The user's own install is trusted when the package manager's record says it is current:
real ``npm ci`` and real pnpm 9 and 10 (from the tool cache) on the small fixture
workspaces, then pkgbuilder's install step; any change the record does not cover means
install again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pkgbuilder.models.common import PackageManager
from pkgbuilder.models.steps import StepResult
from pkgbuilder.steps.install import STAMP_NAME, UP_TO_DATE, install, manifest_fingerprint
from pkgbuilder.steps.shell import RunOptions
from pkgbuilder.workspace.pm.commands import forget_tools, workspace_tool
from tests.conftest import REPO_ROOT, copy_workspace

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "pm"
NPM_TRUSTED = "installed by npm (node_modules/.package-lock.json matches package-lock.json)"
PNPM_TRUSTED = "installed by pnpm (node_modules/.pnpm/lock.yaml matches pnpm-lock.yaml)"


def _users_install(ws: Path, argv: list[str]) -> None:
    subprocess.run(argv, cwd=ws, check=True, capture_output=True, timeout=300)


def _npm_ci_by_user(tmp_path: Path) -> Path:
    ws = copy_workspace(FIXTURES / "npm", tmp_path / "ws")
    _users_install(ws, ["npm", "ci", "--no-audit", "--no-fund"])
    return ws


async def _step(ws: Path, pm: PackageManager, **kw: Any) -> StepResult:
    return await install(ws, pm, timeout=300, options=RunOptions(), **kw)


def _edit_json(path: Path, change: Any) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2) + "\n")


async def test_npm_ci_by_the_user_is_trusted_and_stamped(tmp_path: Path) -> None:
    ws = _npm_ci_by_user(tmp_path)
    first = await _step(ws, PackageManager.NPM)
    assert first.ok and first.skipped and not first.commands
    assert first.detail == NPM_TRUSTED
    stamp = json.loads((ws / "node_modules" / STAMP_NAME).read_text())
    assert stamp["fingerprint"] == manifest_fingerprint(ws)
    again = await _step(ws, PackageManager.NPM)  # the stamp's fast path now
    assert again.skipped and again.detail == UP_TO_DATE


def _newer_than_record(ws: Path, name: str, text: str | None = None) -> None:
    """Write ``name`` (when ``text``) and date it a second after npm's record."""
    if text is not None:
        (ws / name).write_text(text)
    later = (ws / "node_modules/.package-lock.json").stat().st_mtime + 1
    os.utime(ws / name, (later, later))


@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("workspace dependency", lambda ws: _edit_json(
            ws / "packages/a/package.json",
            lambda m: m["dependencies"].update({"is-number": "^7.0.0"}),
        )),
        ("root manifest", lambda ws: _edit_json(
            ws / "package.json", lambda m: m.update({"version": "0.0.1"})
        )),
        ("lockfile", lambda ws: _edit_json(
            ws / "package-lock.json",
            lambda lock: lock["packages"]["node_modules/is-number"].pop("license"),
        )),
        ("hidden lockfile", lambda ws: _edit_json(
            ws / "node_modules/.package-lock.json",
            lambda lock: lock["packages"]["node_modules/is-number"].update({"version": "7.0.1"}),
        )),
        ("installed package", lambda ws: shutil.rmtree(ws / "node_modules/is-number")),
        ("settings file", lambda ws: _newer_than_record(ws, ".npmrc", "fund=false\n")),
        ("overrides", lambda ws: (
            _edit_json(ws / "package.json", lambda m: m.update({"overrides": {}})),
            _newer_than_record(ws, "package.json"),
        )),
    ],
)  # fmt: skip
async def test_npm_installs_again_when_the_record_does_not_cover_the_workspace(
    tmp_path: Path, what: str, change: Any
) -> None:
    ws = _npm_ci_by_user(tmp_path)
    change(ws)
    result = await _step(ws, PackageManager.NPM)
    assert result.ok, result.output_tail
    assert not result.skipped and result.commands, what
    assert result.commands[0][1:3] == ["ci", "--no-audit"]
    assert (ws / "node_modules/is-number/package.json").is_file()
    assert json.loads((ws / "node_modules" / STAMP_NAME).read_text())["fingerprint"] == (
        manifest_fingerprint(ws)
    )


async def test_a_workspace_gaining_a_package_is_installed_whatever_the_record(
    tmp_path: Path,
) -> None:
    ws = _npm_ci_by_user(tmp_path)
    result = await _step(ws, PackageManager.NPM, update_lockfile=True)
    assert result.ok and not result.skipped
    assert result.commands[0][1:3] == ["install", "--no-audit"]


def _pnpm_install_by_user(fixture: str, version: str, tmp_path: Path) -> Path:
    forget_tools()
    ws = copy_workspace(FIXTURES / fixture, tmp_path / "ws")
    tool = workspace_tool(ws, PackageManager.PNPM)  # the one pkgbuilder runs, too
    assert tool.version == version
    _users_install(ws, [*tool.argv, "install", "--frozen-lockfile"])
    return ws


@pytest.fixture
def pnpm_workspace(tools_cache: None, tmp_path: Path) -> Path:
    return _pnpm_install_by_user("pnpm9", "9.15.9", tmp_path)


@pytest.mark.parametrize(("fixture", "version"), [("pnpm9", "9.15.9"), ("pnpm10", "10.34.9")])
async def test_pnpm_install_by_the_user_is_trusted(
    tools_cache: None, tmp_path: Path, fixture: str, version: str
) -> None:
    ws = _pnpm_install_by_user(fixture, version, tmp_path)
    result = await _step(ws, PackageManager.PNPM)
    assert result.ok and result.skipped and not result.commands
    assert result.detail == PNPM_TRUSTED
    assert (ws / "node_modules" / STAMP_NAME).is_file()


async def test_pnpm_tampered_record_installs_again(pnpm_workspace: Path) -> None:
    record = pnpm_workspace / "node_modules/.pnpm/lock.yaml"
    record.write_text(record.read_text().replace("specifier: 7.0.0", "specifier: ^7.0.0"))
    result = await _step(pnpm_workspace, PackageManager.PNPM)
    assert result.ok and not result.skipped
    assert result.commands[0][-2:] == ["install", "--frozen-lockfile"]


async def test_pnpm_manifest_out_of_sync_is_not_hidden(pnpm_workspace: Path) -> None:
    # The lockfile and pnpm's record still agree, but the manifest does not: pnpm's frozen
    # install refuses it, and that failure is what the user must see.
    _edit_json(
        pnpm_workspace / "packages/a/package.json",
        lambda m: m["dependencies"].update({"is-number": "^7.0.0"}),
    )
    result = await _step(pnpm_workspace, PackageManager.PNPM)
    assert not result.ok and not result.skipped
    assert "ERR_PNPM_OUTDATED_LOCKFILE" in result.failures[0].message
