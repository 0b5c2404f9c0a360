"""GenerationRunWorkflow: generate the master plan's missing packages inside a generation.

For every package that needs generating (no directory on the generation branch, e.g. chosen
with ``--regenerate``), in dependency order and up to ``parallel`` at once, a task:

1. gets a fresh task branch ``task/<generation>-<slug>`` in its own worktree;
2. runs a TurnBasedGenerationWorkflow child *in that worktree* (committing on the task
   branch, never merging: pkgbuilder owns git, not the model) under a time limit;
3. passes the gate — the workspace installs, the package and its workspace dependencies
   build, its tests pass — in that worktree;
4. is merged into the generation branch (only files under its own package directory), and
   its worktree and branch are removed.

A failed attempt is retried from scratch up to ``max_task_attempts``; then the task is
recorded *failed* with its reason (its branch kept for inspection) and its dependents
*blocked*. Every transition is written to the generation record, so `resume` after a crash
knows what was pending or stuck.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ChildWorkflowError,
    FailureError,
    TimeoutError,
    is_cancelled_exception,
)

from pkgbuilder.workflows.policies import (
    FILE_TIMEOUT,
    GIT_RETRY,
    GIT_TIMEOUT,
    PACKAGE_CACHE_TIMEOUT,
    child_timeout,
    heartbeat_timeout,
)

with workflow.unsafe.imports_passed_through():
    from pkgbuilder.activities import build as build_acts
    from pkgbuilder.activities import cache as cache_acts
    from pkgbuilder.activities import lifecycle as acts
    from pkgbuilder.lifecycle.naming import log_line
    from pkgbuilder.models.build import PackageNode, WorkspaceGraph
    from pkgbuilder.models.cache import (
        PackageHashes,
        ResolveCacheInput,
        ResolveCacheResult,
    )
    from pkgbuilder.models.checks import CheckInput
    from pkgbuilder.models.lifecycle import (
        DescribeTaskInput,
        GenerationLogInput,
        GenerationRunInput,
        GenerationRunResult,
        GenerationRunState,
        MergeTaskInput,
        MergeTaskResult,
        PlanTasksInput,
        PlanTasksResult,
        RecordTaskInput,
        RemoveTaskInput,
        TaskRecord,
        TaskRef,
        TaskStatus,
        TaskWorktree,
    )
    from pkgbuilder.models.session import GenerationResult, TurnBasedGenerationInput
    from pkgbuilder.models.steps import InstallInput
    from pkgbuilder.session.state import session_id_at
    from pkgbuilder.workflows.common import run_check, run_shell_step
    from pkgbuilder.workspace.graph import transitive_dependents

TURN_BASED_WORKFLOW = "TurnBasedGenerationWorkflow"


class AttemptFailed(Exception):
    """One attempt of a task failed; the message is the reason recorded for it."""


def _reason(err: BaseException) -> str:
    """The innermost message of an activity/child failure (what the user needs to read)."""
    cause: BaseException = err
    outer: BaseException = err
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause is not None:
        outer, cause = cause, cause.cause
    if isinstance(cause, TimeoutError):
        if isinstance(outer, ChildWorkflowError):
            return "the task's time limit was exceeded"
        what = outer.activity_type if isinstance(outer, ActivityError) else "a step"
        return f"{what} timed out ({cause.type.name.lower() if cause.type else 'timeout'})"
    if isinstance(cause, FailureError) and cause.message:
        return cause.message
    return str(cause) or type(cause).__name__


@workflow.defn
class GenerationRunWorkflow:
    @workflow.init
    def __init__(self, inp: GenerationRunInput) -> None:
        self._inp = inp
        self._tasks: dict[str, TaskRecord] = {}
        self._active: list[str] = []
        self._finished = False
        self._last_session_ms = 0

    @workflow.query
    def get_state(self) -> GenerationRunState:
        """Tasks of this run with their status, and the packages in progress."""
        return GenerationRunState(
            generation=self._inp.generation,
            tasks=list(self._tasks.values()),
            active=list(self._active),
            finished=self._finished,
        )

    @workflow.run
    async def run(self, inp: GenerationRunInput) -> GenerationRunResult:
        planned: PlanTasksResult = await self._git(
            acts.plan_generation_tasks,
            PlanTasksInput(
                repo=inp.repo,
                home=inp.home,
                generation=inp.generation,
                plan_path=inp.plan_path,
                retry_failed=inp.retry_failed,
            ),
        )
        self._tasks = {t.package: t for t in planned.tasks}
        self._plan_path = planned.plan_path
        order = [t.package for t in planned.tasks]
        # Tasks a previous run left pending go first (resume finishes them before new ones).
        was_pending = {t.package for t in planned.tasks if t.attempts > 0}
        for task in planned.tasks:  # failed in an earlier run and not retried
            if task.status == TaskStatus.FAILED:
                await self._block_dependents(task.package)
        todo = [p for p in order if self._tasks[p].status == TaskStatus.PENDING]
        await self._log(f"run: {len(todo)} task(s) to generate, up to {inp.parallel} at once")
        started = 0
        running: dict[asyncio.Task[None], str] = {}
        while True:
            ready = [
                p
                for p in order
                if self._tasks[p].status == TaskStatus.PENDING
                and p not in self._active
                and all(
                    self._tasks[d].status == TaskStatus.DONE
                    for d in self._tasks[p].dependencies
                    if d in self._tasks
                )
            ]
            ready.sort(key=lambda p: (p not in was_pending, order.index(p)))
            while (
                ready
                and len(running) < inp.parallel
                and (inp.max_packages is None or started < inp.max_packages)
            ):
                name = ready.pop(0)
                started += 1
                self._active.append(name)
                running[asyncio.create_task(self._run_task(name))] = name
            if not running:
                break
            done, _ = await workflow.wait(list(running), return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                name = running.pop(fut)
                self._active.remove(name)
                error = None if fut.cancelled() else fut.exception()
                if error is not None and self._tasks[name].status != TaskStatus.FAILED:
                    # Only bookkeeping raises out of a task (e.g. the record vanished).
                    self._tasks[name].status = TaskStatus.FAILED
                    self._tasks[name].reason = f"could not record the task: {_reason(error)}"
                if self._tasks[name].status == TaskStatus.FAILED:
                    await self._block_dependents(name)
        self._finished = True
        return self._result()

    # -- one task -----------------------------------------------------------------------

    async def _run_task(self, name: str) -> None:
        task = self._tasks[name]
        reason = "not attempted"
        for _ in range(self._inp.max_task_attempts):
            task.status = TaskStatus.IN_PROGRESS
            task.attempts += 1
            task.reason = None
            task.started_at = workflow.now()
            await self._record(task)
            try:
                await self._attempt(task)
                return
            except AttemptFailed as e:
                reason = str(e)
            except (ActivityError, ChildWorkflowError) as e:
                reason = _reason(e)
            task.reason = reason
            await self._log(f"task {name}: attempt {task.attempts} failed: {reason}")
        # Out of attempts: keep the branch for inspection, drop the worktree.
        await self._remove(task, keep_branch=True)
        task.status = TaskStatus.FAILED
        task.reason = reason
        task.worktree = None
        task.finished_at = workflow.now()
        await self._record(task)

    async def _attempt(self, task: TaskRecord) -> None:
        inp = self._inp
        ref = self._ref(task)
        # Every attempt starts from the generation branch's tip (dependencies merged).
        await self._remove(task, keep_branch=False)
        wt: TaskWorktree = await self._git(acts.create_task_worktree, ref)
        task.branch, task.worktree = wt.branch, wt.worktree
        task.workflow_id = f"{inp.generation}-{task.slug}-{task.attempts}"
        await self._record(task)
        if not task.plan_path:
            raise AttemptFailed(
                f"no package plan for {task.package} (expected plans/packages/"
                f"{task.category.value}/<name>.md)"
            )
        result: GenerationResult = await workflow.execute_child_workflow(
            TURN_BASED_WORKFLOW,
            self._child_input(task, wt),
            id=task.workflow_id,
            result_type=GenerationResult,
            execution_timeout=child_timeout(inp.task_timeout_seconds),
            static_summary=f"{task.package} in {inp.generation}",
        )
        if result.status.value != "completed" or result.error:
            raise AttemptFailed(f"generation {result.status.value}: {result.error or 'no detail'}")
        await self._gate(task, wt)
        merged: MergeTaskResult = await self._git(
            acts.merge_generation_task, MergeTaskInput(task=ref, package_path=task.path)
        )
        task.status = TaskStatus.DONE
        task.merge_commit = merged.merge_commit
        task.worktree = None
        task.finished_at = workflow.now()
        await self._record(task)

    def _child_input(self, task: TaskRecord, wt: TaskWorktree) -> TurnBasedGenerationInput:
        # Session ids are gen-<ms>; parallel tasks start in the same instant, so keep them
        # strictly increasing.
        now_ms = int(workflow.now().timestamp() * 1000)
        self._last_session_ms = max(now_ms, self._last_session_ms + 1)
        assert task.plan_path is not None
        return TurnBasedGenerationInput(
            session_id=session_id_at(self._last_session_ms),
            package_name=task.package,
            package_path=task.path,
            plan_path=task.plan_path,
            category=task.category,
            workspace_root=wt.worktree,
            state_dir=f"{self._inp.home}/generations/{self._inp.generation}/state/{task.slug}",
            config=self._inp.config,
            base_branch=self._inp.generation,
            branch=wt.branch,
            merge=False,
            dependencies=list(task.dependencies),
        )

    async def _gate(self, task: TaskRecord, wt: TaskWorktree) -> None:
        """In the worktree: a passing install, the dependencies built, then the package's
        whole check pipeline (build, test, quality; model-written rules)."""
        t = self._inp.config.timeouts
        graph: WorkspaceGraph = await self._git(
            acts.describe_task_package,
            DescribeTaskInput(
                worktree=wt.worktree,
                package=task.package,
                path=task.path,
                plan_path=self._plan_path,
            ),
        )
        log_dir = (
            f"{self._inp.home}/generations/{self._inp.generation}/logs/{task.slug}-{task.attempts}"
        )
        install = await run_shell_step(
            build_acts.install_workspace,
            InstallInput(
                workspace_root=wt.worktree,
                package_manager=graph.package_manager,
                timeout_seconds=t.install_seconds,
                log_dir=log_dir,
            ),
            t.install_seconds,
            t.heartbeat_seconds,
        )
        if not install.ok:
            detail = install.failures[0].message if install.failures else "failed"
            raise AttemptFailed(f"gate: install failed ({detail})")
        restored, hashes = await self._restore_builds(wt, graph, log_dir)
        # The workspace dependencies are built first (build step only) unless the cache
        # restored them; then the task's own package gets the whole check pipeline (build,
        # test, quality: steps/pipeline.py). Passing builds are stored in the shared cache.
        for node in graph.packages:
            if node.name == task.package or node.name in restored:
                continue
            await self._check_package(node, graph, wt, log_dir, hashes.get(node.name), True)
        own = graph.by_name()[task.package]
        await self._check_package(own, graph, wt, log_dir, hashes.get(own.name), False)

    def _cache_settings(self) -> Any:
        """The run's settings with the cache in the pkgbuilder home (task worktrees would
        otherwise each get a cache of their own), unless cache.dir names one."""
        config = self._inp.config
        if config.cache.dir:
            return config
        cache = config.cache.model_copy(update={"dir": f"{self._inp.home}/cache"})
        return config.model_copy(update={"cache": cache})

    async def _restore_builds(
        self, wt: TaskWorktree, graph: WorkspaceGraph, log_dir: str
    ) -> tuple[set[str], dict[str, PackageHashes]]:
        """Restore every build of the gate that the build cache holds (one activity); a
        cache that cannot be used means building everything, never a failed gate."""
        if not self._inp.config.cache.enabled:
            return set(), {}
        try:
            res: ResolveCacheResult = await workflow.execute_activity(
                cache_acts.resolve_cache,
                ResolveCacheInput(
                    workspace_root=wt.worktree,
                    packages=graph.packages,
                    names=[p.name for p in graph.packages],
                    package_manager=graph.package_manager,
                    settings=self._cache_settings(),
                    build_id="",
                    log_root=None,
                    build_only=True,
                ),
                start_to_close_timeout=PACKAGE_CACHE_TIMEOUT,
                heartbeat_timeout=heartbeat_timeout(self._inp.config.timeouts.heartbeat_seconds),
                retry_policy=GIT_RETRY,
            )
        except ActivityError as e:
            if is_cancelled_exception(e):
                raise
            return set(), {}
        return (
            {lk.package for lk in res.lookups if lk.hit},
            {lk.package: lk.hashes for lk in res.lookups},
        )

    async def _check_package(
        self,
        node: PackageNode,
        graph: WorkspaceGraph,
        wt: TaskWorktree,
        log_dir: str,
        hashes: PackageHashes | None,
        build_only: bool,
    ) -> None:
        by_name = graph.by_name()
        result = await run_check(
            CheckInput(
                workspace_root=wt.worktree,
                package=node,
                package_manager=graph.package_manager,
                settings=self._cache_settings(),
                log_dir=log_dir,
                dependencies=[by_name[d] for d in node.dependencies if d in by_name],
                # The task's worktree holds model-written code.
                model_written=True,
                build_only=build_only,
                cache_hashes=hashes,
            )
        )
        if not result.ok:
            detail = result.failures[0].message if result.failures else "failed"
            raise AttemptFailed(f"gate: {result.failed_step} of {node.name} failed ({detail})")

    # -- bookkeeping --------------------------------------------------------------------

    async def _git(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        """A lifecycle activity: heartbeats (a dead worker is noticed quickly), capped retries."""
        return await workflow.execute_activity(
            fn,
            arg,
            start_to_close_timeout=GIT_TIMEOUT,
            retry_policy=GIT_RETRY,
            heartbeat_timeout=heartbeat_timeout(self._inp.config.timeouts.heartbeat_seconds),
        )

    def _ref(self, task: TaskRecord) -> TaskRef:
        return TaskRef(
            repo=self._inp.repo,
            home=self._inp.home,
            generation=self._inp.generation,
            package=task.package,
        )

    async def _remove(self, task: TaskRecord, keep_branch: bool) -> None:
        await self._git(
            acts.remove_generation_task,
            RemoveTaskInput(task=self._ref(task), keep_branch=keep_branch),
        )

    async def _record(self, task: TaskRecord) -> None:
        await self._git(
            acts.record_task_status,
            RecordTaskInput(
                repo=self._inp.repo, home=self._inp.home, generation=self._inp.generation, task=task
            ),
        )

    async def _log(self, message: str) -> None:
        workflow.logger.info(log_line(self._inp.generation, message, workflow.now()))
        await workflow.execute_activity(
            acts.log_generation_event,
            GenerationLogInput(
                home=self._inp.home, generation=self._inp.generation, message=message
            ),
            start_to_close_timeout=FILE_TIMEOUT,
            retry_policy=GIT_RETRY,
        )

    async def _block_dependents(self, failed: str) -> None:
        nodes = [
            PackageNode(name=t.package, path=t.path, dependencies=t.dependencies)
            for t in self._tasks.values()
        ]
        for name in sorted(transitive_dependents(nodes, failed)):
            task = self._tasks[name]
            if task.status == TaskStatus.PENDING:
                task.status = TaskStatus.BLOCKED
                task.reason = f"dependency {failed} failed"
                await self._record(task)

    def _result(self) -> GenerationRunResult:
        out = GenerationRunResult(generation=self._inp.generation)
        for task in self._tasks.values():
            if task.status == TaskStatus.DONE:
                out.done.append(task.package)
            elif task.status == TaskStatus.FAILED:
                out.failed[task.package] = task.reason or "failed"
            elif task.status == TaskStatus.BLOCKED:
                out.blocked[task.package] = task.reason or "blocked"
            else:
                out.not_started.append(task.package)
        return out
