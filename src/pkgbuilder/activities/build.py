"""Package-manager shell-out activities: thin adapters over steps/install.py (the workspace
install), steps/pipeline.py (the one check pipeline of a package) and the suite's VERIFY
command.

Each is idempotent (re-running a build/test is harmless; install is guarded by a stamp of
the manifests and a file lock so parallel children install a workspace once).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pkgbuilder.activities.heartbeat import heartbeat_interval, heartbeating
from pkgbuilder.cache import engine
from pkgbuilder.errors import ErrorType
from pkgbuilder.models.cache import CachedSteps, SaveCacheInput
from pkgbuilder.models.checks import CheckCacheResult, CheckInput, CheckResult
from pkgbuilder.models.steps import CommandInput, InstallInput, StepResult
from pkgbuilder.steps.failures import failure_for
from pkgbuilder.steps.install import install
from pkgbuilder.steps.pipeline import PipelineError, run_checks
from pkgbuilder.steps.shell import (
    RunOptions,
    clock_ticks_now,
    kill_step_processes,
    scrubbed_env,
    sweep_step,
)
from pkgbuilder.workspace.pm.commands import tool_env


class _Step:
    """The activity's step identity and heartbeat: the current step's name is the heartbeat
    detail (the UI's pending activity shows "build", "test", "quality")."""

    def __init__(self, name: str) -> None:
        self.name = name
        try:
            info = activity.info()
        except RuntimeError:  # outside an activity (unit tests)
            self.key: str | None = None
            self.retry = False
        else:
            self.key = f"{info.workflow_id}/{info.activity_id}"
            self.retry = info.attempt > 1
        self.since = clock_ticks_now()

    def beat(self, _detail: str = "") -> None:
        with contextlib.suppress(RuntimeError):  # outside an activity (unit tests)
            activity.heartbeat(self.name)

    def beating(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Heartbeat the current step's name in the background while the block runs."""
        return heartbeating(lambda: self.name, heartbeat_interval(default=5.0, cap=5.0))

    def progress(self, name: str) -> None:
        self.name = name
        self.beat()

    async def start(self) -> RunOptions:
        """Run options for the step's commands; on a retry, first kill what the previous
        attempt left running (its worker died), so two attempts never overlap."""
        if self.key and self.retry:
            await asyncio.to_thread(kill_step_processes, self.key)
        return RunOptions(
            heartbeat=self.beat,
            heartbeat_every=heartbeat_interval(default=5.0, cap=5.0),
            step_key=self.key,
            sweep_later=self.key is not None,
        )

    async def end(self) -> None:
        """Kill whatever the step's commands left behind anywhere (their marker)."""
        if self.key:
            await asyncio.to_thread(sweep_step, self.key, self.since)


def _log_path(log_dir: str | None, name: str) -> Path | None:
    return Path(log_dir) / f"{name}.log" if log_dir else None


@activity.defn
async def install_workspace(inp: InstallInput) -> StepResult:
    """Install the workspace's dependencies once (stamp + lock make repeats free)."""
    step = _Step("install")
    try:
        return await install(
            Path(inp.workspace_root),
            inp.package_manager,
            timeout=inp.timeout_seconds,
            options=await step.start(),
            update_lockfile=inp.update_lockfile,
            log_path=_log_path(inp.log_dir, "install"),
        )
    finally:
        await step.end()


@activity.defn
async def check_package(inp: CheckInput) -> CheckResult:
    """The package's checks (steps/pipeline.py) in one activity; with ``cache_hashes`` a
    passing result is stored in the build cache here too (a failing store is a warning)."""
    step = _Step("build")
    try:
        result = await run_checks(inp, await step.start(), step.progress)
    except PipelineError as e:
        raise ApplicationError(str(e), type=e.error_type, non_retryable=True) from None
    finally:
        await step.end()
    # Model-changed sources are not what the hashes describe: never stored.
    if inp.cache_hashes is not None and result.ok and not inp.model_changed:
        step.progress("cache")
        result.cache = await _store(inp, result, step)
    return result


async def _store(inp: CheckInput, result: CheckResult, step: _Step) -> CheckCacheResult:
    build, test = result.step("build"), result.step("test")
    quality = result.step("quality")
    if build is None or (test is None and not inp.build_only):
        return CheckCacheResult()
    assert inp.cache_hashes is not None
    save = SaveCacheInput(
        workspace_root=inp.workspace_root,
        package=inp.package,
        hashes=inp.cache_hashes,
        settings=inp.settings,
        log_dir=inp.log_dir,
        steps=CachedSteps(
            build=build,
            test=test,
            # quality without a command ran nothing: nothing to restore
            quality=quality if quality is not None and not quality.skipped else None,
        ),
    )
    try:
        async with step.beating():
            saved = await asyncio.to_thread(engine.save, save)
    except Exception as e:  # a store that fails never fails a passing package
        activity.logger.warning("could not store %s in the cache: %s", inp.package.name, e)
        return CheckCacheResult(warnings=[f"could not store {inp.package.name} in the cache: {e}"])
    return CheckCacheResult(stored=saved.stored, uploaded=saved.uploaded, warnings=saved.warnings)


@activity.defn
async def run_suite_command(inp: CommandInput) -> StepResult:
    """Run the suite-level VERIFY command in the workspace root."""
    root = Path(inp.workspace_root)
    step = _Step("verify")
    try:
        env = await asyncio.to_thread(tool_env, scrubbed_env(), root, inp.package_manager)
        options = await step.start()
        res = await options.run(
            inp.argv,
            root,
            timeout=inp.timeout_seconds,
            env=env,
            log_path=Path(inp.log_path) if inp.log_path else None,
        )
    except FileNotFoundError as e:
        raise ApplicationError(
            f"Verify command '{inp.argv[0]}' was not found.",
            type=ErrorType.MissingTool,
            non_retryable=True,
        ) from e
    finally:
        await step.end()
    failures = (
        []
        if res.ok
        else [failure_for("verify", res.argv, res.output_tail, res.exit_code, res.timeout_seconds)]
    )
    return StepResult(
        step="verify",
        ok=res.ok,
        duration_ms=res.duration_ms,
        failures=failures,
        output_tail=res.output_tail[-4000:],
        commands=[res.argv],
    )


ACTIVITIES: list[Callable[..., Any]] = [install_workspace, check_package, run_suite_command]
