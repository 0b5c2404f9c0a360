"""PackageBuildWorkflow (child): install (when needed) → the checks (verify deps → build →
test with coverage → quality, one ``check_package`` activity: steps/pipeline.py) → fix loop
(the checks again) → publish → JSON report. Never raises for a failing package: the parent
gets a PackageBuildResult with typed failures either way."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributePair, SearchAttributeUpdate, TypedSearchAttributes
from temporalio.exceptions import ActivityError, is_cancelled_exception

from pkgbuilder.workflows.policies import (
    FILE_RETRY,
    PACKAGE_CACHE_TIMEOUT,
    SHORT_TIMEOUT,
    heartbeat_timeout,
)

with workflow.unsafe.imports_passed_through():
    from pkgbuilder import search_attributes as sa
    from pkgbuilder.activities import build as build_acts
    from pkgbuilder.activities import cache as cache_acts
    from pkgbuilder.activities import reports as report_acts
    from pkgbuilder.cache.reporting import cached_report
    from pkgbuilder.models.build import (
        Failure,
        FailureType,
        PackageBuildInput,
        PackageBuildReport,
        PackageBuildResult,
        PackageStatus,
        PublishOutcome,
        StepSpan,
    )
    from pkgbuilder.models.cache import (
        CacheInfo,
        PackageHashes,
        ResolveCacheInput,
        ResolveCacheResult,
    )
    from pkgbuilder.models.checks import CheckInput, CheckResult
    from pkgbuilder.models.common import name_slug
    from pkgbuilder.models.fleet import FleetTask
    from pkgbuilder.models.llm import FixAttemptInput
    from pkgbuilder.models.reports import WritePackageReportInput
    from pkgbuilder.models.steps import InstallInput, StepResult
    from pkgbuilder.reporting.build_reports import reports_root
    from pkgbuilder.workflows import publishing
    from pkgbuilder.workflows.build_notice import notify_orchestrator
    from pkgbuilder.workflows.common import failure_message, run_check, run_shell_step
    from pkgbuilder.workflows.fix_loop import run_fix_attempt


# The parent carries every child's report in its own history and result: keep output tails
# short there (the full tail is in the package's JSON report, the whole output in its logs).
RESULT_TAIL_CHARS = 600


def _compact(report: PackageBuildReport) -> PackageBuildReport:
    failures = [
        f.model_copy(update={"output_tail": f.output_tail[-RESULT_TAIL_CHARS:]})
        for f in report.failures
    ]
    return report.model_copy(update={"failures": failures})


# Failure types a model can fix; install/dependency/publish problems it cannot.
FIXABLE = frozenset(
    {
        FailureType.BUILD,
        FailureType.TYPESCRIPT,
        FailureType.LINT,
        FailureType.TEST,
        FailureType.COVERAGE,
    }
)


# The phase of a package whose steps run (the one check activity); a suite starts its
# children with it already set (see child_search_attributes).
CHECK_PHASE = "check"


def child_search_attributes(build_id: str, package_name: str) -> TypedSearchAttributes:
    """What a suite sets when it starts a package child: its name, build, kind and first
    phase, in the start event itself instead of one upsert event per package."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.PACKAGE_NAME, package_name),
            SearchAttributePair(sa.BUILD_ID, build_id),
            SearchAttributePair(sa.KIND, "package"),
            SearchAttributePair(sa.BUILD_PHASE, CHECK_PHASE),
        ]
    )


class StepFailed(Exception):
    """A step failed; carries the phase name and typed failures."""

    def __init__(self, phase: str, failures: list[Failure]) -> None:
        super().__init__(failures[0].message if failures else phase)
        self.phase = phase
        self.failures = failures


