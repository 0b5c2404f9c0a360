"""Report-writing activities (atomic JSON files; rewriting the same report is idempotent)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio import activity

from pkgbuilder.models.reports import (
    Estimates,
    EstimatesInput,
    WritePackageReportInput,
    WritePackageReportsInput,
    WriteSuiteSummaryInput,
    WrittenReport,
)
from pkgbuilder.reporting.build_reports import latest_durations, package_report_path
from pkgbuilder.reporting.html import write_suite_pages
from pkgbuilder.util.atomic import write_json_atomic
from pkgbuilder.util.state_dirs import ensure_state_dir


@activity.defn
def write_package_report(inp: WritePackageReportInput) -> WrittenReport:
    ensure_state_dir(Path(inp.reports_root))
    path = package_report_path(Path(inp.reports_root), inp.date, inp.report.package_name)
    write_json_atomic(path, inp.report.to_json_dict(), durable=False)
    return WrittenReport(path=str(path))


@activity.defn
def write_package_reports(inp: WritePackageReportsInput) -> list[WrittenReport]:
    """Many package reports at once (the suite's cache hits)."""
    out = []
    for report in inp.reports:
        path = package_report_path(Path(inp.reports_root), inp.date, report.package_name)
        write_json_atomic(path, report.to_json_dict(), durable=False)
        out.append(WrittenReport(path=str(path)))
    return out


@activity.defn
def write_suite_summary(inp: WriteSuiteSummaryInput) -> WrittenReport:
    ensure_state_dir(Path(inp.reports_root))
    path = Path(inp.reports_root) / inp.date / "suite-summary.json"
    report = inp.report.model_copy(update={"summary_path": str(path)})
    write_json_atomic(path, report.to_json_dict(), durable=False)
    # Keep every run's summary too: several suites may run on one day.
    write_json_atomic(
        Path(inp.reports_root) / inp.date / "suites" / f"{report.build_id}.json",
        report.to_json_dict(),
    )
    # The page a person reads (docs/operator-guide.md, "Report page").
    write_suite_pages(Path(inp.reports_root) / inp.date, report)
    return WrittenReport(path=str(path))


@activity.defn
def load_duration_estimates(inp: EstimatesInput) -> Estimates:
    """Durations of earlier runs (the suite's first touch of the reports directory, which
    gets its .gitignore here, before any log is written)."""
    ensure_state_dir(Path(inp.reports_root))
    return Estimates(durations_ms=latest_durations(Path(inp.reports_root)))


ACTIVITIES: list[Callable[..., Any]] = [
    write_package_report,
    write_package_reports,
    write_suite_summary,
    load_duration_estimates,
]
