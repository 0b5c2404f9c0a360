"""SuiteBuildWorkflow on a real dev server with real npm builds of a fixture monorepo."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client

from pkgbuilder.config import load_settings
from pkgbuilder.models.build import BuildReport, PackageStatus, SuiteBuildInput, SuitePhase
from pkgbuilder.runtime.worker import running_workers
from pkgbuilder.workflows.suite import SuiteBuildWorkflow
from tests.conftest import REPO_ROOT, copy_workspace

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "failing-monorepo"
EXPECTED = {
    "@fx/base": PackageStatus.SUCCESS,
    "@fx/other": PackageStatus.SUCCESS,
    "@fx/solo": PackageStatus.SUCCESS,
    "@fx/broken": PackageStatus.FAILED,
    "@fx/mid": PackageStatus.BLOCKED,
    "@fx/top": PackageStatus.BLOCKED,
}
DEPS = {
    "@fx/broken": ["@fx/base"],
    "@fx/other": ["@fx/base"],
    "@fx/mid": ["@fx/broken"],
    "@fx/top": ["@fx/mid"],
    "@fx/base": [],
    "@fx/solo": [],
}


def read_log(path: Path) -> list[tuple[str, str, int, int]]:
    rows = []
    for line in path.read_text().splitlines():
        name, script, start, end = line.split()
        rows.append((name, script, int(start), int(end)))
    return rows


async def run_suite(
    client: Client,
    task_queue: str,
    workspace: Path,
    build_id: str,
    concurrency: int = 4,
    overrides: dict | None = None,
) -> BuildReport:
    settings = load_settings(
        workspace,
        env={},
        overrides={
            "maxConcurrentBuilds": concurrency,
            "temporal": {"taskQueue": task_queue, "llmTaskQueue": f"{task_queue}-llm"},
            **(overrides or {}),
        },
    )
    async with running_workers(client, settings):
        result: BuildReport = await client.execute_workflow(
            SuiteBuildWorkflow.run,
            SuiteBuildInput(
                build_id=build_id,
                workspace_root=str(workspace),
                config=settings,
                search_attributes=True,
            ),
            id=f"suite-{build_id}",
            task_queue=task_queue,
        )
    return result


@pytest_asyncio.fixture(scope="module")
async def failing_run(
    client: Client, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[BuildReport, Path, Path]]:
    import os
    import uuid

    ws = copy_workspace(FIXTURE, tmp_path_factory.mktemp("suite") / "ws")
    log = ws.parent / "steps.log"
    os.environ["PKGBUILDER_TEST_LOG"] = str(log)
    try:
        report = await run_suite(client, f"tq-{uuid.uuid4()}", ws, f"t{uuid.uuid4().hex[:8]}")
    finally:
        os.environ.pop("PKGBUILDER_TEST_LOG", None)
    yield report, ws, log


async def test_failure_blocks_exactly_its_transitive_dependents(failing_run) -> None:
    report, _, _ = failing_run
    statuses = {r.package_name: r.status for r in report.package_reports}
    assert statuses == EXPECTED
    assert (report.successful, report.failed, report.blocked, report.skipped) == (3, 1, 2, 0)
    by_name = {r.package_name: r for r in report.package_reports}
    assert by_name["@fx/mid"].blocked_by == ["@fx/broken"]
    assert by_name["@fx/top"].blocked_by == ["@fx/broken"]
    assert "@fx/broken" in (by_name["@fx/top"].error or "")
    assert by_name["@fx/top"].start_time is None
    broken = by_name["@fx/broken"]
    # no API key in the test environment: one attempt that stops the loop, nothing crashes
    assert len(broken.fix_attempts) == 1 and not broken.fix_attempts[0].succeeded
    assert "MissingApiKey" in (broken.error or "")
    assert broken.failed_phase == "test"
    assert broken.failures and broken.failures[0].type.value == "test"
    # the result carried through history keeps a short tail; the JSON report the full one
    tail = broken.failures[0].output_tail
    assert "expected: 42" in tail and len(tail) <= 600


async def test_no_package_starts_before_its_dependencies_ended(failing_run) -> None:
    _, _, log = failing_run
    rows = read_log(log)
    first_start: dict[str, int] = {}
    last_end: dict[str, int] = {}
    for name, _script, start, end in rows:
        first_start[name] = min(first_start.get(name, start), start)
        last_end[name] = max(last_end.get(name, end), end)
    assert set(first_start) == {"@fx/base", "@fx/other", "@fx/solo", "@fx/broken"}
    for name, deps in DEPS.items():
        for dep in deps:
            if name in first_start:
                assert last_end[dep] <= first_start[name], f"{name} started before {dep} ended"


async def test_reports_are_written_in_the_seed_format(failing_run) -> None:
    report, ws, _ = failing_run
    assert report.summary_path is not None
    summary = json.loads(Path(report.summary_path).read_text())
    for key in (
        "buildId",
        "timestamp",
        "totalPackages",
        "successful",
        "failed",
        "blocked",
        "skipped",
        "totalDuration",
        "totalFixAttempts",
        "slowestPackages",
        "mostFixAttempts",
        "totalWaitTime",
        "packageReports",
    ):
        assert key in summary
    day = Path(report.summary_path).parent
    base = json.loads((day / "@fx" / "base.json").read_text())
    for key in (
        "packageName",
        "workflowId",
        "startTime",
        "endTime",
        "duration",
        "buildMetrics",
        "quality",
        "fixAttempts",
        "status",
        "error",
        "dependencies",
        "waitedFor",
    ):
        assert key in base
    assert set(base["buildMetrics"]) >= {"buildTime", "testTime", "qualityCheckTime", "publishTime"}
    assert set(base["quality"]) >= {"lintScore", "testCoverage", "typeScriptErrors", "passed"}
    assert base["status"] == "success" and base["quality"]["passed"] is True
    assert base["quality"]["testCoverage"] >= 90
    broken = json.loads((day / "@fx" / "broken.json").read_text())
    assert len(broken["failures"][0]["outputTail"]) > 600
    other = json.loads((day / "@fx" / "other.json").read_text())
    assert [w["packageName"] for w in other["waitedFor"]] == ["@fx/base"]
    assert (day / "logs").is_dir()
    assert ws.joinpath("production").is_dir()


async def test_concurrency_limit_bounds_parallel_builds(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, task_queue: str
) -> None:
    ws = copy_workspace(FIXTURE, tmp_path / "ws")
    # Make broken pass so everything builds; the limit is what is under test.
    test_file = next((ws / "packages" / "core" / "broken").rglob("*.test.js"))
    test_file.write_text("const t=require('node:test');t.test('ok',()=>{});\n")
    (ws / "pkgbuilder.toml").write_text("[testing]\nenableCoverage = false\n")
    log = tmp_path / "steps.log"
    monkeypatch.setenv("PKGBUILDER_TEST_LOG", str(log))
    monkeypatch.setenv("PKGBUILDER_TEST_SLEEP_MS", "400")
    report = await run_suite(client, task_queue, ws, "conc-limit", concurrency=2)
    assert report.successful == 6
    spans: dict[str, list[int]] = {}
    for name, _s, start, end in read_log(log):
        span = spans.setdefault(name, [start, end])
        span[0], span[1] = min(span[0], start), max(span[1], end)
    events = sorted([(s, 1) for s, _ in spans.values()] + [(e, -1) for _, e in spans.values()])
    live = peak = 0
    for _, delta in events:
        live += delta
        peak = max(peak, live)
    assert peak <= 2


async def test_query_reports_live_state_and_final_phase(
    client: Client, tmp_path: Path, task_queue: str
) -> None:
    ws = copy_workspace(FIXTURE, tmp_path / "ws")
    settings = load_settings(
        ws,
        env={},
        overrides={"temporal": {"taskQueue": task_queue, "llmTaskQueue": f"{task_queue}-llm"}},
    )
    async with running_workers(client, settings):
        handle = await client.start_workflow(
            SuiteBuildWorkflow.run,
            SuiteBuildInput(
                build_id="q1", workspace_root=str(ws), config=settings, only=["@fx/other"]
            ),
            id="suite-q1-" + task_queue,
            task_queue=task_queue,
        )
        await handle.result()
        state = await handle.query(SuiteBuildWorkflow.get_state)
    assert state.phase is SuitePhase.DONE
    # --only keeps the package and its dependencies
    assert sorted(p.name for p in state.packages) == ["@fx/base", "@fx/other"]
    assert all(p.status is PackageStatus.SUCCESS for p in state.packages)


async def test_failure_policy_build_lets_dependents_of_a_test_failure_build(
    client: Client, tmp_path: Path, task_queue: str
) -> None:
    """Turborepo's default: dependents need the dependency's build, not its tests."""
    ws = copy_workspace(FIXTURE, tmp_path / "ws")
    report = await run_suite(
        client,
        task_queue,
        ws,
        "policy-build",
        overrides={"graph": {"dependentsNeed": "build"}, "fix": {"enabled": False}},
    )
    statuses = {r.package_name: r.status for r in report.package_reports}
    assert statuses == {
        **EXPECTED,
        "@fx/mid": PackageStatus.SUCCESS,
        "@fx/top": PackageStatus.SUCCESS,
    }
    broken = next(r for r in report.package_reports if r.package_name == "@fx/broken")
    assert broken.tests_passed is False and broken.failures[0].type.value == "test"
    # ... unless that dependency's tests are configured to gate its dependents.
    gated = await run_suite(
        client,
        task_queue,
        copy_workspace(FIXTURE, tmp_path / "ws2"),
        "policy-gate",
        overrides={
            "graph": {"dependentsNeed": "build", "testsGate": ["@fx/broken"]},
            "fix": {"enabled": False},
        },
    )
    # (what passed in the first run is restored from the build cache; a cached package
    # whose dependency fails in this run is still blocked)
    cached = {n: PackageStatus.CACHED for n, st in EXPECTED.items() if st is PackageStatus.SUCCESS}
    assert {r.package_name: r.status for r in gated.package_reports} == {**EXPECTED, **cached}


async def test_tolerant_test_policy_reports_the_failed_tests(
    client: Client, tmp_path: Path, task_queue: str
) -> None:
    ws = copy_workspace(FIXTURE, tmp_path / "ws")
    report = await run_suite(
        client,
        task_queue,
        ws,
        "policy-tolerant",
        overrides={"testing": {"failOnError": False, "enableCoverage": False}},
    )
    broken = next(r for r in report.package_reports if r.package_name == "@fx/broken")
    assert broken.status is PackageStatus.SUCCESS
    assert broken.tests_passed is False
    assert broken.failures and broken.failures[0].type.value == "test"
    assert not broken.fix_attempts
    solo = next(r for r in report.package_reports if r.package_name == "@fx/solo")
    assert solo.tests_passed is True and not solo.failures
