"""The continuous orchestrator's queue discipline, as pure functions over
``OrchestratorState`` (no I/O, no Temporal: safe in workflow code, unit-tested directly).

Rules (issue 5):
- the queue de-duplicates by name; a re-delivered package keeps the higher priority;
- a package already building, or whose outcome is still being written back, is not queued
  again (the source keeps listing it until the write-back lands);
- the highest priority starts first, ties first come first served;
- a package waits while any of its dependencies (from the source or the workspace graph) is
  queued or building;
- a failed attempt waits out its durable backoff (``not_before``); after the last one the
  package fails for good and its queued dependents fail as blocked (never left waiting);
- every final outcome is queued for write-back to the source it came from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from pkgbuilder.models.orchestrator import (
    ActiveBuild,
    ActiveView,
    BuildFinished,
    BuildRecord,
    OrchestratorResult,
    OrchestratorSettings,
    OrchestratorState,
    OrchestratorStatus,
    QueuedPackage,
    QueueEntry,
    QueueSourceSettings,
    QueueView,
    SourceReport,
    SourceStatus,
    mode_name,
)


@dataclass
class MergeSummary:
    added: list[str]
    reprioritised: list[str]
    ignored: list[str]


def merge_packages(
    state: OrchestratorState,
    packages: Iterable[QueuedPackage],
    source: QueueSourceSettings | None = None,
) -> MergeSummary:
    """Add ``packages`` (from ``source``) to the queue, de-duplicating by name (higher
    priority wins)."""
    summary = MergeSummary(added=[], reprioritised=[], ignored=[])
    by_name = {e.name: e for e in state.queue}
    reporting = {r.name for r in state.pending_reports}
    for pkg in packages:
        if pkg.name in state.active or pkg.name in reporting:
            summary.ignored.append(pkg.name)
            continue
        existing = by_name.get(pkg.name)
        if existing is not None:
            changed = False
            if pkg.priority > existing.priority:
                existing.priority = pkg.priority
                changed = True
            for dep in pkg.dependencies:
                if dep not in existing.dependencies:
                    existing.dependencies.append(dep)
                    changed = True
            if pkg.source_id and not existing.source_id:
                existing.source_id = pkg.source_id
            if existing.source is None:
                existing.source = source
            (summary.reprioritised if changed else summary.ignored).append(pkg.name)
            continue
        entry = QueueEntry(
            name=pkg.name,
            priority=pkg.priority,
            dependencies=[d for d in dict.fromkeys(pkg.dependencies) if d != pkg.name],
            source_id=pkg.source_id,
            seq=state.next_seq,
            source=source,
        )
        state.next_seq += 1
        state.queue.append(entry)
        by_name[entry.name] = entry
        summary.added.append(entry.name)
    return summary


def all_dependencies(entry: QueueEntry) -> list[str]:
    """Dependencies named by the source plus the workspace graph's (once resolved)."""
    deps = list(entry.dependencies)
    if entry.resolved is not None:
        deps += [d for d in entry.resolved.node.dependencies if d not in deps]
    return [d for d in deps if d != entry.name]


def waiting_for(state: OrchestratorState, entry: QueueEntry) -> list[str]:
    """The dependencies of ``entry`` that are still queued or building."""
    queued = {e.name for e in state.queue}
    return [d for d in all_dependencies(entry) if d in queued or d in state.active]


def _due(entry: QueueEntry, now: datetime) -> bool:
    return entry.not_before is None or entry.not_before <= now


def unresolved(state: OrchestratorState, now: datetime) -> list[QueueEntry]:
    """Entries not yet looked up in the workspace (and not waiting out a backoff)."""
    return [e for e in state.queue if e.resolved is None and _due(e, now)]


def ready_entries(state: OrchestratorState, now: datetime) -> list[QueueEntry]:
    """Entries that may start now, best first (priority, then arrival)."""
    ready = [
        e
        for e in state.queue
        if e.resolved is not None and _due(e, now) and not waiting_for(state, e)
    ]
    return sorted(ready, key=lambda e: (-e.priority, e.seq))


