"""Test doubles for the orchestrator tests: a same-named ``PackageBuildWorkflow`` whose
behaviour the test scripts through an activity (real npm builds would make every test take
minutes), and a tiny npm workspace writer.

Only the child build is replaced; the orchestrator, the poller, the queue sources and the
activities under test are the real ones. The fake honours the real child's contract: it
returns a ``PackageBuildResult`` and signals ``build_finished`` to ``notify_workflow_id``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from pkgbuilder.models.build import (
    PackageBuildInput,
    PackageBuildReport,
    PackageBuildResult,
    PackageStatus,
)
from pkgbuilder.models.common import Model
from pkgbuilder.workflows.build_notice import notify_orchestrator


class FakeBuildCall(Model):
    name: str
    child_workflow_id: str


class FakeBuildPlan(Model):
    success: bool = True
    error: str | None = None
    hold: bool = False  # wait for the `release` signal before finishing


@workflow.defn(name="PackageBuildWorkflow")
class FakePackageBuildWorkflow:
    """Stands in for the real child; asks the test's script what to do."""

    def __init__(self) -> None:
        self.released = False

    @workflow.signal
    def release(self) -> None:
        self.released = True

    @workflow.run
    async def run(self, inp: PackageBuildInput) -> PackageBuildResult:
        plan: FakeBuildPlan = await workflow.execute_activity(
            "fake_build_plan",
            FakeBuildCall(name=inp.package.name, child_workflow_id=workflow.info().workflow_id),
            start_to_close_timeout=timedelta(seconds=30),
            result_type=FakeBuildPlan,
        )
        if plan.hold:
            await workflow.wait_condition(lambda: self.released)
        status = PackageStatus.SUCCESS if plan.success else PackageStatus.FAILED
        result = PackageBuildResult(
            package_name=inp.package.name,
            success=plan.success,
            status=status,
            error=plan.error,
            report=PackageBuildReport(package_name=inp.package.name, status=status),
        )
        if inp.notify_workflow_id:
            await notify_orchestrator(inp.notify_workflow_id, result)
        return result


class BuildScript:
    """What each fake build does, and a record of every build started."""

    def __init__(self) -> None:
        self.fail_first: dict[str, int] = {}  # name -> how many first attempts fail
        self.hold: set[str] = set()
        self.hold_all = False
        self.calls: list[FakeBuildCall] = []

    def attempts(self, name: str) -> int:
        return sum(1 for c in self.calls if c.name == name)

    def started(self) -> list[str]:
        return [c.name for c in self.calls]

    @activity.defn(name="fake_build_plan")
    async def plan(self, call: FakeBuildCall) -> FakeBuildPlan:
        # Activities may be retried: record each child once.
        if all(c.child_workflow_id != call.child_workflow_id for c in self.calls):
            self.calls.append(call)
        failing = self.attempts(call.name) <= self.fail_first.get(call.name, 0)
        return FakeBuildPlan(
            success=not failing,
            error=f"build: scripted failure of {call.name}" if failing else None,
            hold=self.hold_all or call.name in self.hold,
        )


def write_workspace(root: Path, packages: dict[str, list[str]]) -> Path:
    """An npm workspace with one package per name (``{name: [workspace deps]}``)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text(
        json.dumps({"name": "fake-root", "private": True, "workspaces": ["packages/*"]})
    )
    for name, deps in packages.items():
        d = root / "packages" / name.split("/")[-1]
        d.mkdir(parents=True, exist_ok=True)
        (d / "package.json").write_text(
            json.dumps(
                {
                    "name": name,
                    "version": "1.0.0",
                    "dependencies": {dep: "1.0.0" for dep in deps},
                }
            )
        )
    return root


@asynccontextmanager
async def orchestrator_worker(
    client: Client, task_queue: str, script: BuildScript, **kwargs: Any
) -> AsyncIterator[Worker]:
    """A worker with the real orchestrator, poller and queue activities, the fake child."""
    from pkgbuilder.activities import queue as queue_acts
    from pkgbuilder.workflows.orchestrator import ContinuousBuilderWorkflow
    from pkgbuilder.workflows.poller import PackageQueuePollerWorkflow

    with ThreadPoolExecutor(8) as pool:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[
                ContinuousBuilderWorkflow,
                PackageQueuePollerWorkflow,
                FakePackageBuildWorkflow,
            ],
            activities=[*queue_acts.ACTIVITIES, script.plan],
            activity_executor=pool,
            **kwargs,
        ) as worker:
            yield worker


async def wait_for(predicate: Any, what: str, timeout: float = 60.0, interval: float = 0.1) -> Any:
    """Poll ``predicate`` (sync or async) until truthy; fail naming ``what``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


def unique_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def release_all(client: Client, ids: list[str]) -> None:
    """Let held fake builds finish (a child the orchestrator lists as active may still be
    starting: retry until it exists)."""
    for wid in ids:
        handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(wid)
        for _ in range(100):
            try:
                await handle.signal("release")
                break
            except RPCError as e:
                if e.status is not RPCStatusCode.NOT_FOUND:
                    raise
                await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"build {wid} never started")
