"""package.json scripts run directly (pnpm-like) or through the package manager — real
processes either way, same semantics for hooks, PATH and npm_* variables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pkgbuilder.config import load_settings
from pkgbuilder.models.build import PackageNode
from pkgbuilder.models.checks import CheckInput
from pkgbuilder.models.common import Category
from pkgbuilder.steps.pipeline import run_checks

SCRIPTS = {
    "prebuild": "echo pre >> order.txt",
    "build": 'echo "main $npm_lifecycle_event $npm_package_name" >> order.txt && mytool',
    "postbuild": "echo post >> order.txt",
    "lint": "exit 3",
}


def make_workspace(tmp_path: Path) -> tuple[Path, PackageNode]:
    root = tmp_path / "ws"
    pkg = root / "packages" / "a"
    pkg.mkdir(parents=True)
    (root / "package.json").write_text(json.dumps({"private": True, "workspaces": ["packages/*"]}))
    (pkg / "package.json").write_text(
        json.dumps({"name": "@s/a", "version": "1.2.3", "scripts": SCRIPTS})
    )
    bin_dir = root / "node_modules" / ".bin"
    bin_dir.mkdir(parents=True)
    tool = bin_dir / "mytool"
    tool.write_text("#!/bin/sh\necho tool-from-bin >> order.txt\n")
    tool.chmod(0o755)
    node = PackageNode(
        name="@s/a",
        version="1.2.3",
        path="packages/a",
        category=Category.UTILITY,
        scripts=sorted(SCRIPTS),
    )
    return root, node


@pytest.mark.parametrize("runner", ["direct", "package-manager"])
async def test_lifecycle_hooks_path_and_env(tmp_path: Path, runner: str) -> None:
    root, node = make_workspace(tmp_path)
    settings = load_settings(env={}, overrides={"scriptRunner": runner})
    inp = CheckInput(workspace_root=str(root), package=node, settings=settings, build_only=True)
    result = await run_checks(inp)
    assert result.ok, result.steps
    lines = (root / "packages" / "a" / "order.txt").read_text().split("\n")
    assert lines[:4] == ["pre", "main build @s/a", "tool-from-bin", "post"]


async def test_failing_lint_script_is_a_typed_failure(tmp_path: Path) -> None:
    root, node = make_workspace(tmp_path)
    settings = load_settings(env={})
    inp = CheckInput(workspace_root=str(root), package=node, settings=settings)
    result = await run_checks(inp)
    quality = result.step("quality")
    assert not result.ok and result.failed_step == "quality" and quality is not None
    assert (
        [f.type.value for f in result.failures]
        == ["lint"]
        == [f.type.value for f in quality.failures]
    )
    assert "exited with code 3" in result.failures[0].message
    assert result.lint_score == quality.lint_score == 0.0


async def test_build_refuses_when_a_dependency_was_not_built(tmp_path: Path) -> None:
    root, node = make_workspace(tmp_path)
    dep_dir = root / "packages" / "dep"
    dep_dir.mkdir()
    (dep_dir / "package.json").write_text(
        json.dumps({"name": "@s/dep", "version": "1.0.0", "main": "dist/index.js"})
    )
    dep = PackageNode(name="@s/dep", path="packages/dep")
    settings = load_settings(env={})
    inp = CheckInput(
        workspace_root=str(root),
        package=node,
        settings=settings,
        dependencies=[dep],
        build_only=True,
    )
    result = await run_checks(inp)
    assert not result.ok and result.failed_step == "build"
    assert [f.type.value for f in result.failures] == ["dependency"]
    assert "@s/dep is not built (dist/index.js is missing)" in result.failures[0].message
    assert not (root / "packages" / "a" / "order.txt").exists()  # nothing ran
    (dep_dir / "dist").mkdir()
    (dep_dir / "dist" / "index.js").write_text("module.exports = {};\n")
    assert (await run_checks(inp)).ok