def next_due(state: OrchestratorState, now: datetime) -> datetime | None:
    """The earliest future backoff deadline, if any (the main loop's only timer)."""
    future = [e.not_before for e in state.queue if e.not_before is not None and e.not_before > now]
    return min(future) if future else None


def stuck_entries(state: OrchestratorState, now: datetime) -> list[QueueEntry]:
    """Entries that can never start: nothing builds, nothing waits on a timer or a lookup,
    yet nothing is ready — every remaining entry waits on another queued one (a cycle, or a
    chain ending in one)."""
    if state.active or not state.queue:
        return []
    if any(not _due(e, now) or e.resolved is None for e in state.queue):
        return []
    if ready_entries(state, now):
        return []
    return list(state.queue)


def queued_dependents(state: OrchestratorState, name: str) -> list[QueueEntry]:
    """Queued entries that depend on ``name``, directly or through other queued entries."""
    found: dict[str, QueueEntry] = {}
    frontier = [name]
    while frontier:
        current = frontier.pop()
        for e in state.queue:
            if e.name not in found and current in all_dependencies(e):
                found[e.name] = e
                frontier.append(e.name)
    return [e for e in state.queue if e.name in found]


def remove_entry(state: OrchestratorState, name: str) -> QueueEntry | None:
    for i, e in enumerate(state.queue):
        if e.name == name:
            return state.queue.pop(i)
    return None


def remember(records: list[BuildRecord], record: BuildRecord, size: int) -> None:
    """Append ``record``, keeping only the ``size`` most recent."""
    records.append(record)
    del records[: max(0, len(records) - size)]


@dataclass
class OutcomeContext:
    """What the outcome transitions need from their caller: in a workflow, ``workflow.now()``
    and keys from ``workflow.uuid4()`` (deterministic on replay)."""

    now: datetime
    settings: OrchestratorSettings
    new_key: Callable[[], str]


def finish_build(
    state: OrchestratorState, notice: BuildFinished, ctx: OutcomeContext
) -> ActiveBuild | None:
    """Apply a child's outcome; None when it is a duplicate or stale (each counts once)."""
    build = state.active.get(notice.package_name)
    if build is None or build.child_workflow_id != notice.child_workflow_id:
        return None
    del state.active[notice.package_name]
    state.builds_since_start += 1
    entry = build.entry
    entry.attempts = build.attempt
    if not notice.success:
        attempt_failed(
            state, entry, notice.error or "the build failed", ctx, build.child_workflow_id
        )
        return build
    state.completed_count += 1
    remember(
        state.recently_completed,
        BuildRecord(
            name=entry.name,
            attempts=entry.attempts,
            child_workflow_id=build.child_workflow_id,
            finished_at=ctx.now,
        ),
        ctx.settings.history_size,
    )
    report(state, entry, SourceStatus.PUBLISHED, None, ctx)
    return build


def attempt_failed(
    state: OrchestratorState,
    entry: QueueEntry,
    error: str,
    ctx: OutcomeContext,
    child_id: str | None = None,
) -> None:
    """After ``entry.attempts`` failed attempts: queue the next one behind its backoff, or
    fail for good after the last."""
    entry.last_error = error
    if entry.attempts >= ctx.settings.max_attempts:
        remove_entry(state, entry.name)
        fail_final(state, entry, error, ctx, child_id)
        return
    entry.not_before = ctx.now + ctx.settings.backoff(entry.attempts)
    if all(e.name != entry.name for e in state.queue):
        state.queue.append(entry)


def fail_final(
    state: OrchestratorState,
    entry: QueueEntry,
    error: str,
    ctx: OutcomeContext,
    child_id: str | None = None,
    block_dependents: bool = True,
) -> None:
    """Record a final failure (the entry is already out of the queue) and fail the queued
    packages that depend on it as blocked."""
    state.failed_count += 1
    remember(
        state.recently_failed,
        BuildRecord(
            name=entry.name,
            attempts=entry.attempts,
            child_workflow_id=child_id,
            finished_at=ctx.now,
            error=error,
        ),
        ctx.settings.history_size,
    )
    report(state, entry, SourceStatus.FAILED, error, ctx)
    if block_dependents:
        for dep in queued_dependents(state, entry.name):
            remove_entry(state, dep.name)
            fail_final(
                state, dep, f"blocked: dependency {entry.name} failed", ctx, block_dependents=False
            )


