"""Report building (pure) and atomic report files.

Per package: ``<root>/<YYYY-MM-DD>/<package>.json``; per suite:
``<root>/<YYYY-MM-DD>/suite-summary.json`` (the seed's locations). A scoped name keeps its
scope as a directory: ``@acme/x`` → ``@acme/x.json``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from pkgbuilder.errors import ErrorType
from pkgbuilder.models.build import (
    BuildReport,
    FixAttempt,
    PackageBuildReport,
    PackageStatus,
    PublishOutcome,
    TokenUsage,
)

DEFAULT_REPORTS_DIR = "production/reports"


def reports_root(workspace_root: str | Path, configured: str | None) -> Path:
    if configured:
        p = Path(configured)
        return p if p.is_absolute() else Path(workspace_root) / p
    return Path(workspace_root) / DEFAULT_REPORTS_DIR


def package_report_path(root: Path, date: str, package_name: str) -> Path:
    safe = [part for part in package_name.split("/") if part not in ("", ".", "..")]
    return root / date / ("/".join(safe) + ".json")


def build_suite_report(
    build_id: str,
    timestamp: datetime,
    workspace_root: str,
    reports: list[PackageBuildReport],
    total_duration_ms: int,
    verify_passed: bool | None = None,
    top_n: int = 5,
) -> BuildReport:
    """Aggregate package reports into the seed's BuildReport (+ blocked/skipped)."""

    def count(status: PackageStatus) -> int:
        return sum(1 for r in reports if r.status is status)

    # A cancelled package's duration is how long it ran until the cancel, not a build time.
    ran = [
        r for r in reports if r.start_time is not None and r.status is not PackageStatus.CANCELLED
    ]
    slowest = sorted(ran, key=lambda r: r.duration, reverse=True)[:top_n]
    most_fixes = sorted(
        (r for r in reports if r.fix_attempts), key=lambda r: len(r.fix_attempts), reverse=True
    )[:top_n]
    tokens = TokenUsage()
    for r in reports:
        tokens = tokens + r.tokens
    return BuildReport(
        build_id=build_id,
        timestamp=timestamp,
        workspace_root=workspace_root,
        total_packages=len(reports),
        successful=count(PackageStatus.SUCCESS),
        failed=count(PackageStatus.FAILED),
        blocked=count(PackageStatus.BLOCKED),
        skipped=count(PackageStatus.SKIPPED),
        cancelled=count(PackageStatus.CANCELLED),
        cached=count(PackageStatus.CACHED),
        total_duration=total_duration_ms,
        total_fix_attempts=sum(len(r.fix_attempts) for r in reports),
        slowest_packages=slowest,
        most_fix_attempts=most_fixes,
        total_wait_time=sum(max((w.wait_time for w in r.waited_for), default=0) for r in reports),
        package_reports=reports,
        verify_passed=verify_passed,
        suite_package_published=PublishOutcome.NOT_ATTEMPTED,
        tokens=tokens,
        cost_usd=round(sum(r.cost_usd for r in reports), 6),
    )


def latest_durations(root: Path, limit_days: int = 30) -> dict[str, float]:
    """Package durations (ms) from the newest suite summaries, to weight the scheduler's
    critical-path priorities. Missing or unreadable reports simply give no estimate."""
    if not root.is_dir():
        return {}
    estimates: dict[str, float] = {}
    for day in sorted((d for d in root.iterdir() if d.is_dir()), reverse=True)[:limit_days]:
        summary = day / "suite-summary.json"
        try:
            data = json.loads(summary.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for rep in data.get("packageReports", []):
            name, dur = rep.get("packageName"), rep.get("duration")
            if isinstance(name, str) and isinstance(dur, (int, float)) and dur > 0:
                estimates.setdefault(name, float(dur))
    return estimates


# Fix attempts that end with these never reached the model (nothing was asked or paid).
NOT_CALLED = (ErrorType.MissingApiKey, ErrorType.SpendLimitReached)


def model_calls(attempts: list[FixAttempt]) -> int:
    """Fix attempts that asked the model (with no API key: 0)."""
    return sum(1 for a in attempts if not (a.error or "").startswith(NOT_CALLED))
