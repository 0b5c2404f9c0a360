"""Rich rendering of suite state and summaries."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.table import Table

from pkgbuilder.models.build import BuildReport, PackageStatus, SuiteState

STYLE = {
    PackageStatus.PENDING: "dim",
    PackageStatus.BUILDING: "cyan",
    PackageStatus.SUCCESS: "green",
    PackageStatus.FAILED: "bold red",
    PackageStatus.BLOCKED: "yellow",
    PackageStatus.SKIPPED: "blue",
}


def _secs(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return ""
    stop = end or datetime.now(UTC)
    return f"{(stop - start).total_seconds():.1f}s"


def state_table(state: SuiteState) -> Table:
    done = sum(1 for p in state.packages if p.status not in (PackageStatus.PENDING,
                                                               PackageStatus.BUILDING))
    table = Table(
        title=f"suite {state.build_id} — {state.phase.value} — {done}/{len(state.packages)} "
        f"done, {len(state.active)} building (max {state.max_concurrent})",
        title_justify="left",
    )
    table.add_column("package")
    table.add_column("category")
    table.add_column("status")
    table.add_column("time", justify="right")
    table.add_column("note", overflow="fold", max_width=60)
    order = {PackageStatus.BUILDING: 0, PackageStatus.FAILED: 1, PackageStatus.BLOCKED: 2,
             PackageStatus.PENDING: 3, PackageStatus.SUCCESS: 4, PackageStatus.SKIPPED: 5}
    for p in sorted(state.packages, key=lambda p: (order[p.status], p.name)):
        table.add_row(p.name, p.category.value, f"[{STYLE[p.status]}]{p.status.value}[/]",
                      _secs(p.start_time, p.end_time), p.error or "")
    return table


def summary_table(report: BuildReport) -> Table:
    table = Table(
        title=(
            f"suite {report.build_id}: {report.successful} succeeded, {report.failed} failed, "
            f"{report.blocked} blocked, {report.skipped} skipped in "
            f"{report.total_duration / 1000:.1f}s"
        ),
        title_justify="left",
    )
    table.add_column("package")
    table.add_column("status")
    table.add_column("time", justify="right")
    table.add_column("coverage", justify="right")
    table.add_column("fixes", justify="right")
    table.add_column("error", overflow="fold", max_width=60)
    for r in report.package_reports:
        cov = r.quality.test_coverage
        table.add_row(
            r.package_name,
            f"[{STYLE[r.status]}]{r.status.value}[/]",
            f"{r.duration / 1000:.1f}s" if r.start_time else "",
            "none" if cov is None else f"{cov:.1f}%",
            str(len(r.fix_attempts)),
            r.error or "",
        )
    return table
