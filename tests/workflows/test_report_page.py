"""The HTML report page of a real suite, rendered in real headless Chromium: it renders
offline with no console error, one bar per executed step, one node per package, the
blocked chain visible and every log link pointing at a log file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from pkgbuilder.models.build import BuildReport
from pkgbuilder.reporting.html import is_self_contained, suite_page
from tests.conftest import REPO_ROOT, copy_workspace
from tests.e2e.test_cli_build import cli_env, run_cli
from tests.support.browser import render, require_browser

FAILING = REPO_ROOT / "tests" / "fixtures" / "failing-monorepo"


@pytest.fixture
def address(temporal_env: WorkflowEnvironment) -> str:
    return temporal_env.client.service_client.config.target_host


@pytest.mark.slow
def test_suite_page_renders_the_build_in_chromium(address: str, tmp_path: Path) -> None:
    require_browser()
    ws = copy_workspace(FAILING, tmp_path / "ws")
    env = cli_env(address)
    proc = run_cli(["build", str(ws), "--json", "--build-id", "page1"], env)
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    report = run_cli(["report", "page1", "--workspace", str(ws)], env)
    assert report.returncode == 0, report.stderr
    page = Path(report.stdout.strip())
    day = Path(summary["summaryPath"]).parent
    assert page == day / "suites" / "page1.html" and (day / "suite-summary.html").is_file()
    html = page.read_text(encoding="utf-8")
    assert is_self_contained(html)
    install = summary.get("install") or {}
    steps = sum(len(r["steps"]) for r in summary["packageReports"]) + (
        1 if install and not install.get("skipped") and install.get("durationMs") else 0
    )
    assert steps >= 9  # 4 packages built and tested (+ the install), a fix attempt
    shown = render(
        page,
        {
            "bars": "svg.gantt rect.step",
            "nodes": "svg.dag g.node",
            "failed": "svg.dag g.node.status-failed",
            "blocked": "svg.dag g.node.status-blocked",
            "blocked_edges": "svg.dag path.edge.blocked",
            "rows": "table.packages tr.pkg",
        },
        attributes={
            "logs": ("a[href$='.log']", "href"),
            "failed_node": ("svg.dag g.node.status-failed", "data-package"),
        },
    )
    assert shown.console_errors == [] and shown.blocked_requests == []
    assert shown.counts["bars"] == steps
    assert shown.counts["nodes"] == summary["totalPackages"] == shown.counts["rows"]
    assert shown.attributes["failed_node"] == ["@fx/broken"]
    assert shown.counts["blocked"] == 2 and shown.counts["blocked_edges"] == 2
    links = [h for h in shown.attributes["logs"] if h]
    assert links and all((page.parent / h).resolve().is_file() for h in links), links
    assert any(h.endswith("/test.log") for h in links)


def test_page_escapes_hostile_text() -> None:
    from datetime import UTC, datetime

    from pkgbuilder.models.build import PackageBuildReport, PackageStatus

    evil = "<script>alert(1)</script>"
    report = BuildReport(
        build_id="x",
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        total_packages=1,
        successful=0,
        failed=1,
        total_duration=1000,
        package_reports=[
            PackageBuildReport(package_name=f"@a/{evil}", status=PackageStatus.FAILED, error=evil)
        ],
    )
    html = suite_page(report, {})
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert is_self_contained(html)
