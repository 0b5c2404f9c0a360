"""The example and fixture monorepos really build and test with npm (no pkgbuilder involved):
what pkgbuilder's end-to-end tests rely on."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pkgbuilder.models.common import DEFAULT_COVERAGE_THRESHOLDS
from pkgbuilder.steps.coverage import read_coverage
from pkgbuilder.workspace.discovery import discover_workspace

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo-monorepo"
FAILING = REPO / "tests" / "fixtures" / "failing-monorepo"

pytestmark = pytest.mark.slow


def copy_tree(src: Path, dest: Path) -> Path:
    shutil.copytree(
        src, dest, ignore=shutil.ignore_patterns("node_modules", "dist", "coverage", "production")
    )
    return dest


def npm(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["npm", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_demo_monorepo_installs_offline_builds_tests_and_lints(tmp_path: Path) -> None:
    root = copy_tree(DEMO, tmp_path / "demo")
    install = npm(root, "install", "--offline", "--no-audit", "--no-fund")
    assert install.returncode == 0, install.stderr
    build = npm(root, "run", "build")
    assert build.returncode == 0, build.stderr
    test = npm(root, "test")
    assert test.returncode == 0, test.stdout[-2000:] + test.stderr[-2000:]
    lint = npm(root, "run", "lint")
    assert lint.returncode == 0, lint.stdout[-2000:]

    graph = discover_workspace(root)
    for package in graph.packages:
        pkg_dir = root / package.path
        assert (pkg_dir / "dist" / "index.js").is_file()
        lcov = pkg_dir / "coverage" / "lcov.info"
        assert lcov.is_file(), package.name
        # only the package's own sources are in its coverage report
        sources = [ln[3:] for ln in lcov.read_text().splitlines() if ln.startswith("SF:")]
        assert sources and all(s.startswith("src/") for s in sources), sources
        coverage = read_coverage(pkg_dir)
        assert coverage.percent is not None
        assert coverage.percent >= DEFAULT_COVERAGE_THRESHOLDS[package.category], package.name


def test_demo_build_fails_on_a_syntax_error_and_lint_on_console_log(tmp_path: Path) -> None:
    root = copy_tree(DEMO, tmp_path / "demo")
    schema = root / "packages" / "core" / "schema"
    source = schema / "src" / "index.js"
    source.write_text(source.read_text() + "\nfunction broken( {\n")
    build = npm(schema, "run", "build")
    assert build.returncode != 0
    assert "src/index.js has a syntax error" in build.stderr
    source.write_text(source.read_text().replace("function broken( {\n", 'console.log("x");\n'))
    lint = npm(schema, "run", "lint")
    assert lint.returncode != 0
    assert "console.log in library code" in lint.stdout


def test_failing_fixture_logs_runs_and_fails_exactly_one_test(tmp_path: Path) -> None:
    root = copy_tree(FAILING, tmp_path / "failing")
    log = tmp_path / "runs.log"
    env = {"PKGBUILDER_TEST_LOG": str(log)}
    assert npm(root, "install", "--offline", "--no-audit", "--no-fund").returncode == 0
    assert npm(root, "run", "build", "--workspaces", env=env).returncode == 0
    results = {
        p.name: npm(root / p.path, "test", env=env).returncode
        for p in discover_workspace(root).packages
    }
    assert [name for name, rc in results.items() if rc != 0] == ["@fx/broken"]
    lines = [line.split() for line in log.read_text().splitlines()]
    assert len(lines) == 12
    for name, script, start, end in lines:
        assert script in ("build", "test") and name.startswith("@fx/")
        assert int(start) <= int(end)
