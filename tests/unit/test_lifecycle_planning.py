"""The lifecycle's planning rules without Temporal: which tasks a run takes on, in what
state, and what a finished task must have produced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pkgbuilder.errors import UserError
from pkgbuilder.lifecycle import planning
from pkgbuilder.models.build import PackageNode, WorkspaceGraph
from pkgbuilder.models.lifecycle import MergeTaskResult, TaskRecord, TaskStatus


def _graph(*nodes: PackageNode) -> WorkspaceGraph:
    return WorkspaceGraph(
        root="/ws", packages=list(nodes), topological_order=[n.name for n in nodes]
    )


def _task(name: str, status: TaskStatus, **kw: object) -> TaskRecord:
    return TaskRecord(package=name, slug=name, path=f"packages/{name}", status=status, **kw)  # type: ignore[arg-type]


def test_missing_packages_become_tasks_and_recorded_states_carry_over() -> None:
    graph = _graph(
        PackageNode(name="base", path="packages/base"),  # exists: not generated
        PackageNode(name="done", path="packages/done"),  # exists, done before: kept
        PackageNode(name="new", path="packages/new", exists=False, dependencies=["base", "x"]),
        PackageNode(name="stuck", path="packages/stuck", exists=False),
        PackageNode(name="blocked", path="packages/blocked", exists=False),
        PackageNode(name="failed", path="packages/failed", exists=False, dependencies=["done"]),
    )
    known = {
        "done": _task("done", TaskStatus.DONE),
        "stuck": _task("stuck", TaskStatus.IN_PROGRESS, attempts=2),
        "blocked": _task("blocked", TaskStatus.BLOCKED),
        "failed": _task("failed", TaskStatus.FAILED, reason="tests failed"),
    }
    tasks = {t.package: t for t in planning.merge_tasks(graph, known, retry_failed=False)}
    assert list(tasks) == ["done", "new", "stuck", "blocked", "failed"]
    assert tasks["done"].status is TaskStatus.DONE
    assert tasks["new"].status is TaskStatus.PENDING
    assert tasks["new"].dependencies == []  # base exists and is not a task; x is unknown
    assert tasks["stuck"].status is TaskStatus.PENDING and tasks["stuck"].attempts == 2
    assert tasks["blocked"].status is TaskStatus.PENDING
    assert tasks["failed"].status is TaskStatus.FAILED
    assert tasks["failed"].dependencies == ["done"]
    assert known["stuck"].status is TaskStatus.IN_PROGRESS  # the record is not mutated

    retried = planning.merge_tasks(graph, known, retry_failed=True)
    assert {t.package: t.status for t in retried}["failed"] is TaskStatus.PENDING


def test_log_lines_name_the_transition_and_the_merge() -> None:
    failed = _task("a", TaskStatus.FAILED, attempts=2, reason="gate failed")
    assert planning.transition_line(failed) == "task a: failed attempt 2 (gate failed)"
    done = _task("a", TaskStatus.DONE, attempts=1, reason="old reason")
    assert planning.transition_line(done) == "task a: done attempt 1"
    merged = MergeTaskResult(merge_commit="0123456789abcdef", files=["x", "y"])
    line = planning.merged_line("gen-1", "@acme/a", merged)
    assert line.startswith("merged task/gen-1-") and line.endswith("(2 file(s)) as 0123456789ab")


def test_a_task_must_leave_its_package_where_the_plan_put_it(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(
        json.dumps({"name": "root", "private": True, "workspaces": ["packages/*"]})
    )
    pkg = tmp_path / "packages" / "a"
    pkg.mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"name": "@acme/a", "version": "1.0.0"}))
    graph = planning.task_package(tmp_path, None, "@acme/a", "packages/a")
    assert [p.name for p in graph.packages] == ["@acme/a"]
    with pytest.raises(UserError, match="instead of packages/b"):
        planning.task_package(tmp_path, None, "@acme/a", "packages/b")
    with pytest.raises(UserError):  # nothing of that name in the worktree
        planning.task_package(tmp_path, None, "@acme/z", "packages/z")
