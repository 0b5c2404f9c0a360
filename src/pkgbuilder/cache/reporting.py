"""The report of a package restored from the cache (pure; used inside workflows)."""

from __future__ import annotations

from datetime import datetime

from pkgbuilder.config import BuildSettings
from pkgbuilder.models.build import (
    PackageBuildReport,
    PackageNode,
    PackageStatus,
    QualityMetrics,
    WaitedFor,
)
from pkgbuilder.models.cache import CachedSteps, CacheInfo, PackageLookup


def saved_ms(steps: CachedSteps) -> int:
    return (
        steps.build.duration_ms
        + (steps.test.duration_ms if steps.test else 0)
        + (steps.quality.duration_ms if steps.quality else 0)
    )


def cached_report(
    node: PackageNode,
    lookup: PackageLookup,
    settings: BuildSettings,
    workflow_id: str,
    now: datetime,
    waited_for: list[WaitedFor] | None = None,
) -> PackageBuildReport:
    """Status ``cached``: build metrics stay 0 (nothing ran), quality and coverage are the
    cached test step's, ``cache`` says where the result came from and what it saved."""
    assert lookup.steps is not None and lookup.steps.test is not None
    steps = lookup.steps
    test = lookup.steps.test
    return PackageBuildReport(
        package_name=node.name,
        version=node.version,
        workflow_id=workflow_id,
        start_time=now,
        end_time=now,
        duration=lookup.restore_ms,
        status=PackageStatus.CACHED,
        dependencies=list(node.dependencies),
        waited_for=waited_for or [],
        category=node.category,
        tests_passed=None if test.skipped else test.ok,
        built_by=steps.build.worker,  # the worker that built what was restored
        quality=QualityMetrics(
            test_coverage=test.coverage_percent,
            type_script_errors=steps.build.type_script_errors
            + (steps.quality.type_script_errors if steps.quality else 0),
            lint_score=steps.quality.lint_score if steps.quality else None,
            passed=True,
            coverage_threshold=settings.testing.threshold_for(node.category),
        ),
        cache=CacheInfo(
            build_hash=lookup.hashes.build,
            test_hash=lookup.hashes.test,
            hit=True,
            source=lookup.source,
            restore_ms=lookup.restore_ms,
            saved_ms=saved_ms(steps),
        ),
    )
