"""The makespan benchmark's DAG generator, monorepo writer and figures (offline, small N)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pkgbuilder.models.common import Category
from pkgbuilder.workspace.discovery import discover_workspace
from pkgbuilder.workspace.graph import topological_order

BENCH = Path(__file__).resolve().parents[2] / "bench" / "suite_makespan.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("suite_makespan", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["suite_makespan"] = module  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


def test_generation_is_seeded_and_layered(bench: ModuleType) -> None:
    a = bench.generate_dag(88, 7, 2000, 8000)
    assert a == bench.generate_dag(88, 7, 2000, 8000)
    assert a != bench.generate_dag(88, 8, 2000, 8000)
    assert len(a) == 88 and len({p.name for p in a}) == 88
    layer = {p.name: p.category.layer for p in a}
    assert {p.category for p in a} == set(Category)
    for package in a:
        assert 2000 <= package.duration_ms <= 8000
        assert all(layer[dep] < layer[package.name] for dep in package.dependencies)
        if package.category is Category.VALIDATOR:
            assert package.dependencies == ()
    assert sum(bool(p.dependencies) for p in a) > 50  # a real DAG, not independent jobs
    topological_order([p.node() for p in a])  # no cycle, no unknown dependency


@pytest.mark.parametrize("count", [1, 2, 3, 5, 13])
def test_small_counts_are_exact(bench: ModuleType, count: int) -> None:
    packages = bench.generate_dag(count, 1, 10, 20)
    assert len(packages) == count
    assert packages[0].category is Category.VALIDATOR


def test_invalid_generator_arguments(bench: ModuleType) -> None:
    for args in [(0, 1, 1, 2), (3, 1, -1, 2), (3, 1, 5, 2)]:
        with pytest.raises(ValueError):
            bench.generate_dag(*args)


def test_dag_figures_on_a_known_graph(bench: ModuleType) -> None:
    pkg = bench.BenchPackage
    packages = [
        pkg("@b/v", Category.VALIDATOR, (), 1000),
        pkg("@b/c", Category.CORE, ("@b/v",), 4000),
        pkg("@b/u1", Category.UTILITY, (), 2000),
        pkg("@b/u2", Category.UTILITY, (), 2000),
    ]
    figures = bench.dag_figures(packages, 2)
    assert figures.work == pytest.approx(9.0)
    assert figures.critical_path == pytest.approx(5.0)
    assert figures.bound == pytest.approx(5.0)
    assert figures.list_schedule == pytest.approx(5.0)
    assert figures.critical_chain == ["@b/v", "@b/c"]
    assert bench.dag_figures(packages, 1).bound == pytest.approx(9.0)


def test_written_monorepo_is_the_generated_graph(bench: ModuleType, tmp_path: Path) -> None:
    packages = bench.generate_dag(12, 3, 0, 30)
    root = tmp_path / "mono"
    bench.write_monorepo(root, packages, 3)
    graph = discover_workspace(root)
    by = graph.by_name()
    assert set(by) == {p.name for p in packages}
    for package in packages:
        node = by[package.name]
        assert node.dependencies == sorted(package.dependencies)
        assert node.category is package.category
        assert node.path == package.path
    assert (root / "package-lock.json").is_file()
    assert "maxConcurrentBuilds = 3" in (root / "pkgbuilder.toml").read_text()
    clean = subprocess.run(
        ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True
    )
    assert clean.stdout == ""
    # the build script really runs (and sleeps) through npm, the test script is trivial
    first = root / packages[0].path
    for script in ("build", "test"):
        proc = subprocess.run(
            ["npm", "run", script], cwd=first, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
    bad = subprocess.run(
        ["node", str(root / "scripts" / "sleep.js"), "soon"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "expected milliseconds" in bad.stderr


def test_measure_span_statuses_and_order_violations(bench: ModuleType) -> None:
    pkg = bench.BenchPackage
    packages = [
        pkg("@b/a", Category.VALIDATOR, (), 1000),
        pkg("@b/b", Category.CORE, ("@b/a",), 2000),
        pkg("@b/c", Category.CORE, ("@b/a",), 500),
    ]
    summary = {
        "packageReports": [
            {
                "packageName": "@b/a",
                "status": "success",
                "startTime": "2025-01-01T00:00:00Z",
                "endTime": "2025-01-01T00:00:01.500Z",
            },
            {
                "packageName": "@b/b",
                "status": "success",
                "startTime": "2025-01-01T00:00:01.600+00:00",
                "endTime": "2025-01-01T00:00:04Z",
                "buildMetrics": {"buildTime": 2200, "testTime": 100},
            },
            {  # started before its dependency ended: the bench must flag it
                "packageName": "@b/c",
                "status": "failed",
                "startTime": "2025-01-01T00:00:01Z",
                "endTime": "2025-01-01T00:00:02Z",
            },
        ]
    }
    measured = bench.measure(summary, packages, 2)
    assert measured.span == pytest.approx(4.0)
    assert measured.statuses == {"success": 2, "failed": 1}
    assert measured.order_violations == ["@b/c started before @b/a ended"]
    assert measured.mean_overhead == pytest.approx((0.5 + 0.4 + 0.5) / 3)
    assert measured.slot_busy == pytest.approx((1.5 + 2.4 + 1.0) / (2 * 4.0))
    # only @b/b reports buildMetrics: 2.2 s build (2.0 s sleep), 0.1 s test, 0.1 s else
    assert measured.overhead_breakdown == pytest.approx(
        {"buildScript": 0.2, "test": 0.1, "other": 0.1}
    )
    never_started = bench.measure(
        {"packageReports": [{"packageName": "@b/a", "status": "blocked", "startTime": None}]},
        packages[:1],
        1,
    )
    assert never_started.span is None and never_started.mean_overhead is None


def test_generate_only_command_line(bench: ModuleType, tmp_path: Path, capsys) -> None:
    keep = tmp_path / "kept"
    assert bench.main(["--packages", "6", "--generate-only", "--keep", str(keep)]) == 0
    out = capsys.readouterr().out
    assert "W  total work" in out and "bound" in out and str(keep) in out
    assert (keep / "pkgbuilder.toml").is_file()
    assert bench.main(["--packages", "6", "--generate-only", "--keep", str(keep)]) == 2
    lean = tmp_path / "lean"
    assert (
        bench.main(["--packages", "3", "--generate-only", "--build-only", "--keep", str(lean)]) == 0
    )
    assert all(p.scripts == ["build"] for p in discover_workspace(lean).packages)


def test_aggregate_reports_the_median_run(bench: ModuleType) -> None:
    runs = [{"wall": w, "efficiency": 10 / w} for w in (12.0, 10.0, 11.0)]
    agg = bench._aggregate(runs)
    assert agg["wall"] == 11.0
    assert agg["walls"] == [12.0, 10.0, 11.0]
    assert agg["efficiencies"] == [10 / 12, 1.0, 10 / 11]
    with pytest.raises(SystemExit):
        bench._arguments(["--repeat", "2", "--generate-only"])
    with pytest.raises(SystemExit):
        bench._arguments(["--repeat", "0"])


@pytest.mark.slow
def test_repeated_runs_each_on_a_fresh_monorepo(bench: ModuleType, capsys) -> None:
    """Two real runs (embedded server each); neither may reuse the other's duration history."""
    code = bench.main(
        ["--packages", "4", "--min-ms", "50", "--max-ms", "100", "--repeat", "2", "--json"]
    )
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert len(result["runs"]) == 2
    for run in result["runs"]:
        assert run["exitCode"] == 0 and run["statuses"] == {"success": 4}
        assert run["order_violations"] == []
    assert sorted(result["run"]["walls"]) == sorted(r["wall"] for r in result["runs"])
