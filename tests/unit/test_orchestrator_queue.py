"""The orchestrator's queue discipline (pure functions) and its configuration section."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pkgbuilder.config import BuildSettings, ConfigError, load_settings
from pkgbuilder.models.build import PackageNode, WorkspaceGraph
from pkgbuilder.models.common import PackageManager
from pkgbuilder.models.orchestrator import (
    ActiveBuild,
    BuildFinished,
    BuildRecord,
    OrchestratorSettings,
    OrchestratorState,
    QueuedPackage,
    QueueSourceKind,
    QueueSourceSettings,
    ResolvedPackage,
    SourceReport,
    SourceStatus,
)
from pkgbuilder.queue import store as bq
from pkgbuilder.queue.resolve import resolve_names

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def queued(*specs: tuple[str, int] | tuple[str, int, list[str]]) -> list[QueuedPackage]:
    return [
        QueuedPackage(name=s[0], priority=s[1], dependencies=list(s[2]) if len(s) > 2 else [])  # type: ignore[misc]
        for s in specs
    ]


def resolve_all(state: OrchestratorState, graph: dict[str, list[str]] | None = None) -> None:
    graph = graph or {}
    for e in state.queue:
        e.resolved = ResolvedPackage(
            node=PackageNode(name=e.name, path=e.name, dependencies=graph.get(e.name, []))
        )


def names(entries: list) -> list[str]:  # type: ignore[type-arg]
    return [e.name for e in entries]


def test_merge_deduplicates_by_name_and_the_higher_priority_wins() -> None:
    s = OrchestratorState()
    src = QueueSourceSettings(queue_db="/q.db")
    summary = bq.merge_packages(
        s, queued(("a", 1), ("b", 5), ("a", 9), ("b", 2), ("c", 0, ["c"])), src
    )
    assert summary.added == ["a", "b", "c"]
    assert summary.reprioritised == ["a"] and summary.ignored == ["b"]
    assert [(e.name, e.priority, e.seq) for e in s.queue] == [("a", 9, 0), ("b", 5, 1), ("c", 0, 2)]
    assert s.queue[2].dependencies == []  # a package never waits for itself
    assert all(e.source == src for e in s.queue)
    again = bq.merge_packages(s, queued(("a", 3, ["b"])))
    assert again.reprioritised == ["a"] and s.queue[0].dependencies == ["b"]
    assert s.queue[0].priority == 9 and s.next_seq == 3


def test_packages_building_or_being_reported_are_not_queued_again() -> None:
    s = OrchestratorState()
    bq.merge_packages(s, queued(("busy", 1)))
    entry = s.queue.pop()
    s.active["busy"] = ActiveBuild(entry=entry, child_workflow_id="c1", attempt=1, started_at=NOW)
    s.pending_reports.append(SourceReport(key="k", name="done", status=SourceStatus.PUBLISHED))
    summary = bq.merge_packages(s, queued(("busy", 50), ("done", 50), ("new", 1)))
    assert summary.ignored == ["busy", "done"] and names(s.queue) == ["new"]


def test_ready_entries_are_best_first_and_wait_for_queued_or_building_dependencies() -> None:
    s = OrchestratorState()
    bq.merge_packages(
        s,
        queued(
            ("low", 1), ("top", 10, ["dep"]), ("dep", 0), ("tie", 1), ("later", 20), ("fresh", 30)
        ),
    )
    resolve_all(s, {"low": ["building"]})
    s.queue[-1].resolved = None  # "fresh" was not looked up in the workspace yet
    s.queue[-2].not_before = NOW + timedelta(minutes=1)  # "later" waits out a backoff
    s.active["building"] = ActiveBuild(
        entry=s.queue[0].model_copy(update={"name": "building"}),
        child_workflow_id="c",
        attempt=1,
        started_at=NOW,
    )
    assert names(bq.ready_entries(s, NOW)) == ["tie", "dep"]
    assert bq.waiting_for(s, s.queue[1]) == ["dep"]  # from the source
    assert bq.waiting_for(s, s.queue[0]) == ["building"]  # from the workspace graph
    assert names(bq.unresolved(s, NOW)) == ["fresh"]
    assert bq.next_due(s, NOW) == NOW + timedelta(minutes=1)
    assert "later" in names(bq.ready_entries(s, NOW + timedelta(minutes=1)))
    assert bq.next_due(s, NOW + timedelta(minutes=1)) is None


def test_a_dependency_cycle_among_queued_packages_is_detected_only_when_nothing_can_move() -> None:
    s = OrchestratorState()
    bq.merge_packages(s, queued(("a", 1, ["b"]), ("b", 1, ["a"]), ("c", 1, ["a"])))
    resolve_all(s)
    assert names(bq.stuck_entries(s, NOW)) == ["a", "b", "c"]
    s.queue[0].not_before = NOW + timedelta(seconds=5)
    assert bq.stuck_entries(s, NOW) == []  # a timer will wake the loop: not stuck yet
    s.queue[0].not_before = None
    s.queue[2].resolved = None
    assert bq.stuck_entries(s, NOW) == []  # a lookup is pending
    bq.merge_packages(s, queued(("free", 1)))
    resolve_all(s)
    assert bq.stuck_entries(s, NOW) == []  # something can still start


def test_queued_dependents_are_found_transitively() -> None:
    s = OrchestratorState()
    bq.merge_packages(s, queued(("mid", 1, ["root"]), ("top", 1), ("other", 1)))
    resolve_all(s, {"top": ["mid"]})
    assert names(bq.queued_dependents(s, "root")) == ["mid", "top"]
    assert bq.queued_dependents(s, "other") == []
    assert bq.remove_entry(s, "mid") is not None and bq.remove_entry(s, "mid") is None


def test_recent_records_are_bounded_and_the_status_view_counts_retries() -> None:
    records: list[BuildRecord] = []
    for i in range(7):
        bq.remember(records, BuildRecord(name=f"p{i}", attempts=1, finished_at=NOW), 3)
    assert names(records) == ["p4", "p5", "p6"]
    s = OrchestratorState(completed_count=7)
    bq.merge_packages(s, queued(("retrying", 1), ("b", 9)))
    s.queue[0].attempts = 2
    entry = s.queue[1].model_copy(update={"name": "second-try"})
    s.active["second-try"] = ActiveBuild(
        entry=entry, child_workflow_id="c", attempt=2, started_at=NOW
    )
    view = bq.status_view(
        s, workflow_id="w", run_id="r", workspace_root="/ws", builds_this_run=4, run_started_at=NOW
    )
    assert names(view.queue) == ["b", "retrying"]
    assert view.retry_counts == {"retrying": 2, "second-try": 1}
    assert (view.completed, view.builds_this_run, view.active[0].attempt) == (7, 4, 2)
    dumped = view.to_json_dict()
    assert {
        "isPaused",
        "isDraining",
        "maxConcurrent",
        "queue",
        "active",
        "completed",
        "failed",
    } <= set(dumped)


# -- configuration ---------------------------------------------------------------------------


def test_orchestrator_defaults_follow_the_issue() -> None:
    orch = OrchestratorSettings.from_build_settings(BuildSettings())
    assert orch.workflow_id == "continuous-builder-orchestrator"
    assert orch.schedule_id == "package-queue-poller"
    assert (orch.max_attempts, orch.retry_backoff_seconds) == (3, [60.0, 120.0, 240.0])
    assert (orch.continue_as_new_after_builds, orch.continue_as_new_after_hours) == (100, 24.0)
    assert (orch.poll_interval_minutes, orch.poll_limit) == (30.0, 50)
    assert orch.source is QueueSourceKind.SQLITE
    assert orch.concurrency(BuildSettings(max_concurrent_builds=6)) == 6
    assert [orch.backoff(n) for n in (1, 2, 3, 9)] == [
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(minutes=4),
        timedelta(minutes=4),
    ]


def test_orchestrator_section_from_toml_in_either_spelling(tmp_path: Path) -> None:
    (tmp_path / "pkgbuilder.toml").write_text(
        '[orchestrator]\nmax_attempts = 5\nretryBackoffSeconds = [1, 2]\nsource = "mcp"\n'
        '[orchestrator.mcp]\nurl = "http://127.0.0.1:9/mcp"\ntoken_env = "MY_TOKEN"\n'
    )
    orch = OrchestratorSettings.from_build_settings(load_settings(tmp_path, env={}))
    assert (orch.max_attempts, orch.retry_backoff_seconds) == (5, [1.0, 2.0])
    assert orch.source_settings().kind is QueueSourceKind.MCP
    assert (orch.mcp.url, orch.mcp.token_env) == ("http://127.0.0.1:9/mcp", "MY_TOKEN")


def test_a_token_in_the_config_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "pkgbuilder.toml").write_text('[orchestrator.mcp]\ntoken = "s3cret"\n')
    warnings: list[str] = []
    settings = load_settings(tmp_path, env={}, warnings=warnings)
    assert "s3cret" not in settings.model_dump_json()
    assert any("orchestrator.mcp.token" in w for w in warnings)


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"maxAttempts": 0}, "orchestrator.maxAttempts"),
        ({"maxConcurrent": 65}, "orchestrator.maxConcurrent"),
        ({"retryBackoffSeconds": []}, "orchestrator.retryBackoffSeconds"),
        ({"retryBackoffSeconds": [-1]}, "orchestrator.retryBackoffSeconds"),
        ({"pollIntervalMinutes": 0}, "orchestrator.pollIntervalMinutes"),
        ({"source": "redis"}, "orchestrator.source"),
        ({"continueAsNewAfterBuilds": 0}, "orchestrator.continueAsNewAfterBuilds"),
    ],
)
def test_invalid_orchestrator_settings_name_the_key(values: dict, key: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        OrchestratorSettings.from_build_settings(BuildSettings(orchestrator=values))


# -- outcomes --------------------------------------------------------------------------------


def ctx(**settings: object) -> bq.OutcomeContext:
    keys = iter(range(1000))
    return bq.OutcomeContext(
        now=NOW,
        settings=OrchestratorSettings.model_validate(settings),
        new_key=lambda: f"k{next(keys)}",
    )


def start_build(s: OrchestratorState, name: str, attempt: int = 1) -> ActiveBuild:
    entry = bq.remove_entry(s, name)
    assert entry is not None
    build = ActiveBuild(
        entry=entry, child_workflow_id=f"{name}-a{attempt}", attempt=attempt, started_at=NOW
    )
    s.active[name] = build
    return build


def notice(name: str, attempt: int, success: bool, error: str | None = None) -> BuildFinished:
    return BuildFinished(
        child_workflow_id=f"{name}-a{attempt}", package_name=name, success=success, error=error
    )


def test_each_outcome_counts_once_and_is_queued_for_write_back() -> None:
    s = OrchestratorState()
    src = QueueSourceSettings(queue_db="/elsewhere.db")
    bq.merge_packages(s, [QueuedPackage(name="ok", source_id="id-1")], src)
    start_build(s, "ok")
    c = ctx()
    assert bq.finish_build(s, notice("ok", 1, True), c) is not None
    assert bq.finish_build(s, notice("ok", 1, True), c) is None  # the duplicate report
    assert bq.finish_build(s, notice("ghost", 1, False), c) is None
    assert (s.completed_count, s.builds_since_start, s.active) == (1, 1, {})
    [report] = s.pending_reports
    assert (report.status, report.source_id, report.source) == (SourceStatus.PUBLISHED, "id-1", src)


def test_failures_back_off_then_fail_for_good_and_block_queued_dependents() -> None:
    s = OrchestratorState()
    bq.merge_packages(s, queued(("lib", 5), ("app", 1, ["lib"]), ("top", 1, ["app"]), ("free", 1)))
    c = ctx(retryBackoffSeconds=[60, 120], maxAttempts=3)
    for attempt, wait in ((1, 60), (2, 120)):
        start_build(s, "lib", attempt)
        bq.finish_build(s, notice("lib", attempt, False, f"boom {attempt}"), c)
        [lib] = [e for e in s.queue if e.name == "lib"]
        assert (lib.attempts, lib.last_error) == (attempt, f"boom {attempt}")
        assert lib.not_before == NOW + timedelta(seconds=wait)
    start_build(s, "lib", 3)
    bq.finish_build(s, notice("lib", 3, False, "boom 3"), c)
    assert names(s.queue) == ["free"]
    assert s.failed_count == 3
    assert [(r.name, r.attempts, r.error) for r in s.recently_failed] == [
        ("lib", 3, "boom 3"),
        ("app", 0, "blocked: dependency lib failed"),
        ("top", 0, "blocked: dependency lib failed"),
    ]
    assert [r.status for r in s.pending_reports] == [SourceStatus.FAILED] * 3


def test_a_cycle_is_failed_with_its_members_named() -> None:
    s = OrchestratorState()
    bq.merge_packages(s, queued(("a", 1, ["b"]), ("b", 1, ["a"])))
    resolve_all(s)
    assert bq.fail_stuck(s, ctx()) == ["a", "b"]
    assert s.queue == [] and s.failed_count == 2
    assert s.recently_failed[0].error == "dependency cycle among queued packages: a, b"


def test_result_and_details_describe_what_is_left() -> None:
    s = OrchestratorState(completed_count=2, failed_count=1, is_paused=True, runs=3)
    bq.merge_packages(s, queued(("low", 1), ("high", 9)))
    start_build(s, "low")
    result = bq.result_of(s, "drained", ["x"])
    assert [p.name for p in result.remaining_queue] == ["high"]
    assert (result.completed, result.failed, result.runs, result.cancelled) == (2, 1, 3, ["x"])
    line = bq.details_line(s)
    assert line.startswith("**paused** — 1/4 building, 1 queued") and "building: low" in line


def test_queued_names_resolve_to_their_nodes_and_workspace_dependencies() -> None:
    core = PackageNode(name="core", path="packages/core")
    app = PackageNode(name="app", path="packages/app", dependencies=["core", "left-pad"])
    graph = WorkspaceGraph(
        root="/ws",
        package_manager=PackageManager.PNPM,
        packages=[core, app],
        topological_order=["core", "app"],
    )
    result = resolve_names(graph, ["app", "ghost", "core"])
    assert result.package_manager is PackageManager.PNPM
    assert [p.node.name for p in result.packages] == ["app", "core"]
    assert [d.name for d in result.packages[0].dependency_nodes] == ["core"]  # not left-pad
    assert result.packages[1].dependency_nodes == []
    assert result.missing == ["ghost"]
