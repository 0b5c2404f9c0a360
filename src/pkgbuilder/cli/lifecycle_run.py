"""The Temporal side of ``pkgbuilder generation run|resume|stop|reset``: start or attach to
``GenerationRunWorkflow`` (id ``generation-run-<name>``), host a worker in-process when none
polls the task queue, follow the tasks, and refuse git surgery while a run is live."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError

from pkgbuilder.cli.common import console, out, temporal_client
from pkgbuilder.config import BuildSettings
from pkgbuilder.errors import UserError
from pkgbuilder.lifecycle.naming import log_line
from pkgbuilder.models.lifecycle import (
    GenerationRunInput,
    GenerationRunResult,
    GenerationRunState,
    TaskStatus,
)
from pkgbuilder.runtime.client import server_answers
from pkgbuilder.workflows.lifecycle import GenerationRunWorkflow
from pkgbuilder.workflows.policies import QUERY_TIMEOUT


def run_workflow_id(generation: str) -> str:
    return f"generation-run-{generation}"


async def _handle_if_running(client: Client, generation: str) -> WorkflowHandle[Any, Any] | None:
    handle = client.get_workflow_handle_for(GenerationRunWorkflow.run, run_workflow_id(generation))
    try:
        desc = await handle.describe()
    except RPCError:
        return None
    return handle if desc.status == WorkflowExecutionStatus.RUNNING else None


async def refuse_if_running(settings: BuildSettings, generations: list[str], action: str) -> None:
    """One sentence when a run of one of ``generations`` is live (its tasks own worktrees).
    Without a reachable server nothing can be running, so nothing is checked."""
    if not generations or not await server_answers(settings.temporal.address):
        return
    async with temporal_client(settings) as (client, _):
        for name in generations:
            if await _handle_if_running(client, name):
                raise UserError(
                    f"A run of {name} is still in progress; wait for it to finish (or cancel "
                    f"workflow {run_workflow_id(name)}) before you {action}."
                )


async def _follow(handle: WorkflowHandle[Any, Any], generation: str, quiet: bool) -> Any:
    """Wait for the result, printing each task's status change as a tagged log line."""
    result = asyncio.ensure_future(handle.result())
    seen: dict[str, tuple[TaskStatus, int]] = {}
    while not result.done():
        try:
            state: GenerationRunState = await handle.query(
                GenerationRunWorkflow.get_state, rpc_timeout=QUERY_TIMEOUT
            )
        except RPCError:
            state = GenerationRunState(generation=generation)
        for task in state.tasks:
            key = (task.status, task.attempts)
            if seen.get(task.package) == key:
                continue
            seen[task.package] = key
            if not quiet:
                why = f" — {task.reason}" if task.reason and task.status != "done" else ""
                console.print(
                    log_line(
                        generation,
                        f"{task.package}: {task.status.value} (attempt {task.attempts}){why}",
                    ),
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
        await asyncio.wait({result}, timeout=2.0)
    return await result


async def _wait(
    client: Client,
    settings: BuildSettings,
    handle: WorkflowHandle[Any, Any],
    generation: str,
    quiet: bool,
    own_worker: bool,
) -> GenerationRunResult:
    from pkgbuilder.runtime.client import has_dedicated_workers

    tq = settings.temporal.task_queue
    try:
        if not own_worker and await has_dedicated_workers(client, settings.temporal.namespace, tq):
            raw = await _follow(handle, generation, quiet)
        else:
            from pkgbuilder.runtime.worker import running_workers

            if not quiet:
                console.print("no dedicated worker polls this task queue: running one in-process")
            async with running_workers(client, settings):
                raw = await _follow(handle, generation, quiet)
    except WorkflowFailureError as e:
        cause = e.cause
        message = getattr(cause, "message", None) or str(cause or e)
        raise UserError(f"The run of {generation} failed: {message}", exit_code=1) from e
    return GenerationRunResult.model_validate(raw) if isinstance(raw, dict) else raw


async def start_or_attach(
    settings: BuildSettings,
    inp: GenerationRunInput | None,
    generation: str,
    quiet: bool,
    detach: bool = False,
    own_worker: bool = False,
) -> GenerationRunResult | None:
    """Attach to the live run of ``generation``; otherwise start ``inp`` (when given).

    ``own_worker`` hosts a worker in-process even when the server lists pollers: after a
    crash it still lists the dead worker's for a while. Returns None when detached. Raises
    UserError when nothing runs and ``inp`` is None.
    """
    async with temporal_client(settings, allow_embedded=not detach) as (client, _):
        handle = await _handle_if_running(client, generation)
        if handle is not None:
            if inp is not None and not quiet:
                console.print(f"a run of {generation} is already in progress: following it")
        elif inp is None:
            raise UserError(f"No run of {generation} is in progress.")
        else:
            handle = await client.start_workflow(
                GenerationRunWorkflow.run,
                inp,
                id=run_workflow_id(generation),
                task_queue=settings.temporal.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                static_summary=f"pkgbuilder generation run {generation}",
            )
            if not quiet:
                console.print(f"started workflow {handle.id}")
        if detach:
            return None
        return await _wait(client, settings, handle, generation, quiet, own_worker)


async def run_is_live_async(settings: BuildSettings, generation: str) -> bool:
    """True when a run of ``generation`` is in progress on the server."""
    if not await server_answers(settings.temporal.address):
        return False
    async with temporal_client(settings) as (client, _):
        return await _handle_if_running(client, generation) is not None


def print_result(result: GenerationRunResult, as_json: bool) -> int:
    """Print the run's outcome; exit code 0 only when nothing failed or was blocked."""
    if as_json:
        print(json.dumps(result.to_json_dict(), indent=2))
    else:
        out.print(
            f"generation {result.generation}: {len(result.done)} generated, "
            f"{len(result.failed)} failed, {len(result.blocked)} blocked, "
            f"{len(result.not_started)} left for a later run",
            highlight=False,
        )
        for name, why in {**result.failed, **result.blocked}.items():
            out.print(f"  {name}: {why}", highlight=False, markup=False)
    return 1 if result.failed or result.blocked else 0


def plan_relative(root: Path, plan: Path | None) -> str | None:
    """``--plan`` as a path relative to the repository (run reads it from the generation
    branch, so it must live in the repository)."""
    if plan is None:
        return None
    full = plan.resolve()
    try:
        return full.relative_to(root.resolve()).as_posix()
    except ValueError:
        raise UserError(
            f"The master plan {plan} is outside the repository {root}; commit it there."
        ) from None