def fail_stuck(state: OrchestratorState, ctx: OutcomeContext) -> list[str]:
    """Fail the entries of a dependency cycle (see :func:`stuck_entries`)."""
    stuck = stuck_entries(state, ctx.now)
    names = ", ".join(e.name for e in stuck)
    for entry in stuck:
        remove_entry(state, entry.name)
        fail_final(
            state,
            entry,
            f"dependency cycle among queued packages: {names}",
            ctx,
            block_dependents=False,
        )
    return [e.name for e in stuck]


def report(
    state: OrchestratorState,
    entry: QueueEntry,
    status: SourceStatus,
    error: str | None,
    ctx: OutcomeContext,
) -> None:
    """Queue a write-back to the source ``entry`` came from (kept until it succeeded)."""
    state.pending_reports.append(
        SourceReport(
            key=ctx.new_key(),
            name=entry.name,
            source_id=entry.source_id,
            status=status,
            error=error,
            source=entry.source,
        )
    )


def details_line(state: OrchestratorState) -> str:
    """The workflow's *current details* in the Temporal UI (markdown)."""
    mode = mode_name(state.is_stopping, state.is_draining, state.is_paused)
    return (
        f"**{mode}** — {len(state.active)}/{state.max_concurrent} building, "
        f"{len(state.queue)} queued, {state.completed_count} completed, "
        f"{state.failed_count} failed"
        + (f"\n\nbuilding: {', '.join(sorted(state.active))}" if state.active else "")
    )


def result_of(state: OrchestratorState, reason: str, cancelled: list[str]) -> OrchestratorResult:
    """How the orchestrator ended and what it leaves: the queue, best first, and the
    outcomes it could not write back."""
    return OrchestratorResult(
        reason=reason,
        remaining_queue=[
            QueuedPackage(
                name=e.name, priority=e.priority, dependencies=e.dependencies, source_id=e.source_id
            )
            for e in sorted(state.queue, key=lambda e: (-e.priority, e.seq))
        ],
        cancelled=list(cancelled),
        unreported=list(state.pending_reports),
        completed=state.completed_count,
        failed=state.failed_count,
        runs=state.runs,
    )


def status_view(
    state: OrchestratorState,
    *,
    workflow_id: str,
    run_id: str,
    workspace_root: str,
    builds_this_run: int,
    run_started_at: datetime | None,
) -> OrchestratorStatus:
    """The ``get_state`` query result: the state, flattened for people and ``--json``."""
    queue = sorted(state.queue, key=lambda e: (-e.priority, e.seq))
    retry_counts = {e.name: e.attempts for e in state.queue if e.attempts}
    retry_counts.update({n: b.attempt - 1 for n, b in state.active.items() if b.attempt > 1})
    return OrchestratorStatus(
        workflow_id=workflow_id,
        run_id=run_id,
        workspace_root=workspace_root,
        is_paused=state.is_paused,
        is_draining=state.is_draining,
        is_stopping=state.is_stopping,
        max_concurrent=state.max_concurrent,
        queue=[
            QueueView(
                name=e.name,
                priority=e.priority,
                attempts=e.attempts,
                last_error=e.last_error,
                not_before=e.not_before,
                waiting_for=waiting_for(state, e),
            )
            for e in queue
        ],
        active=[
            ActiveView(
                name=n,
                child_workflow_id=b.child_workflow_id,
                attempt=b.attempt,
                started_at=b.started_at,
            )
            for n, b in sorted(state.active.items())
        ],
        completed=state.completed_count,
        failed=state.failed_count,
        recently_completed=list(state.recently_completed),
        recently_failed=list(state.recently_failed),
        retry_counts=retry_counts,
        pending_reports=len(state.pending_reports),
        builds_since_start=state.builds_since_start,
        builds_this_run=builds_this_run,
        started_at=state.started_at,
        run_started_at=run_started_at,
        runs=state.runs,
    )