@workflow.defn
class PackageBuildWorkflow:
    def __init__(self) -> None:
        self._phase = "starting"
        self._search_attributes = False
        self._report: PackageBuildReport | None = None
        self._fix_stopped: str | None = None
        self._build_ok = False
        # Test failures a tolerant policy (testing.failOnError=false) let pass: kept in the
        # report, never silently clean.
        self._tolerated: list[Failure] = []
        self._cached = False

    @workflow.query
    def get_state(self) -> PackageBuildReport | None:
        return self._report

    @workflow.query
    def current_phase(self) -> str:
        return self._phase

    @workflow.run
    async def run(self, inp: PackageBuildInput) -> PackageBuildResult:
        pkg = inp.package
        start = workflow.now()
        report = PackageBuildReport(
            package_name=pkg.name,
            version=pkg.version,
            workflow_id=workflow.info().workflow_id,
            start_time=start,
            status=PackageStatus.BUILDING,
            dependencies=list(pkg.dependencies),
            waited_for=list(inp.waited_for),
            category=pkg.category,
        )
        self._report = report
        self._search_attributes = inp.search_attributes
        if inp.search_attributes:
            # A suite sets them when it starts the child (no upsert event, no extra
            # visibility write per package); a standalone build sets them here.
            self._upsert(
                [
                    sa.PACKAGE_NAME.value_set(pkg.name),
                    sa.BUILD_ID.value_set(inp.build_id),
                    sa.KIND.value_set("package"),
                ]
            )
        date = inp.report_date or start.strftime("%Y-%m-%d")
        root = str(reports_root(inp.workspace_root, inp.config.reports_root))
        log_dir = f"{root}/{date}/logs/{inp.build_id}/{name_slug(pkg.name)}"
        try:
            await self._pipeline(inp, report, log_dir)
            report.status = PackageStatus.CACHED if self._cached else PackageStatus.SUCCESS
            report.quality.passed = True
            report.failures = list(self._tolerated)
        except StepFailed as e:
            report.status = PackageStatus.FAILED
            report.failed_phase = e.phase
            report.failures = e.failures
            report.error = f"{e.phase}: {e}"
            if self._fix_stopped:
                report.error += f" (fix loop stopped: {self._fix_stopped})"
        except ActivityError as e:
            report.status = PackageStatus.FAILED
            report.failed_phase = self._phase
            if is_cancelled_exception(e):
                # the workflow itself was cancelled while an activity ran
                report.status = PackageStatus.CANCELLED
                report.error = f"{self._phase}: cancelled"
                await self._finish(report, start, root, date)
                raise asyncio.CancelledError() from e
            msg = failure_message(e)
            report.error = f"{self._phase}: {msg}"
        except asyncio.CancelledError:
            report.status = PackageStatus.CANCELLED
            report.failed_phase = self._phase
            report.error = f"{self._phase}: cancelled"
            await self._finish(report, start, root, date)
            raise
        path = await self._finish(report, start, root, date)
        result = PackageBuildResult(
            package_name=pkg.name,
            success=report.status in (PackageStatus.SUCCESS, PackageStatus.CACHED),
            status=report.status,
            failed_phase=report.failed_phase,
            error=report.error,
            report=_compact(report),
            report_path=path,
            build_succeeded=self._build_ok,
        )
        # Continuous orchestrator (issue 5): report back by signal; it may have
        # continued-as-new since it started this child.
        if inp.notify_workflow_id:
            await notify_orchestrator(inp.notify_workflow_id, result)
        return result

    async def _finish(
        self, report: PackageBuildReport, start: object, root: str, date: str
    ) -> str | None:
        end = workflow.now()
        report.end_time = end
        assert report.start_time is not None
        report.duration = int((end - report.start_time).total_seconds() * 1000)
        self._phase = "report"
        # The outcome, for the UI's list filter (PkgStatus = "failed") and at a glance.
        workflow.set_current_details(
            f"**{report.status.value}**" + (f" — {report.error}" if report.error else "")
        )
        if self._search_attributes:
            # One upsert for the outcome and the last phase (the report write that follows
            # is a local activity of a few milliseconds).
            self._upsert(
                [sa.STATUS.value_set(report.status.value), sa.BUILD_PHASE.value_set("done")]
            )
        try:
            # A local activity: a small file write needs no task-queue round trip, and the
            # parent learns the result (and frees the slot) one workflow task sooner.
            written = await workflow.execute_local_activity(
                report_acts.write_package_report,
                WritePackageReportInput(report=report, reports_root=root, date=date),
                start_to_close_timeout=SHORT_TIMEOUT,
                retry_policy=FILE_RETRY,
            )
            self._phase = "done"
            return written.path
        except ActivityError:
            workflow.logger.warning("could not write the report of %s", report.package_name)
            return None

    def _set_phase(self, phase: str) -> None:
        """The step running now: queryable, and the PkgBuildPhase search attribute."""
        self._phase = phase
        if self._search_attributes:
            self._upsert([sa.BUILD_PHASE.value_set(phase)])

    @staticmethod
    def _upsert(updates: list[SearchAttributeUpdate[Any]]) -> None:
        """Upsert only the attributes whose value changes: each upsert is a history event and
        a visibility write on the server, paid per package."""
        current = workflow.info().typed_search_attributes
        changed = [u for u in updates if current.get(u.key) != u.value]
        if changed:
            workflow.upsert_search_attributes(changed)

    def _span(self, name: str, start: datetime, ok: bool = True) -> None:
        if self._report is not None:
            self._report.steps.append(StepSpan(name=name, start=start, end=workflow.now(), ok=ok))

    async def _step(
        self, activity: Callable[[Any], Awaitable[StepResult]], arg: Any, seconds: int, hb: int
    ) -> StepResult:
        start = workflow.now()
        result = await run_shell_step(activity, arg, seconds, hb)
        if not result.skipped:
            self._span(self._phase, start, result.ok)
        return result

    async def _pipeline(
        self, inp: PackageBuildInput, report: PackageBuildReport, log_dir: str
    ) -> None:
        pkg = inp.package
        t = inp.config.timeouts
        hb = t.heartbeat_seconds
        hashes = inp.cache_hashes
        if inp.config.cache.enabled:
            report.cache = CacheInfo(reason=inp.cache_miss_reason)
            if hashes is None:  # a standalone build: look the package up here
                hashes = await self._lookup(inp, report, log_dir)
                if self._cached:
                    await self._publish(inp, report)
                    return
            if hashes is not None:
                report.cache.build_hash, report.cache.test_hash = hashes.build, hashes.test
        if not inp.workspace_installed:
            self._set_phase("install")
            inst = await self._step(
                build_acts.install_workspace,
                InstallInput(
                    workspace_root=inp.workspace_root,
                    package_manager=inp.package_manager,
                    timeout_seconds=t.install_seconds,
                    log_dir=log_dir,
                ),
                t.install_seconds,
                hb,
            )
            report.build_metrics.install_time = inst.duration_ms
            if not inst.ok:
                raise StepFailed("install", inst.failures)
        check = CheckInput(
            workspace_root=inp.workspace_root,
            package=pkg,
            package_manager=inp.package_manager,
            settings=inp.config,
            log_dir=log_dir,
            dependencies=inp.dependency_nodes,
            # a passing first run is stored in the cache by the same activity
            cache_hashes=hashes if report.cache is not None else None,
            fleet=self._fleet_task(inp, hashes),
        )
        failures = await self._checks(check, report)
        # Fix loop (Claude layer) — up to fix.maxAttempts attempts.
        failures = await self._fix_loop(inp, check, report, failures)
        if failures:
            raise StepFailed(failures[0].type.value if len(failures) == 1 else "quality", failures)
        if report.cache is not None and hashes is not None and report.fix_attempts:
            report.cache.reason = "not cached: the fix loop changed the sources"
        await self._publish(inp, report)

    def _fleet_task(self, inp: PackageBuildInput, hashes: PackageHashes | None) -> FleetTask | None:
        """A fleet suite's task for the worker, with the package's build hash (its checkout
        must hash the same). Fleet workers move outputs through the cache: without hashes
        (the cache could not be used) the package cannot be built there."""
        if inp.fleet is None:
            return None
        if hashes is None:
            raise StepFailed(
                "check",
                [
                    Failure(
                        type=FailureType.DEPENDENCY,
                        message="a fleet build needs the build cache, and it could not be "
                        "used (see the cache warnings)",
                    )
                ],
            )
        return inp.fleet.model_copy(update={"build_hash": hashes.build})

    async def _lookup(
        self, inp: PackageBuildInput, report: PackageBuildReport, log_dir: str
    ) -> PackageHashes | None:
        """Hash and look up this one package; on a hit its outputs and logs are restored
        and the report says ``cached``. None when the cache cannot be used."""
        self._phase = "cache"
        assert report.cache is not None
        try:
            res: ResolveCacheResult = await workflow.execute_activity(
                cache_acts.resolve_cache,
                ResolveCacheInput(
                    workspace_root=inp.workspace_root,
                    packages=[],
                    names=[inp.package.name],
                    package_manager=inp.package_manager,
                    settings=inp.config,
                    build_id=inp.build_id,
                    log_root=log_dir.rsplit("/", 1)[0],
                ),
                start_to_close_timeout=PACKAGE_CACHE_TIMEOUT,
                heartbeat_timeout=heartbeat_timeout(inp.config.timeouts.heartbeat_seconds),
                retry_policy=FILE_RETRY,
            )
        except ActivityError as e:
            if is_cancelled_exception(e):
                raise
            msg = failure_message(e)
            report.cache.warnings.append(f"the build cache could not be used: {msg}")
            return None
        report.cache.warnings.extend(res.warnings)
        lookup = res.lookups[0]
        if lookup.hit:
            cached = cached_report(
                inp.package, lookup, inp.config, report.workflow_id, workflow.now(), inp.waited_for
            )
            report.quality = cached.quality
            report.cache = cached.cache
            assert report.cache is not None
            report.cache.warnings = list(res.warnings)
            report.tests_passed = cached.tests_passed
            report.built_by = cached.built_by
            self._cached = True
            self._build_ok = True
        else:
            report.cache.reason = lookup.reason
        return lookup.hashes

    async def _checks(self, check: CheckInput, report: PackageBuildReport) -> list[Failure]:
        """The package's checks in one activity (its heartbeat details name the running
        step); fills the report's spans and metrics, returns the failures (empty: passed)."""
        self._set_phase(CHECK_PHASE)
        result: CheckResult = await run_check(check)
        for step in result.steps:
            if step.started_at is not None and step.ended_at is not None:
                report.steps.append(
                    StepSpan(name=step.step, start=step.started_at, end=step.ended_at, ok=step.ok)
                )
        build, test, quality = result.step("build"), result.step("test"), result.step("quality")
        if result.built_by:
            report.built_by = result.built_by
        report.build_metrics.build_time = build.duration_ms if build else 0
        report.build_metrics.test_time = test.duration_ms if test else 0
        report.build_metrics.quality_check_time = quality.duration_ms if quality else 0
        report.quality.type_script_errors = result.type_script_errors
        report.quality.coverage_threshold = result.coverage_threshold
        if test is not None:
            report.quality.test_coverage = result.coverage_percent
            report.tests_passed = result.tests_passed
        if quality is not None:
            report.quality.lint_score = result.lint_score
        self._build_ok = result.build_ok
        self._tolerated = list(result.tolerated)
        if self._tolerated:
            workflow.logger.warning("tests of %s failed (failOnError=false)", check.package.name)
        if result.cache is not None and report.cache is not None:
            report.cache.stored, report.cache.uploaded = result.cache.stored, result.cache.uploaded
            report.cache.warnings.extend(result.cache.warnings)
        return list(result.failures)

    async def _fix_loop(
        self,
        inp: PackageBuildInput,
        check: CheckInput,
        report: PackageBuildReport,
        failures: list[Failure],
    ) -> list[Failure]:
        """Up to ``fix.maxAttempts`` Claude attempts: classify → prompt → apply + commit →
        re-run the checks. Stops early when another attempt cannot help (no API key)."""
        cfg = inp.config.fix
        attempt = 0
        # Not in a fleet suite: a fix would edit the starting checkout, not the worker's.
        enabled = cfg.enabled and inp.fleet is None
        while failures and enabled and attempt < cfg.max_attempts:
            if not any(f.type in FIXABLE for f in failures):
                break
            attempt += 1
            self._set_phase(f"fix-{attempt}")
            fix_start = workflow.now()
            outcome = await run_fix_attempt(
                FixAttemptInput(
                    build_id=inp.build_id,
                    workspace_root=inp.workspace_root,
                    package_name=inp.package.name,
                    package_path=inp.package.path,
                    plan_path=inp.package.plan_path,
                    failures=[f for f in failures if f.type in FIXABLE],
                    attempt=attempt,
                    config=inp.config,
                )
            )
            record = outcome.attempt
            self._span(f"fix-{attempt}", fix_start, record.succeeded)
            report.fix_attempts.append(record)
            report.tokens = report.tokens + record.tokens
            report.cost_usd = round(report.cost_usd + record.cost_usd, 6)
            if outcome.stop_loop:
                self._fix_stopped = record.error or "the fix loop stopped"
                break
            if not record.succeeded:
                continue  # the answer could not be obtained or applied; try again
            # From now on the package holds code the model wrote: its scripts run confined,
            # and its sources are no longer those the cache hashes describe.
            check = check.model_copy(update={"model_changed": True, "cache_hashes": None})
            failures = await self._checks(check, report)
            record.succeeded = not failures
        return failures

    async def _publish(self, inp: PackageBuildInput, report: PackageBuildReport) -> None:
        """Publish step (issue 3): reached only when build, tests and quality passed."""
        if not publishing.publishing_active(inp.config) or inp.defer_publish:
            return
        if self._tolerated:
            report.publish_detail = (
                "not published: its tests failed (tolerated by testing.failOnError=false)"
            )
            return
        self._set_phase("publish")
        publish_start = workflow.now()
        try:
            result = await publishing.publish_package(
                inp.config, inp.build_id, inp.workspace_root, inp.package, inp.package_manager
            )
            self._span("publish", publish_start, result.outcome is not PublishOutcome.FAILED)
        except ActivityError as e:
            if is_cancelled_exception(e):
                raise
            msg = failure_message(e)
            report.publish = PublishOutcome.FAILED
            raise StepFailed("publish", [Failure(type=FailureType.PUBLISH, message=msg)]) from e
        report.build_metrics.publish_time = result.duration_ms
        report.publish = result.outcome
        report.publish_detail = result.message
        if result.outcome is PublishOutcome.FAILED:
            raise StepFailed(
                "publish",
                [
                    Failure(
                        type=FailureType.PUBLISH,
                        message=result.message,
                        output_tail=result.output_tail,
                    )
                ],
            )
