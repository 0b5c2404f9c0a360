"""Client-side bootstrap of the continuous orchestrator (``pkgbuilder worker`` and
``pkgbuilder orchestrator ...``): make sure the orchestrator runs, make sure the
``package-queue-poller`` Schedule exists, trigger or pause the schedule.

The original registered its poller as a cron workflow that silently never registered; here
the poller is a Temporal Schedule created (or updated in place) by these functions, and
every failure surfaces as one sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowExecutionStatus,
)
from temporalio.service import RPCError, RPCStatusCode

from pkgbuilder.config import BuildSettings
from pkgbuilder.errors import UserError
from pkgbuilder.models.orchestrator import (
    NewPackages,
    OrchestratorInput,
    OrchestratorSettings,
    PollerInput,
    QueuedPackage,
    QueueSourceKind,
)
from pkgbuilder.queue.sources.base import default_queue_db
from pkgbuilder.workflows.orchestrator import ContinuousBuilderWorkflow
from pkgbuilder.workflows.policies import POLL_EXECUTION_TIMEOUT
from pkgbuilder.workflows.poller import PackageQueuePollerWorkflow


def pin_queue_db(settings: BuildSettings) -> BuildSettings:
    """Resolve the embedded queue's path here, where the user runs the command.

    Left unset, each worker would resolve ``$PKGBUILDER_HOME/queue.db`` in its own
    environment, and ``pkgbuilder queue add`` could fill a file the poller never reads.
    """
    orch = OrchestratorSettings.from_build_settings(settings)
    if orch.source is not QueueSourceKind.SQLITE or orch.queue_db:
        return settings
    pinned = {**settings.orchestrator, "queueDb": str(default_queue_db())}
    return settings.model_copy(update={"orchestrator": pinned})


def orchestrator_input(
    settings: BuildSettings,
    workspace_root: str,
    concurrency: int | None = None,
    search_attributes: bool = False,
) -> OrchestratorInput:
    return OrchestratorInput(
        workspace_root=workspace_root,
        config=pin_queue_db(settings),
        max_concurrent=concurrency,
        search_attributes=search_attributes,
    )


async def orchestrator_running(client: Client, workflow_id: str) -> bool:
    try:
        desc = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as e:
        if e.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return desc.status == WorkflowExecutionStatus.RUNNING


async def ensure_orchestrator(
    client: Client,
    settings: BuildSettings,
    workspace_root: str,
    packages: Sequence[QueuedPackage] = (),
    concurrency: int | None = None,
    search_attributes: bool = False,
) -> bool:
    """Start the orchestrator unless it is running, delivering ``packages`` either way
    (signal-with-start). Returns True when this call started it."""
    orch = OrchestratorSettings.from_build_settings(settings)
    was_running = await orchestrator_running(client, orch.workflow_id)
    if was_running and not packages:
        return False
    await client.start_workflow(
        ContinuousBuilderWorkflow.run,
        orchestrator_input(settings, workspace_root, concurrency, search_attributes),
        id=orch.workflow_id,
        task_queue=settings.temporal.task_queue,
        start_signal="new_packages",
        start_signal_args=[NewPackages(packages=list(packages))],
        static_summary=f"continuous builder of {workspace_root}",
    )
    return not was_running


def poll_schedule(
    settings: BuildSettings, workspace_root: str, search_attributes: bool = False
) -> Schedule:
    """The ``package-queue-poller`` Schedule: every ``pollIntervalMinutes`` (30), overlap
    SKIP, starting PackageQueuePollerWorkflow."""
    settings = pin_queue_db(settings)
    orch = OrchestratorSettings.from_build_settings(settings)
    poll = PollerInput(
        orchestrator_id=orch.workflow_id,
        task_queue=settings.temporal.task_queue,
        start=orchestrator_input(settings, workspace_root, search_attributes=search_attributes),
        source=orch.source_settings(),
        limit=orch.poll_limit,
    )
    return Schedule(
        action=ScheduleActionStartWorkflow(
            PackageQueuePollerWorkflow.run,
            poll,
            id=f"{orch.schedule_id}-poll",
            task_queue=settings.temporal.task_queue,
            execution_timeout=POLL_EXECUTION_TIMEOUT,
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(minutes=orch.poll_interval_minutes))]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=f"pkgbuilder: feeds {orch.workflow_id}"),
    )


async def ensure_poll_schedule(
    client: Client,
    settings: BuildSettings,
    workspace_root: str,
    search_attributes: bool = False,
) -> str:
    """Create the poll Schedule, or update it in place (keeping its paused state).

    Returns ``"created"`` or ``"updated"``.
    """
    orch = OrchestratorSettings.from_build_settings(settings)
    schedule = poll_schedule(settings, workspace_root, search_attributes)
    try:
        await client.create_schedule(orch.schedule_id, schedule)
        return "created"
    except ScheduleAlreadyRunningError:
        pass

    def keep_state(current: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule.state = current.description.schedule.state
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(orch.schedule_id).update(keep_state)
    return "updated"


async def _schedule_call(client: Client, settings: BuildSettings, action: str) -> None:
    orch = OrchestratorSettings.from_build_settings(settings)
    handle = client.get_schedule_handle(orch.schedule_id)
    try:
        if action == "trigger":
            await handle.trigger()
        elif action == "pause":
            await handle.pause(note="paused by pkgbuilder orchestrator emergency-stop")
        else:
            await handle.unpause(note="unpaused by pkgbuilder orchestrator start")
    except RPCError as e:
        if e.status is RPCStatusCode.NOT_FOUND:
            raise UserError(
                f"The poll schedule '{orch.schedule_id}' does not exist; create it with "
                "'pkgbuilder orchestrator start' (or orchestrator.pollerEnabled = true for "
                "'pkgbuilder worker')."
            ) from e
        raise


async def trigger_poll(client: Client, settings: BuildSettings) -> None:
    """Run the poller now (``orchestrator poll-now``)."""
    await _schedule_call(client, settings, "trigger")


async def set_poll_schedule_paused(client: Client, settings: BuildSettings, paused: bool) -> bool:
    """Pause or unpause the poll schedule; False when there is no schedule."""
    try:
        await _schedule_call(client, settings, "pause" if paused else "unpause")
    except UserError:
        return False
    return True


async def bootstrap(
    client: Client,
    settings: BuildSettings,
    workspace_root: str,
    search_attributes: bool = False,
) -> list[str]:
    """The worker's start-up duty (seed: ensureOrchestratorRunning + poller): start the
    orchestrator when ``orchestrator.autoStart``, create the schedule when
    ``orchestrator.pollerEnabled``. Returns what it did, one line each."""
    orch = OrchestratorSettings.from_build_settings(settings)
    root = orch.workspace or workspace_root
    done: list[str] = []
    if orch.auto_start:
        started = await ensure_orchestrator(
            client, settings, root, search_attributes=search_attributes
        )
        done.append(
            f"orchestrator {orch.workflow_id} " + ("started" if started else "already running")
        )
    if orch.poller_enabled:
        how = await ensure_poll_schedule(client, settings, root, search_attributes)
        done.append(
            f"poll schedule {orch.schedule_id} {how} (every {orch.poll_interval_minutes:g} min)"
        )
    return done
