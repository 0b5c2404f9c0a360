"""SuiteBuildWorkflow: INITIALIZE → PLAN → BUILD → VERIFY → COMPLETE.

BUILD starts one PackageBuildWorkflow child the moment all of a package's dependencies
succeeded (or were skipped), up to ``maxConcurrentBuilds`` at once, ready packages in order of
their critical-path priority (longest chain of work that waits on them). A failed package
marks every transitive dependent *blocked* — naming the failed dependency — and never stops
independent packages (the original left them pending forever).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    is_cancelled_exception,
)

from pkgbuilder.workflows.policies import (
    FILE_RETRY,
    SHORT_TIMEOUT,
    SUITE_CACHE_TIMEOUT,
    heartbeat_timeout,
)

with workflow.unsafe.imports_passed_through():
    from pkgbuilder import search_attributes as sa
    from pkgbuilder.activities import build as build_acts
    from pkgbuilder.activities import cache as cache_acts
    from pkgbuilder.activities import reports as report_acts
    from pkgbuilder.activities import workspace as workspace_acts
    from pkgbuilder.cache.reporting import cached_report
    from pkgbuilder.config import BuildSettings
    from pkgbuilder.models.build import (
        DONE_OK_STATUSES,
        BuildReport,
        Failure,
        FailureType,
        InstallSummary,
        PackageBuildInput,
        PackageBuildReport,
        PackageBuildResult,
        PackageNode,
        PackageState,
        PackageStatus,
        PublishOutcome,
        SuiteBuildInput,
        SuitePhase,
        SuiteState,
        WaitedFor,
        WorkspaceGraph,
    )
    from pkgbuilder.models.cache import PackageHashes, ResolveCacheInput, ResolveCacheResult
    from pkgbuilder.models.common import PackageManager, name_slug
    from pkgbuilder.models.fleet import DependencyBuild, FleetTask
    from pkgbuilder.models.reports import (
        DiscoverInput,
        EstimatesInput,
        WritePackageReportInput,
        WritePackageReportsInput,
        WriteSuiteSummaryInput,
    )
    from pkgbuilder.models.steps import CommandInput, InstallInput
    from pkgbuilder.reporting.build_reports import build_suite_report, reports_root
    from pkgbuilder.workflows import publishing, session_child
    from pkgbuilder.workflows.common import failure_message, run_shell_step
    from pkgbuilder.workflows.package_build import PackageBuildWorkflow, child_search_attributes
    from pkgbuilder.workspace.graph import (
        critical_path_priority,
        transitive_dependencies,
        transitive_dependents,
    )

DONE_OK = DONE_OK_STATUSES
FINAL = (*DONE_OK_STATUSES, PackageStatus.FAILED, PackageStatus.BLOCKED)


@workflow.defn
class SuiteBuildWorkflow:
    @workflow.init
    def __init__(self, inp: SuiteBuildInput) -> None:
        # State that depends on the input is set here, before any signal, query or run.
        self._inp = inp
        self._max_concurrent = inp.config.max_concurrent_builds
        self._state = SuiteState(
            build_id=inp.build_id,
            workspace_root=inp.workspace_root,
            max_concurrent=self._max_concurrent,
        )
        self._graph: WorkspaceGraph | None = None  # set by INITIALIZE
        self._results: dict[str, PackageBuildResult] = {}
        self._published_identical: set[str] = set()
        self._built: set[str] = set()  # packages whose build step succeeded
        self._hashes: dict[str, PackageHashes] = {}
        self._hits: dict[str, PackageBuildResult] = {}  # restored from the build cache
        self._miss_reasons: dict[str, str | None] = {}

    @property
    def _discovered(self) -> WorkspaceGraph:
        """The graph INITIALIZE found (every phase after it may rely on it)."""
        assert self._graph is not None, "the workspace graph is read before INITIALIZE"
        return self._graph

    @workflow.query
    def get_state(self) -> SuiteState:
        """Live state: phase and per-package status (what `pkgbuilder status` shows)."""
        return self._state

    @workflow.run
    async def run(self, inp: SuiteBuildInput) -> BuildReport:
        started = workflow.now()
        self._date = started.strftime("%Y-%m-%d")
        self._reports_root = str(reports_root(inp.workspace_root, inp.config.reports_root))
        if inp.search_attributes:
            workflow.upsert_search_attributes(
                [sa.BUILD_ID.value_set(inp.build_id), sa.KIND.value_set("suite")]
            )
        try:
            graph = await self._initialize(inp)
            await self._plan(graph)
            await self._build(graph)
            await self._verify()
        except asyncio.CancelledError:
            self._state.error = "cancelled"
            for p in self._state.packages:
                if p.status not in FINAL:
                    p.status = PackageStatus.CANCELLED
                    p.error = p.error or "suite cancelled"
            await self._complete(started)
            raise
        return await self._complete(started)

    # -- phases -------------------------------------------------------------------------

    def _outcome(self) -> str:
        """The suite's result for the ``PkgResult`` search attribute."""
        if self._state.error == "cancelled":
            return "cancelled"
        bad = any(p.status not in DONE_OK for p in self._state.packages)
        return (
            "failed"
            if bad or self._state.error or self._state.verify_passed is False
            else "success"
        )

    def _enter(self, phase: SuitePhase) -> None:
        self._state.phase = phase
        if self._inp.search_attributes:
            workflow.upsert_search_attributes([sa.BUILD_PHASE.value_set(phase.value)])
        self._update_details()

    def _update_details(self) -> None:
        counts: dict[str, int] = {}
        for p in self._state.packages:
            counts[p.status.value] = counts.get(p.status.value, 0) + 1
        parts = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        failed = [p.name for p in self._state.packages if p.status is PackageStatus.FAILED]
        workflow.set_current_details(
            f"**{self._state.phase.value}** — {parts or 'discovering packages'}"
            + (f"\n\nbuilding: {', '.join(self._state.active)}" if self._state.active else "")
            + (f"\n\nfailed: {', '.join(failed)}" if failed else "")
        )

    async def _initialize(self, inp: SuiteBuildInput) -> WorkspaceGraph:
        self._enter(SuitePhase.INITIALIZE)
        try:
            # Quick file reads and writes of the suite run as local activities (no
            # task-queue round trip); shell steps and children go through the server.
            graph: WorkspaceGraph = await workflow.execute_local_activity(
                workspace_acts.discover_workspace_activity,
                DiscoverInput(
                    workspace_root=inp.workspace_root,
                    plan_path=inp.plan_path,
                    only=inp.only,
                    depends_on=inp.config.graph.depends_on,
                ),
                start_to_close_timeout=SHORT_TIMEOUT,
                retry_policy=FILE_RETRY,
            )
        except ActivityError as e:
            cause = e.cause
            if isinstance(cause, ApplicationError):
                raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from e
            raise
        self._graph = graph
        self._state.packages = [
            PackageState(
                name=p.name, version=p.version, category=p.category, dependencies=p.dependencies
            )
            for p in graph.packages
        ]
        estimates = await workflow.execute_local_activity(
            report_acts.load_duration_estimates,
            EstimatesInput(reports_root=self._reports_root),
            start_to_close_timeout=SHORT_TIMEOUT,
            retry_policy=FILE_RETRY,
        )
        weights = {p.name: estimates.durations_ms.get(p.name, 1000.0) for p in graph.packages}
        self._priority = critical_path_priority(graph.packages, weights)
        return graph

    async def _plan(self, graph: WorkspaceGraph) -> None:
        """PLAN: packages without a directory can't be built; extension point for the
        registry check (issue 3) and plan-driven generation (issue 4)."""
        self._enter(SuitePhase.PLAN)
        for node in graph.packages:
            # turn-based generation (issue 4): generated right before its build, see _run_child
            if session_child.wants_generation(self._inp.config, node):
                continue
            if not node.exists:
                self._fail(
                    node.name,
                    "the master plan lists it but its directory "
                    f"{node.path} does not exist (enable turnBasedGeneration to "
                    "generate it)",
                    None,
                )
        self._published_identical = await publishing.skip_published(self._inp, graph, self._state)

    async def _install(self, graph: WorkspaceGraph) -> InstallSummary:
        """Install the workspace once, before any child starts (workspaces link packages)."""
        t = self._inp.config.timeouts
        log_dir = f"{self._reports_root}/{self._date}/logs/{self._inp.build_id}"
        result = await run_shell_step(
            build_acts.install_workspace,
            InstallInput(
                workspace_root=self._inp.workspace_root,
                package_manager=graph.package_manager,
                timeout_seconds=t.install_seconds,
                log_dir=log_dir,
            ),
            t.install_seconds,
            t.heartbeat_seconds,
        )
        failure = result.failures[0] if result.failures else None
        if not result.ok and failure is None:
            failure = Failure(
                type=FailureType.INSTALL,
                message="the workspace install failed",
                output_tail=result.output_tail[-4000:],
            )
        summary = InstallSummary(
            ok=result.ok,
            skipped=result.skipped,
            reason=result.detail if result.skipped else None,
            tool=result.detail if not result.skipped else None,
            duration_ms=result.duration_ms,
            failure=failure.model_copy(update={"output_tail": failure.output_tail[-4000:]})
            if failure
            else None,
            log_path=None if result.skipped else f"{log_dir}/install.log",
        )
        self._state.install = summary
        return summary

    async def _build(self, graph: WorkspaceGraph) -> None:
        self._enter(SuitePhase.BUILD)
        nodes = graph.by_name()
        pending = [p.name for p in self._state.packages if p.status is PackageStatus.PENDING]
        if pending and self._inp.config.cache.enabled:
            await self._resolve_cache(graph, pending)
            pending = [n for n in pending if n not in self._hits]
        # A fleet's workers install their own checkouts (each once, before its first step).
        if pending and self._inp.fleet is None:
            install = await self._install(graph)
            if not install.ok:
                # One failure, reported once for the suite; each package names it.
                for name in pending:
                    state = self._pkg(name)
                    state.status = PackageStatus.BLOCKED
                    state.error = (
                        "not built: the workspace install failed (see install in the suite summary)"
                    )
                return
        # Waits are measured from here: the install is its own line in the summary.
        build_start = workflow.now()
        end_times: dict[str, datetime] = {}
        running: dict[asyncio.Task[PackageBuildResult], str] = {}
        publish_hits = publishing.publishing_active(self._inp.config)
        suite_package = self._inp.config.suite_package
        while True:
            ready = self._ready()
            # Restored and nothing to publish now (the suite package publishes in COMPLETE):
            # final at once, no child, no slot.
            final = [
                n for n in ready if n in self._hits and (not publish_hits or n == suite_package)
            ]
            if final:
                for name in final:
                    self._mark_cached(name, end_times)
                continue
            while ready and len(running) < self._max_concurrent:
                name = ready.pop(0)
                node = nodes[name]
                if name in self._hits:
                    state = self._pkg(name)
                    state.status = PackageStatus.BUILDING
                    state.start_time = workflow.now()
                    self._state.active.append(name)
                    running[asyncio.create_task(self._publish_hit(node, graph.package_manager))] = (
                        name
                    )
                    continue
                # Marked building now, not when the task first runs, so that the details
                # and queries of this workflow task already show it.
                state = self._pkg(name)
                state.status = PackageStatus.BUILDING
                state.start_time = workflow.now()
                state.workflow_id = f"build-{self._inp.build_id}-{name_slug(name)}"
                self._state.active.append(name)
                task = asyncio.create_task(
                    self._run_child(node, graph, nodes, build_start, end_times)
                )
                running[task] = name
            self._update_details()
            if not running:
                break
            try:
                done, _ = await workflow.wait(list(running), return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                # Cancel every running child and wait until each has recorded its
                # cancellation (and written its report) before the suite closes.
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)
                for name in running.values():
                    self._pkg(name).end_time = workflow.now()
                    if name in self._state.active:
                        self._state.active.remove(name)
                raise
            for task in done:
                name = running.pop(task)
                end_times[name] = workflow.now()
                self._record(name, task)
        # Anything still pending could never start (a dependency outside the graph failed).
        for p in self._state.packages:
            if p.status is PackageStatus.PENDING:
                p.status = PackageStatus.BLOCKED
                p.error = p.error or "a dependency did not complete"
        await self._write_cached_reports()

    def _gates_tests(self, name: str) -> bool:
        """Whether dependents need ``name``'s tests to pass, not only its build."""
        g = self._inp.config.graph
        need = g.dependents_need or ("tests" if self._discovered.tests_gate else "build")
        return need == "tests" or name in g.tests_gate

    def _usable(self, state: PackageState) -> bool:
        """A dependency dependents can build against: done, or (failure policy "build")
        failed after its build succeeded."""
        if state.status in DONE_OK:
            return True
        return (
            state.status is PackageStatus.FAILED
            and state.name in self._built
            and not self._gates_tests(state.name)
        )

    def _warn(self, text: str) -> None:
        if text not in self._state.cache_warnings:
            self._state.cache_warnings.append(text)

    async def _resolve_cache(self, graph: WorkspaceGraph, names: list[str]) -> None:
        """Hash every pending package and restore every hit in one activity: a hit costs
        no child workflow. A cache that cannot be used only costs the lookup."""
        cfg = self._inp.config
        try:
            res: ResolveCacheResult = await workflow.execute_activity(
                cache_acts.resolve_cache,
                ResolveCacheInput(
                    workspace_root=self._inp.workspace_root,
                    packages=graph.packages,
                    names=names,
                    package_manager=graph.package_manager,
                    settings=self._lookup_settings(),
                    build_id=self._inp.build_id,
                    log_root=f"{self._reports_root}/{self._date}/logs/{self._inp.build_id}",
                ),
                start_to_close_timeout=SUITE_CACHE_TIMEOUT,
                heartbeat_timeout=heartbeat_timeout(cfg.timeouts.heartbeat_seconds),
                retry_policy=FILE_RETRY,
                summary=f"cache lookup of {len(names)} packages",
            )
        except ActivityError as e:
            if is_cancelled_exception(e):
                raise
            msg = failure_message(e)
            self._warn(f"the build cache could not be used, building everything: {msg}")
            return
        for text in res.warnings:
            self._warn(text)
        nodes = graph.by_name()
        for lookup in res.lookups:
            self._hashes[lookup.package] = lookup.hashes
            self._miss_reasons[lookup.package] = lookup.reason
            if lookup.hit:
                # Final only once its dependencies are usable in this run: a dependency
                # that fails still blocks it (see _build).
                self._hits[lookup.package] = PackageBuildResult(
                    package_name=lookup.package,
                    success=True,
                    status=PackageStatus.CACHED,
                    build_succeeded=True,
                    report=cached_report(nodes[lookup.package], lookup, cfg, "", workflow.now()),
                )

    def _mark_cached(self, name: str, end_times: dict[str, datetime]) -> None:
        now = workflow.now()
        state = self._pkg(name)
        state.status = PackageStatus.CACHED
        state.start_time = state.end_time = end_times[name] = now
        result = self._hits[name]
        result.report.start_time = result.report.end_time = now
        self._results[name] = result
        self._built.add(name)

    async def _publish_hit(
        self, node: PackageNode, package_manager: PackageManager
    ) -> PackageBuildResult:
        """Publishing is never cached: a restored package still goes through the publish
        step (which checks the registry first), once its dependencies are done."""
        result = self._hits[node.name]
        report = result.report
        try:
            published = await publishing.publish_package(
                self._inp.config,
                self._inp.build_id,
                self._inp.workspace_root,
                node,
                package_manager,
            )
        except ActivityError as e:
            if is_cancelled_exception(e):
                raise
            msg = failure_message(e)
            report.publish = PublishOutcome.FAILED
            return result.model_copy(
                update={
                    "success": False,
                    "status": PackageStatus.FAILED,
                    "error": f"publish: {msg}",
                }
            )
        report.publish = published.outcome
        report.publish_detail = published.message
        report.build_metrics.publish_time = published.duration_ms
        if published.outcome is PublishOutcome.FAILED:
            return result.model_copy(
                update={
                    "success": False,
                    "status": PackageStatus.FAILED,
                    "error": f"publish: {published.message}",
                }
            )
        return result

    async def _write_cached_reports(self) -> None:
        names = [p.name for p in self._state.packages if p.status is PackageStatus.CACHED]
        if not names:
            return
        written = await workflow.execute_local_activity(
            report_acts.write_package_reports,
            WritePackageReportsInput(
                reports=[self._results[n].report for n in names],
                reports_root=self._reports_root,
                date=self._date,
            ),
            start_to_close_timeout=SHORT_TIMEOUT,
            retry_policy=FILE_RETRY,
        )
        for name, path in zip(names, written, strict=True):
            self._results[name].report_path = path.path

    def _ready(self) -> list[str]:
        by_name = {p.name: p for p in self._state.packages}
        ready = [
            p.name
            for p in self._state.packages
            if p.status is PackageStatus.PENDING
            and all(self._usable(by_name[d]) for d in p.dependencies if d in by_name)
        ]
        # Equal priority (no history): the workspace's declaration order, as npm runs it.
        order = {p.name: p.order for p in self._discovered.packages}
        ready.sort(key=lambda n: (-self._priority.get(n, 0.0), order.get(n, 0), n))
        return ready

    async def _run_child(
        self,
        node: PackageNode,
        graph: WorkspaceGraph,
        nodes: dict[str, PackageNode],
        build_start: datetime,
        end_times: dict[str, datetime],
    ) -> PackageBuildResult:
        state = self._pkg(node.name)
        if session_child.wants_generation(self._inp.config, node):  # issue 4
            node = await session_child.generate_package(
                self._inp, node, graph.package_manager, graph.packages.index(node)
            )
        waited = [
            WaitedFor(
                package_name=d, wait_time=int((end_times[d] - build_start).total_seconds() * 1000)
            )
            for d in node.dependencies
            if d in end_times
        ]
        child_input = PackageBuildInput(
            build_id=self._inp.build_id,
            package=node,
            dependency_nodes=[nodes[d] for d in node.dependencies if d in nodes],
            workspace_root=self._inp.workspace_root,
            package_manager=graph.package_manager,
            config=self._inp.config,
            report_date=self._date,
            waited_for=waited,
            workspace_installed=True,
            defer_publish=node.name == self._inp.config.suite_package,
            search_attributes=self._inp.search_attributes,
            cache_hashes=self._hashes.get(node.name),
            cache_miss_reason=self._miss_reasons.get(node.name),
            fleet=self._fleet_task(node, graph),
        )
        assert state.workflow_id is not None
        result: PackageBuildResult = await workflow.execute_child_workflow(
            PackageBuildWorkflow.run,
            child_input,
            id=state.workflow_id,
            static_summary=f"{node.name} ({node.category.value}) in suite {self._inp.build_id}",
            search_attributes=(
                child_search_attributes(self._inp.build_id, node.name)
                if self._inp.search_attributes
                else None
            ),
        )
        return result

    def _lookup_settings(self) -> BuildSettings:
        """The settings of the bulk lookup. A fleet suite takes hits from the remote cache
        only: a hit only the starter's local cache holds would be on no fleet worker's host
        when a dependent's worker restores it."""
        cfg = self._inp.config
        if self._inp.fleet is None:
            return cfg
        return cfg.model_copy(update={"cache": cfg.cache.model_copy(update={"local_read": False})})

    def _fleet_task(self, node: PackageNode, graph: WorkspaceGraph) -> FleetTask | None:
        """What a fleet worker needs to build ``node`` in its own checkout: the suite's
        commit, and the build hash of every workspace package it depends on (whose outputs
        it restores from the cache)."""
        spec = self._inp.fleet
        if spec is None:
            return None
        nodes = graph.by_name()
        deps = sorted(transitive_dependencies(graph.packages, node.name))
        return FleetTask(
            task_queue=spec.task_queue,
            checkout=spec.checkout,
            suite_root=self._inp.workspace_root,
            dependencies=[
                DependencyBuild(name=d, path=nodes[d].path, build_hash=self._hashes[d].build)
                for d in deps
                if d in self._hashes and d in nodes
            ],
        )

    def _record(self, name: str, task: asyncio.Task[PackageBuildResult]) -> None:
        state = self._pkg(name)
        if name in self._state.active:
            self._state.active.remove(name)
        state.end_time = workflow.now()
        try:
            result = task.result()
        except (ChildWorkflowError, ActivityError, ApplicationError) as e:
            message = failure_message(e)
            self._fail(name, f"child workflow failed: {message}", state.start_time)
            return
        self._results[name] = result
        if result.build_succeeded:
            self._built.add(name)
        if result.report.cache is not None:
            for text in result.report.cache.warnings:
                self._warn(text)
        if result.success:
            state.status = result.status if result.status in DONE_OK else PackageStatus.SUCCESS
        else:
            self._fail(name, result.error or "failed", state.start_time)

    def _fail(self, name: str, error: str, started: datetime | None) -> None:
        state = self._pkg(name)
        state.status = PackageStatus.FAILED
        state.error = error
        state.start_time = started
        if self._usable(state):
            return  # its build succeeded: dependents still build (failure policy "build")
        for dep_name in sorted(transitive_dependents(self._discovered.packages, name)):
            dep = self._pkg(dep_name)
            if dep.status in (PackageStatus.PENDING, PackageStatus.BLOCKED):
                dep.status = PackageStatus.BLOCKED
                if name not in dep.blocked_by:
                    dep.blocked_by.append(name)
                dep.error = "blocked by failed dependency " + ", ".join(dep.blocked_by)

    def _pkg(self, name: str) -> PackageState:
        for p in self._state.packages:
            if p.name == name:
                return p
        raise KeyError(name)

    async def _verify(self) -> None:
        self._enter(SuitePhase.VERIFY)
        cmd = self._inp.config.verify.command
        if not cmd:
            return
        if any(p.status not in DONE_OK for p in self._state.packages):
            self._state.verify_output = "skipped: not every package succeeded"
            return
        t = self._inp.config.verify.timeout_seconds
        result = await run_shell_step(
            build_acts.run_suite_command,
            CommandInput(
                workspace_root=self._inp.workspace_root,
                argv=cmd,
                timeout_seconds=t,
                package_manager=self._discovered.package_manager,
                log_path=f"{self._reports_root}/{self._date}/logs/{self._inp.build_id}/verify.log",
            ),
            t,
            self._inp.config.timeouts.heartbeat_seconds,
        )
        self._state.verify_passed = result.ok
        self._state.verify_output = result.output_tail[-2000:]

    async def _complete(self, started: datetime) -> BuildReport:
        self._enter(SuitePhase.COMPLETE)
        suite_published = PublishOutcome.NOT_ATTEMPTED
        graph = self._graph  # absent when cancelled during INITIALIZE
        if graph is not None and not self._state.error:
            suite_published = await publishing.publish_suite_package(
                self._inp, graph, self._state, self._results, self._published_identical
            )
        reports = [self._package_report(p) for p in self._state.packages]
        for rep in reports:
            if rep.package_name not in self._results:
                # Blocked (or never started) packages get their report file too.
                await workflow.execute_local_activity(
                    report_acts.write_package_report,
                    WritePackageReportInput(
                        report=rep, reports_root=self._reports_root, date=self._date
                    ),
                    start_to_close_timeout=SHORT_TIMEOUT,
                    retry_policy=FILE_RETRY,
                )
        end = workflow.now()
        summary = build_suite_report(
            build_id=self._inp.build_id,
            timestamp=end,
            workspace_root=self._inp.workspace_root,
            reports=reports,
            total_duration_ms=int((end - started).total_seconds() * 1000),
            verify_passed=self._state.verify_passed,
        )
        summary.error = self._state.error
        summary.install = self._state.install
        summary.suite_package_published = suite_published
        summary.cache_warnings = list(self._state.cache_warnings)
        written = await workflow.execute_local_activity(
            report_acts.write_suite_summary,
            WriteSuiteSummaryInput(
                report=summary, reports_root=self._reports_root, date=self._date
            ),
            start_to_close_timeout=SHORT_TIMEOUT,
            retry_policy=FILE_RETRY,
        )
        summary.summary_path = written.path
        if self._inp.search_attributes:
            workflow.upsert_search_attributes([sa.RESULT.value_set(self._outcome())])
        self._state.phase = SuitePhase.DONE
        self._update_details()
        return summary

    def _package_report(self, p: PackageState) -> PackageBuildReport:
        result = self._results.get(p.name)
        if result is not None:
            rep = result.report.model_copy()
            rep.status = (
                p.status
                if p.status not in (PackageStatus.SUCCESS, PackageStatus.CACHED)
                else rep.status
            )
            if p.error and rep.error is None:
                rep.error = p.error
            return rep
        fields: dict[str, object] = {
            "package_name": p.name,
            "version": p.version,
            "workflow_id": p.workflow_id or "",
            "start_time": p.start_time,
            "end_time": p.end_time if p.start_time else None,
            "duration": int((p.end_time - p.start_time).total_seconds() * 1000)
            if p.start_time is not None and p.end_time is not None
            else 0,
            "status": p.status,
            "error": p.error,
            "dependencies": p.dependencies,
            "blocked_by": p.blocked_by,
            "category": p.category,
        }
        fields.update(publishing.plan_skip_fields(p.name, self._published_identical, self._graph))
        return PackageBuildReport.model_validate(fields)
