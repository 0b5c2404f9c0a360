"""Rendering of suite state and summaries: a live table in a terminal, plain lines
elsewhere (a pipe, a CI log), and the final summary."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Group
from rich.table import Table
from rich.text import Text

from pkgbuilder.models.build import (
    BuildReport,
    PackageBuildReport,
    PackageState,
    PackageStatus,
    SuiteState,
)
from pkgbuilder.reporting.build_reports import model_calls

STYLE: dict[str, str] = {
    PackageStatus.PENDING: "dim",
    PackageStatus.BUILDING: "cyan",
    PackageStatus.SUCCESS: "green",
    PackageStatus.FAILED: "bold red",
    PackageStatus.BLOCKED: "yellow",
    PackageStatus.SKIPPED: "blue",
    "cached": "green",
    "cancelled": "magenta",
}


def _style(status: str) -> str:
    return STYLE.get(status, "")


def _secs(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return ""
    stop = end or datetime.now(UTC)
    return f"{(stop - start).total_seconds():.1f}s"


def state_header(state: SuiteState) -> str:
    done = sum(
        1 for p in state.packages if p.status not in (PackageStatus.PENDING, PackageStatus.BUILDING)
    )
    return (
        f"suite {state.build_id} — {state.phase.value} — {done}/{len(state.packages)} "
        f"done, {len(state.active)} building (max {state.max_concurrent})"
    )


def state_table(state: SuiteState) -> Group:
    """The live view: a header line (never wrapped into the table's width) and one row per
    package in the workspace's order, so rows stay put while the build runs."""
    table = Table()
    table.add_column("package")
    table.add_column("category")
    table.add_column("status")
    table.add_column("time", justify="right")
    table.add_column("note", overflow="fold", max_width=60)
    for p in state.packages:
        table.add_row(
            p.name,
            p.category.value,
            f"[{_style(p.status)}]{p.status.value}[/]",
            _secs(p.start_time, p.end_time),
            p.error or "",
        )
    return Group(Text(state_header(state), style="bold", no_wrap=True, overflow="ellipsis"), table)


class LineProgress:
    """Progress as plain lines (stdout or stderr not a terminal): one line per package
    state change, nothing repeated."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}
        self._phase = ""

    def lines(self, state: SuiteState) -> list[str]:
        out: list[str] = []
        if state.phase.value != self._phase:
            self._phase = state.phase.value
            out.append(f"phase {self._phase}")
        for p in state.packages:
            if self._seen.get(p.name) == p.status.value:
                continue
            if p.name not in self._seen and p.status is PackageStatus.PENDING:
                self._seen[p.name] = p.status.value
                continue
            self._seen[p.name] = p.status.value
            out.append(_package_line(p))
        return out


def _package_line(p: PackageState) -> str:
    text = f"{p.name} {p.status.value}"
    if p.status not in (PackageStatus.BUILDING, PackageStatus.PENDING) and p.start_time:
        text += f" in {_secs(p.start_time, p.end_time)}"
    if p.error:
        text += f": {p.error}"
    return text


def summary_header(report: BuildReport) -> str:
    head = (
        f"suite {report.build_id}: {report.successful} succeeded, {report.failed} failed, "
        f"{report.blocked} blocked, {report.skipped} skipped"
    )
    cached = sum(1 for r in report.package_reports if r.status.value == "cached")
    if cached:
        head += f", {cached} cached"
    head += f" in {report.total_duration / 1000:.1f}s"
    if report.error == "cancelled":
        head += " — cancelled"
    elif report.error:
        head += f" — {report.error}"
    return head


def install_line(report: BuildReport) -> str | None:
    """The suite's workspace install in one line (its time is not part of any wait)."""
    inst = report.install
    if inst is None:
        return None
    if inst.skipped:
        return f"install: up to date: {inst.reason or 'lockfile and manifests unchanged'}"
    if inst.ok:
        return f"install: {inst.tool or 'done'} in {inst.duration_ms / 1000:.1f}s"
    message = inst.failure.message if inst.failure else "failed"
    where = f" (log: {inst.log_path})" if inst.log_path else ""
    return f"install failed in {inst.duration_ms / 1000:.1f}s: {message}{where}"


def _coverage_cell(r: PackageBuildReport) -> str:
    if r.tests_passed is None and r.quality.test_coverage is None:
        # No test script, or the package never got to its tests.
        return "no tests" if r.status.value == "success" else ""
    if r.tests_passed is False and r.status.value == "success":
        return "tests failed"  # tolerated by testing.failOnError=false
    cov = r.quality.test_coverage
    return "none" if cov is None else f"{cov:.1f}%"


def summary_table(report: BuildReport) -> Group:
    table = Table()
    table.add_column("package")
    table.add_column("version")
    table.add_column("status")
    table.add_column("time", justify="right")
    table.add_column("coverage", justify="right")
    table.add_column("fixes", justify="right")
    table.add_column("error", overflow="fold", max_width=60)
    for r in report.package_reports:
        table.add_row(
            r.package_name,
            r.version,
            f"[{_style(r.status)}]{r.status.value}[/]",
            f"{r.duration / 1000:.1f}s" if r.start_time and r.end_time else "",
            _coverage_cell(r),
            str(model_calls(r.fix_attempts)),
            r.error or "",
        )
    install = install_line(report)
    lines = [Text(summary_header(report), style="bold")]
    if install:
        lines.append(Text(install))
    return Group(*lines, table)
