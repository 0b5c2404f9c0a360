"""ContinuousBuilderWorkflow: the long-running entity that turns a package queue into
PackageBuildWorkflow children, at most ``maxConcurrent`` at a time.

Shape (temporalio samples: safe_message_handlers + batch_sliding_window):
- one ``OrchestratorState`` holds everything and travels through continue-as-new;
- packages arrive by the ``new_packages`` signal (pollers fire and forget);
- control is by updates with validators (a rejected update never reaches history):
  pause, resume, drain, emergency_stop, adjust_concurrency; ``get_state`` is the query;
- children run with ParentClosePolicy.ABANDON and report back by the ``build_finished``
  signal, so a child started by an earlier run reports to the current one; a watcher
  activity covers carried-over children that end without signalling (terminated, ...);
- failed builds wait out a durable backoff in the queue (``not_before``); the main loop's
  only timer is ``wait_condition(timeout=until the next one is due)``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from pkgbuilder.errors import ErrorType
from pkgbuilder.workflows.policies import (
    REPORT_DEADLINE,
    REPORT_RETRY,
    RESOLVE_RETRY,
    SHORT_TIMEOUT,
    WATCH_HEARTBEAT,
    WATCH_RETRY,
    WATCH_TIMEOUT,
)

with workflow.unsafe.imports_passed_through():
    from pkgbuilder import search_attributes as sa
    from pkgbuilder.activities import queue as queue_acts
    from pkgbuilder.config import ConfigError
    from pkgbuilder.models.build import PackageBuildInput
    from pkgbuilder.models.common import slugify
    from pkgbuilder.models.orchestrator import (
        MAX_CONCURRENCY,
        MIN_CONCURRENCY,
        ActiveBuild,
        BuildFinished,
        ConcurrencyInput,
        EmergencyStopResult,
        NewPackages,
        OrchestratorInput,
        OrchestratorResult,
        OrchestratorSettings,
        OrchestratorState,
        OrchestratorStatus,
        QueueEntry,
        ReportOutcomeInput,
        ResolvePackagesInput,
        SourceReport,
        WatchBuildInput,
    )
    from pkgbuilder.queue import store as bq
    from pkgbuilder.workflows.package_build import PackageBuildWorkflow


def _cause(e: BaseException) -> str:
    cause = getattr(e, "cause", None)
    while getattr(cause, "cause", None) is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause  # type: ignore[union-attr]
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or e)


@workflow.defn
class ContinuousBuilderWorkflow:
    """The continuous package-queue orchestrator (id ``continuous-builder-orchestrator``)."""

    @workflow.init
    def __init__(self, inp: OrchestratorInput) -> None:
        self._inp = inp
        self._config_error: str | None = None
        try:
            self._settings = OrchestratorSettings.from_build_settings(inp.config)
        except ConfigError as e:
            self._config_error = str(e)
            self._settings = OrchestratorSettings()
        self._state = inp.state or OrchestratorState(
            max_concurrent=inp.max_concurrent or self._settings.concurrency(inp.config),
            started_at=workflow.now(),
        )
        self._source = self._settings.source_settings()
        self._lock = asyncio.Lock()
        self._dirty = True
        self._run_started_at = workflow.now()
        self._run_expired = False
        self._builds_this_run = 0
        self._reporting: set[str] = set()
        self._cancelled: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # -- messages ----------------------------------------------------------------------

    @workflow.signal
    def new_packages(self, msg: NewPackages) -> None:
        """Queue packages (de-duplicated by name, higher priority wins)."""
        summary = bq.merge_packages(self._state, msg.packages, msg.source)
        if summary.added or summary.reprioritised:
            self._dirty = True

    @workflow.signal(name="newPackages")
    def new_packages_seed_name(self, msg: NewPackages) -> None:
        """The seed's signal name, kept for pollers written against the original."""
        self.new_packages(msg)

    @workflow.signal
    def build_finished(self, notice: BuildFinished) -> None:
        """A child reports how it ended (duplicates and stale reports are ignored)."""
        self._on_finished(notice)

    @workflow.query
    def get_state(self) -> OrchestratorStatus:
        info = workflow.info()
        return bq.status_view(
            self._state,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            workspace_root=self._inp.workspace_root,
            builds_this_run=self._builds_this_run,
            run_started_at=self._run_started_at,
        )

    def _reject_when_ending(self, action: str) -> None:
        if self._state.is_stopping:
            raise ValueError(f"Cannot {action}: the orchestrator is stopping (emergency stop).")

    def _changed(self) -> OrchestratorStatus:
        self._dirty = True
        return self.get_state()

    @workflow.update
    def pause(self) -> OrchestratorStatus:
        """Start no new builds until resumed; running builds continue."""
        self._state.is_paused = True
        return self._changed()

    @pause.validator
    def _validate_pause(self) -> None:
        self._reject_when_ending("pause")
        if self._state.is_draining:
            raise ValueError("Cannot pause: the orchestrator is draining and starts nothing.")

    @workflow.update
    def resume(self) -> OrchestratorStatus:
        self._state.is_paused = False
        return self._changed()

    @resume.validator
    def _validate_resume(self) -> None:
        self._reject_when_ending("resume")
        if self._state.is_draining:
            raise ValueError(
                "Cannot resume: the orchestrator is draining; start a new one "
                "once it has completed."
            )

    @workflow.update
    def drain(self) -> OrchestratorStatus:
        """Finish the running builds, start nothing new, then complete."""
        self._state.is_draining = True
        return self._changed()

    @drain.validator
    def _validate_drain(self) -> None:
        self._reject_when_ending("drain")

    @workflow.update
    def adjust_concurrency(self, inp: ConcurrencyInput) -> OrchestratorStatus:
        self._state.max_concurrent = inp.max_concurrent
        return self._changed()

    @adjust_concurrency.validator
    def _validate_concurrency(self, inp: ConcurrencyInput) -> None:
        self._reject_when_ending("change the concurrency")
        if not MIN_CONCURRENCY <= inp.max_concurrent <= MAX_CONCURRENCY:
            raise ValueError(
                f"Concurrency must be between {MIN_CONCURRENCY} and "
                f"{MAX_CONCURRENCY} (got {inp.max_concurrent})."
            )

    @workflow.update
    async def emergency_stop(self) -> EmergencyStopResult:
        """Cancel every running build, then end, leaving the queue in the result."""
        self._state.is_stopping = True
        self._dirty = True
        # The lock waits out a batch of child starts in flight, so none escapes the cancel.
        async with self._lock:
            builds = list(self._state.active.values())
            self._state.active.clear()
            await self._cancel_builds(builds)
            self._cancelled += [b.entry.name for b in builds]
            return EmergencyStopResult(
                cancelled=[b.entry.name for b in builds],
                remaining_queue=[e.name for e in self._state.queue],
            )

    @emergency_stop.validator
    def _validate_emergency_stop(self) -> None:
        if self._state.is_stopping:
            raise ValueError("The orchestrator is already stopping.")

    # -- main loop ---------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: OrchestratorInput) -> OrchestratorResult:
        if self._config_error:
            raise ApplicationError(
                self._config_error, type=ErrorType.ConfigError, non_retryable=True
            )
        if inp.search_attributes:
            workflow.upsert_search_attributes([sa.KIND.value_set("orchestrator")])
        for build in self._state.active.values():
            self._spawn(self._watch(build))
        self._spawn(self._run_deadline())
        try:
            return await self._loop()
        except asyncio.CancelledError:
            # Cancelling the orchestrator itself is an emergency stop: abandoned children
            # would otherwise keep building with nobody to report to.
            builds = list(self._state.active.values())
            self._state.active.clear()
            await self._cancel_builds(builds)
            raise

    async def _loop(self) -> OrchestratorResult:
        s = self._state
        while True:
            self._dirty = False
            async with self._lock:
                await self._resolve_new()
                bq.fail_stuck(self._state, self._ctx())
                await self._start_ready()
            self._launch_reports()
            workflow.set_current_details(bq.details_line(s))
            if s.is_stopping or (s.is_draining and not s.active and not s.pending_reports):
                await workflow.wait_condition(workflow.all_handlers_finished)
                # Complete in a later workflow task than the one answering the drain or
                # emergency_stop update: an event racing a completing task (a cancelled
                # child closing, a poll) fails that task, and with it the caller's update.
                await workflow.sleep(timedelta(seconds=1))
                await workflow.wait_condition(workflow.all_handlers_finished)
                return bq.result_of(
                    s, "emergency-stop" if s.is_stopping else "drained", self._cancelled
                )
            if self._should_continue_as_new():
                # Never leave an update half-done across runs.
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not s.is_stopping:
                    s.runs += 1
                    workflow.continue_as_new(self._inp.model_copy(update={"state": s}))
            due = bq.next_due(s, workflow.now())
            # The timeout is the durable backoff: it ends when the next retry is due.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._dirty or self._should_continue_as_new(),
                    timeout=(due - workflow.now()) if due else None,
                )

    def _should_continue_as_new(self) -> bool:
        return (
            self._run_expired
            or self._builds_this_run >= self._settings.continue_as_new_after_builds
            or workflow.info().is_continue_as_new_suggested()
        )

    async def _run_deadline(self) -> None:
        # One timer per run (not per loop turn): history stays small.
        await workflow.sleep(timedelta(hours=self._settings.continue_as_new_after_hours))
        self._run_expired = True

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- queue → builds ----------------------------------------------------------------

    async def _resolve_new(self) -> None:
        entries = bq.unresolved(self._state, workflow.now())
        if not entries or self._state.is_stopping:
            return
        names = [e.name for e in entries]
        try:
            res = await workflow.execute_activity(
                queue_acts.resolve_queued_packages,
                ResolvePackagesInput(workspace_root=self._inp.workspace_root, names=names),
                start_to_close_timeout=SHORT_TIMEOUT,
                retry_policy=RESOLVE_RETRY,
            )
        except ActivityError as e:
            for entry in entries:
                entry.attempts += 1
                bq.attempt_failed(
                    self._state, entry, f"cannot read the workspace: {_cause(e)}", self._ctx()
                )
            self._dirty = True
            return
        self._state.package_manager = res.package_manager
        by_name = {e.name: e for e in self._state.queue}
        for resolved in res.packages:
            if resolved.node.name in by_name:
                by_name[resolved.node.name].resolved = resolved
        for name in res.missing:
            missing = bq.remove_entry(self._state, name)
            if missing is not None:
                bq.fail_final(
                    self._state,
                    missing,
                    f"{name} is not a package of the workspace {self._inp.workspace_root}",
                    self._ctx(),
                )

    async def _start_ready(self) -> None:
        s = self._state
        if s.is_paused or s.is_draining or s.is_stopping:
            return
        capacity = s.max_concurrent - len(s.active)
        ready = bq.ready_entries(s, workflow.now())[: max(capacity, 0)]
        # Started together: one workflow task for the whole batch, not one per child.
        await asyncio.gather(*(self._start_build(e) for e in ready))

    async def _start_build(self, entry: QueueEntry) -> None:
        s = self._state
        assert entry.resolved is not None
        bq.remove_entry(s, entry.name)
        attempt = entry.attempts + 1
        me = workflow.info().workflow_id
        child_id = f"{me}-{slugify(entry.name)[:60]}-a{attempt}-{workflow.uuid4().hex[:8]}"
        # Active before the first await: a re-delivery meanwhile is ignored, not queued.
        s.active[entry.name] = ActiveBuild(
            entry=entry, child_workflow_id=child_id, attempt=attempt, started_at=workflow.now()
        )
        child_input = PackageBuildInput(
            build_id=child_id,
            package=entry.resolved.node,
            dependency_nodes=entry.resolved.dependency_nodes,
            workspace_root=self._inp.workspace_root,
            package_manager=s.package_manager,
            config=self._inp.config,
            search_attributes=self._inp.search_attributes,
            notify_workflow_id=me,
        )
        try:
            handle = await workflow.start_child_workflow(
                PackageBuildWorkflow.run,
                child_input,
                id=child_id,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=f"{entry.name}, attempt {attempt} (continuous builder)",
            )
        except Exception as e:  # e.g. the id is taken: count it as a failed attempt
            s.active.pop(entry.name, None)
            entry.attempts = attempt
            bq.attempt_failed(s, entry, f"could not start the build: {e}", self._ctx())
            self._dirty = True
            return
        self._spawn(self._await_child(handle, child_id, entry.name))

    async def _await_child(self, handle: Any, child_id: str, name: str) -> None:
        try:
            result = await handle
            notice = BuildFinished(
                child_workflow_id=child_id,
                package_name=name,
                success=result.success,
                error=result.error,
            )
        except ChildWorkflowError as e:
            notice = BuildFinished(
                child_workflow_id=child_id,
                package_name=name,
                success=False,
                error=f"the build workflow failed: {_cause(e)}",
            )
        self._on_finished(notice)

    async def _watch(self, build: ActiveBuild) -> None:
        try:
            notice = await workflow.execute_activity(
                queue_acts.watch_package_build,
                WatchBuildInput(
                    child_workflow_id=build.child_workflow_id, package_name=build.entry.name
                ),
                start_to_close_timeout=WATCH_TIMEOUT,
                heartbeat_timeout=WATCH_HEARTBEAT,
                retry_policy=WATCH_RETRY,
            )
        except ActivityError as e:
            workflow.logger.warning("cannot watch %s: %s", build.child_workflow_id, _cause(e))
            return
        self._on_finished(notice)

    async def _cancel_builds(self, builds: list[ActiveBuild]) -> None:
        async def cancel(build: ActiveBuild) -> None:
            try:
                await workflow.get_external_workflow_handle(build.child_workflow_id).cancel()
            except Exception as e:  # it finished meanwhile: nothing to cancel
                workflow.logger.info("cancel %s: %s", build.child_workflow_id, e)

        await asyncio.gather(*(cancel(b) for b in builds))

    # -- outcomes ----------------------------------------------------------------------

    def _ctx(self) -> bq.OutcomeContext:
        return bq.OutcomeContext(
            now=workflow.now(), settings=self._settings, new_key=lambda: str(workflow.uuid4())
        )

    def _on_finished(self, notice: BuildFinished) -> None:
        if bq.finish_build(self._state, notice, self._ctx()) is not None:
            self._builds_this_run += 1
            self._dirty = True

    def _launch_reports(self) -> None:
        for report in self._state.pending_reports:
            if report.key not in self._reporting:
                self._reporting.add(report.key)
                self._spawn(self._write_back(report))

    async def _write_back(self, report: SourceReport) -> None:
        try:
            await workflow.execute_activity(
                queue_acts.report_build_outcome,
                ReportOutcomeInput(source=report.source or self._source, report=report),
                start_to_close_timeout=SHORT_TIMEOUT,
                schedule_to_close_timeout=REPORT_DEADLINE,
                retry_policy=REPORT_RETRY,
            )
        except ActivityError as e:
            workflow.logger.warning(
                "could not write the outcome of %s back to the queue source: %s",
                report.name,
                _cause(e),
            )
        self._state.pending_reports = [
            r for r in self._state.pending_reports if r.key != report.key
        ]
        self._dirty = True
