"""The summary's install line and the coverage column's "no tests" (cli/progress.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from pkgbuilder.cli.progress import install_line, summary_table
from pkgbuilder.models.build import (
    BuildReport,
    Failure,
    FailureType,
    InstallSummary,
    PackageBuildReport,
    PackageStatus,
    QualityMetrics,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _report(**kw: object) -> BuildReport:
    return BuildReport(
        build_id="b1",
        timestamp=NOW,
        total_packages=0,
        successful=0,
        failed=0,
        total_duration=1000,
        **kw,
    )


def test_install_line_names_the_tool_time_and_failure() -> None:
    ok = InstallSummary(ok=True, tool="pnpm 9.15.9 from tool cache", duration_ms=2140)
    assert install_line(_report(install=ok)) == "install: pnpm 9.15.9 from tool cache in 2.1s"
    skipped = InstallSummary(ok=True, skipped=True)
    assert install_line(_report(install=skipped)).startswith("install: up to date")
    trusted = InstallSummary(ok=True, skipped=True, reason="installed by npm (x matches y)")
    assert install_line(_report(install=trusted)) == (
        "install: up to date: installed by npm (x matches y)"
    )
    failed = InstallSummary(
        ok=False,
        duration_ms=900,
        log_path="/r/install.log",
        failure=Failure(
            type=FailureType.INSTALL, message="Workspace install 'pnpm install' failed (exit 1)."
        ),
    )
    assert install_line(_report(install=failed)) == (
        "install failed in 0.9s: Workspace install 'pnpm install' failed (exit 1). "
        "(log: /r/install.log)"
    )
    assert install_line(_report()) is None


def test_coverage_column_says_no_tests_and_tolerated_failures() -> None:
    def pkg(name: str, **kw: object) -> PackageBuildReport:
        return PackageBuildReport(package_name=name, start_time=NOW, end_time=NOW, **kw)

    report = _report(
        package_reports=[
            pkg("no-tests", status=PackageStatus.SUCCESS),
            pkg("tolerated", status=PackageStatus.SUCCESS, tests_passed=False),
            pkg("no-report", status=PackageStatus.SUCCESS, tests_passed=True),
            pkg(
                "covered",
                status=PackageStatus.SUCCESS,
                tests_passed=True,
                quality=QualityMetrics(test_coverage=91.5),
            ),
        ]
    )
    console = Console(width=200, record=True)
    console.print(summary_table(report))
    rows = {
        line.split("│")[1].strip(): line.split("│")[5].strip()
        for line in console.export_text().splitlines()
        if line.count("│") > 6
    }
    assert rows["no-tests"] == "no tests"
    assert rows["tolerated"] == "tests failed"
    assert rows["no-report"] == "none"
    assert rows["covered"] == "91.5%"
