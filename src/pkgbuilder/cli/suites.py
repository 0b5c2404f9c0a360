"""What the CLI needs to know about suites besides their live state: the input they were
started with, the summary a closed suite wrote, the unfinished suites of a workspace, and
which workflow or activity tasks are waiting for a worker that never comes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from temporalio.api.enums.v1 import PendingActivityState, PendingWorkflowTaskState
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from pkgbuilder.models.build import BuildReport, SuiteBuildInput
from pkgbuilder.reporting.build_reports import reports_root

SUITE_PREFIX = "suite-"


def suite_workflow_id(build_id: str) -> str:
    return f"{SUITE_PREFIX}{build_id}"


async def suite_input(client: Client, handle: WorkflowHandle[Any, Any]) -> SuiteBuildInput | None:
    """The input the suite was started with (its first history event)."""
    try:
        async for event in handle.fetch_history_events():
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            values = await client.data_converter.decode(list(payloads), [SuiteBuildInput])
            return values[0] if values else None
    except (RPCError, ValidationError, TypeError, ValueError):
        return None
    return None


def written_summary(inp: SuiteBuildInput) -> BuildReport | None:
    """The summary the suite wrote in COMPLETE (also when it was cancelled)."""
    root = reports_root(inp.workspace_root, inp.config.reports_root)
    for path in sorted(root.glob(f"*/suites/{inp.build_id}.json"), reverse=True):
        try:
            return BuildReport.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValidationError):
            continue
    return None


async def unfinished_suites(client: Client, workspace_root: Path) -> list[str]:
    """Build ids of the running suites of ``workspace_root``, newest first."""
    found: list[str] = []
    query = "WorkflowType = 'SuiteBuildWorkflow' AND ExecutionStatus = 'Running'"
    async for wf in client.list_workflows(query, limit=50):
        handle = client.get_workflow_handle(wf.id)
        inp = await suite_input(client, handle)
        if inp is None or Path(inp.workspace_root) != workspace_root:
            continue
        try:  # the list may lag behind a suite that just closed
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                continue
        except RPCError:
            continue
        found.append(inp.build_id)
    return found


async def waiting_tasks(client: Client, workflow_ids: list[str], older_than: float) -> list[str]:
    """What of these workflows has waited more than ``older_than`` seconds for a worker to
    pick it up (a scheduled, unstarted workflow task or activity): one phrase each."""
    now = datetime.now(UTC)
    waiting: list[str] = []
    for wf_id in workflow_ids:
        try:
            desc = await client.get_workflow_handle(wf_id).describe()
        except RPCError:
            continue
        raw = desc.raw_description
        task = raw.pending_workflow_task
        if (
            raw.HasField("pending_workflow_task")
            and task.state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED
        ):
            age = (now - task.scheduled_time.ToDatetime(tzinfo=UTC)).total_seconds()
            if age > older_than:
                waiting.append(f"a workflow task of {wf_id}")
        for act in raw.pending_activities:
            if act.state != PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED:
                continue
            # Since it could have been picked up: a retry waits for its backoff first.
            since = [
                getattr(act, f).ToDatetime(tzinfo=UTC)
                for f in (
                    "scheduled_time",
                    "next_attempt_schedule_time",
                    "last_attempt_complete_time",
                )
                if act.HasField(f)
            ]
            if since and (now - max(since)).total_seconds() > older_than:
                waiting.append(f"activity {act.activity_type.name} of {wf_id}")
    return waiting
