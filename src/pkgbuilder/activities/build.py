"""Package-manager shell-out activities: install, build, test (+coverage), quality, verify.

Each is idempotent (re-running a build/test is harmless; install is guarded by a stamp of
the manifests and a file lock so parallel children install a workspace once).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pkgbuilder.activities.heartbeat import heartbeat_interval
from pkgbuilder.errors import ErrorType
from pkgbuilder.models.build import Failure, FailureType, PackageNode
from pkgbuilder.models.common import PackageManager
from pkgbuilder.models.steps import (
    CommandInput,
    InstallInput,
    PackageStepInput,
    StepResult,
)
from pkgbuilder.steps import sandbox
from pkgbuilder.steps.coverage import COVERAGE_FILES, read_coverage
from pkgbuilder.steps.failures import coverage_failures, failure_for, typescript_error_count
from pkgbuilder.steps.scripts import direct_argv, lifecycle, read_scripts, script_env
from pkgbuilder.steps.shell import (
    CommandResult,
    clock_ticks_now,
    run_command,
    scrubbed_env,
    sweep_step,
)
from pkgbuilder.util.filelock import file_lock
from pkgbuilder.workspace.discovery import workspace_package_dirs
from pkgbuilder.workspace.pm import (
    Tool,
    ToolError,
    install_fingerprint,
    is_yarn_berry,
    resolve_tool,
)
from pkgbuilder.workspace.pm.toolchain import tools_cache

STAMP_NAME = ".pkgbuilder-install.json"
# Quiet, non-interactive package managers (no telemetry, no prompts, no corepack strictness
# about a packageManager field naming another manager).
INSTALL_ENV = {
    "COREPACK_ENABLE_STRICT": "0",
    "COREPACK_ENABLE_DOWNLOAD_PROMPT": "0",
    "YARN_ENABLE_TELEMETRY": "0",
    "YARN_ENABLE_PROGRESS_BARS": "false",
}


def _heartbeat(detail: str) -> None:
    with contextlib.suppress(RuntimeError):  # outside an activity (unit tests)
        activity.heartbeat(detail)


def _heartbeat_every() -> float:
    return heartbeat_interval(default=5.0, cap=5.0)


def _swept(fn: Callable[[Any], Awaitable[StepResult]]) -> Callable[[Any], Awaitable[StepResult]]:
    """When the step (the activity) ends, however it ends, whatever its commands started
    and left behind anywhere (its ``PKGBUILDER_STEP`` marker) is killed."""

    @functools.wraps(fn)
    async def step(inp: Any) -> StepResult:
        opts = _step_options()
        since = clock_ticks_now()
        try:
            return await fn(inp)
        finally:
            if opts:
                await asyncio.to_thread(sweep_step, opts["step_key"], since)

    return step


def _step_options() -> dict[str, Any]:
    """``run_command``'s step identity across retries (workflow id + activity id); a retry
    first kills what the previous attempt left running (see shell.run_command)."""
    try:
        info = activity.info()
    except RuntimeError:  # outside an activity (unit tests)
        return {}
    return {
        "step_key": f"{info.workflow_id}/{info.activity_id}",
        "kill_previous": info.attempt > 1,
        "sweep_later": True,
    }


_TOOLS: dict[tuple[str, PackageManager], Tool] = {}


def _root_manifest(root: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((root / "package.json").read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def workspace_tool(root: Path, pm: PackageManager) -> Tool:
    """The package manager binary for the workspace (resolved once per worker process).

    Raises:
        ToolError: no usable binary (one sentence).
    """
    key = (str(root.resolve()), pm)
    if key not in _TOOLS:
        _TOOLS[key] = resolve_tool(root, pm, _root_manifest(root))
    return _TOOLS[key]


def pm_argv(pm: PackageManager, *args: str, root: Path | None = None) -> list[str]:
    """argv for the package manager: the workspace's resolved binary when ``root`` is given
    (see pm/toolchain.py), else the one on PATH (corepack for yarn/pnpm when absent)."""
    if root is not None:
        with contextlib.suppress(ToolError):
            return [*workspace_tool(root, pm).argv, *args]
    exe = pm.value
    if shutil.which(exe) is None and pm is not PackageManager.NPM and shutil.which("corepack"):
        return ["corepack", exe, *args]
    return [exe, *args]


async def tool_env(env: dict[str, str], root: Path, pm: PackageManager | None) -> dict[str, str]:
    """``env`` with the workspace's package manager first on ``PATH`` when it came from the
    tool cache, so scripts that call it (``pnpm -r test``, ``yarn build``) find it."""
    if pm is None or pm is PackageManager.NPM:
        return env
    loop = asyncio.get_running_loop()
    try:
        tool = await loop.run_in_executor(None, workspace_tool, root, pm)
    except ToolError:
        return env
    if tool.source != "tool cache":
        return env
    return {**env, "PATH": os.pathsep.join([str(Path(tool.argv[0]).parent), env.get("PATH", "")])}


def install_argv(
    root: Path, pm: PackageManager, update_lockfile: bool = False, tool: Tool | None = None
) -> list[str]:
    """``update_lockfile``: the workspace gained a package (turn-based generation), so a
    frozen install (``npm ci``) would refuse the now stale lockfile."""
    prefix = list(tool.argv) if tool else pm_argv(pm)
    if pm is PackageManager.PNPM:
        frozen = ["--frozen-lockfile"] if (root / "pnpm-lock.yaml").exists() else []
        if update_lockfile:
            frozen = ["--no-frozen-lockfile"]
        return [*prefix, "install", *frozen]
    if pm is PackageManager.YARN:
        if update_lockfile or not (root / "yarn.lock").exists():
            return [*prefix, "install"]
        berry = is_yarn_berry(root, tool.version if tool else None)
        return [*prefix, "install", "--immutable" if berry else "--frozen-lockfile"]
    if update_lockfile:
        return [*prefix, "install", "--no-audit", "--no-fund"]
    if (root / "package-lock.json").exists() or (root / "npm-shrinkwrap.json").exists():
        return [*prefix, "ci", "--no-audit", "--no-fund"]
    return [*prefix, "install", "--no-audit", "--no-fund"]


def script_argv(pm: PackageManager, script: str, root: Path | None = None) -> list[str]:
    return pm_argv(pm, "run", script, root=root)


def manifest_fingerprint(root: Path) -> str:
    """Hash of the files a workspace install reads: root manifest and settings, lockfiles,
    and the package.json of each workspace package (see pm/fingerprint.py)."""
    return install_fingerprint(root, workspace_package_dirs(root))


_ERROR_LINE = re.compile(r"ERR_PNPM_|^npm (?:error|ERR!) |^error |YN0(?!000)\d{3}:")
_BOILERPLATE = re.compile(
    r"A complete log of this run|^code \S+$|^errno |^Usage:|^Options:|^\s*$|^\[|^-|^aliases:|"
    r"^Run \"npm help|^Clean install a project|^npm ci$|^info Visit"
)


def install_failure_reason(tail: str) -> str:
    """The line of an install's output that says why it failed: the first error line of
    npm, pnpm or yarn that is not boilerplate (else the last non-empty line)."""
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    for line in lines:
        if not _ERROR_LINE.search(line):
            continue
        text = re.sub(r"^(?:npm (?:error|ERR!)|error)\s+", "", line).strip()
        if not _BOILERPLATE.search(text):
            return text[:300]
    return lines[-1][:300] if lines else ""


def install_failure_message(tool: Tool, argv: list[str], exit_code: int | None, tail: str) -> str:
    """One sentence: what ran, how it ended and the line that says why."""
    why = install_failure_reason(tail)
    how = f"exit {exit_code}" if exit_code is not None else "timed out"
    return (
        f"Workspace install '{' '.join([tool.manager.value, *argv[len(tool.argv) :]])}' "
        f"({tool.describe()}) failed ({how})" + (f": {why}" if why else ".")
    )


def _log_path(log_dir: str | None, name: str) -> Path | None:
    return Path(log_dir) / f"{name}.log" if log_dir else None


@activity.defn
@_swept
async def install_workspace(inp: InstallInput) -> StepResult:
    """Install the workspace's dependencies once (stamp + lock make repeats free)."""
    root = Path(inp.workspace_root)
    stamp = root / "node_modules" / STAMP_NAME
    lock = root / "node_modules" / ".pkgbuilder-install.lock"
    fingerprint = manifest_fingerprint(root)
    loop = asyncio.get_running_loop()
    # flock blocks: take it in a thread so heartbeats keep flowing meanwhile.
    lock_cm = file_lock(lock)
    await loop.run_in_executor(None, lock_cm.__enter__)
    try:
        if stamp.is_file():
            try:
                if json.loads(stamp.read_text()).get("fingerprint") == fingerprint:
                    return StepResult(
                        step="install", ok=True, skipped=True, detail="workspace already installed"
                    )
            except (OSError, ValueError):
                pass
        try:
            tool = await loop.run_in_executor(None, workspace_tool, root, inp.package_manager)
        except ToolError as e:
            return StepResult(
                step="install",
                ok=False,
                failures=[Failure(type=FailureType.INSTALL, message=str(e))],
            )
        argv = install_argv(root, inp.package_manager, inp.update_lockfile, tool)
        result = await run_command(
            argv,
            root,
            timeout=inp.timeout_seconds,
            env={**scrubbed_env(), **INSTALL_ENV},
            heartbeat=_heartbeat,
            heartbeat_every=_heartbeat_every(),
            **_step_options(),
            log_path=_log_path(inp.log_dir, "install"),
        )
        if not result.ok:
            return StepResult(
                step="install",
                ok=False,
                duration_ms=result.duration_ms,
                output_tail=result.output_tail,
                commands=[argv],
                detail=tool.describe(),
                failures=[
                    Failure(
                        type=FailureType.INSTALL,
                        message=install_failure_message(
                            tool, argv, result.exit_code, result.output_tail
                        ),
                        command=argv,
                        output_tail=result.output_tail[-8000:],
                    )
                ],
            )
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps({"fingerprint": fingerprint}))
        return StepResult(
            step="install",
            ok=True,
            duration_ms=result.duration_ms,
            output_tail=result.output_tail[-2000:],
            commands=[argv],
            detail=tool.describe(),
        )
    finally:
        lock_cm.__exit__(None, None, None)


Confine = Callable[[list[str]], list[str]]


@contextlib.contextmanager
def _confinement(inp: PackageStepInput) -> Iterator[Confine]:
    """How to run the package's commands: as they are, or — once a model answer changed the
    package — inside the bubblewrap sandbox (see sandbox.py). Without a working sandbox the
    step is refused unless ``fix.allowUnsandboxed`` is set."""
    if not inp.model_changed:
        yield lambda argv: argv
        return
    try:
        bwrap = sandbox.check_available()
    except sandbox.SandboxUnavailable as e:
        if not inp.settings.fix.allow_unsandboxed:
            raise ApplicationError(
                f"Refusing to run the scripts of {inp.package.name} after a model change: {e}; "
                "install bubblewrap, or set fix.allowUnsandboxed = true to run them unconfined.",
                type=ErrorType.SandboxUnavailable,
                non_retryable=True,
            ) from None
        activity.logger.warning(
            "running model-changed scripts of %s unconfined: %s", inp.package.name, e
        )
        yield lambda argv: argv
        return
    root = Path(inp.workspace_root).resolve()
    pkg_dir = (root / inp.package.path).resolve()
    hidden = [Path.home()]
    if os.environ.get("PKGBUILDER_HOME"):
        hidden.append(Path(os.environ["PKGBUILDER_HOME"]).resolve())
    with tempfile.TemporaryDirectory(prefix="pkgbuilder-sandbox-") as tmp:
        visible = [tools_cache()]
        yield lambda argv: sandbox.confined_argv(
            bwrap, argv, pkg_dir, root, Path(tmp), hidden, visible
        )


async def _run_script(
    inp: PackageStepInput, script: str, timeout: int, log_name: str
) -> CommandResult:
    """Run a package.json script with the configured runner (see scripts.py)."""
    with _confinement(inp) as confine:
        return await _run_script_as(inp, script, timeout, log_name, confine)


async def _run_script_as(
    inp: PackageStepInput, script: str, timeout: int, log_name: str, confine: Confine
) -> CommandResult:
    pkg_dir = Path(inp.workspace_root) / inp.package.path
    log_path = _log_path(inp.log_dir, log_name)
    if inp.settings.script_runner == "package-manager":
        argv = script_argv(inp.package_manager, script, Path(inp.workspace_root))
        try:
            return await run_command(
                confine(argv),
                pkg_dir,
                timeout=timeout,
                env=await tool_env(scrubbed_env(), Path(inp.workspace_root), inp.package_manager),
                heartbeat=_heartbeat,
                heartbeat_every=_heartbeat_every(),
                **_step_options(),
                log_path=log_path,
            )
        except FileNotFoundError as e:
            raise ApplicationError(
                f"'{argv[0]}' is not installed on this worker.",
                type=ErrorType.MissingTool,
                non_retryable=True,
            ) from e
    steps = lifecycle(read_scripts(pkg_dir), script)
    results: list[CommandResult] = []
    base_env = await tool_env(scrubbed_env(), Path(inp.workspace_root), inp.package_manager)
    for event, command in steps:
        env = script_env(
            base_env,
            pkg_dir,
            Path(inp.workspace_root),
            inp.package.name,
            inp.package.version,
            event,
        )
        # The script's own output is <step>.log; its pre/post hooks go to their own files.
        step_log = (
            log_path.with_name(f"{log_path.stem}-{event}.log")
            if log_path and event != script
            else log_path
        )
        res = await run_command(
            confine(direct_argv(command)),
            pkg_dir,
            timeout=timeout,
            env=env,
            heartbeat=_heartbeat,
            heartbeat_every=_heartbeat_every(),
            **_step_options(),
            log_path=step_log,
        )
        results.append(res)
        if not res.ok:
            break
    if not results:  # the script vanished from package.json since discovery
        return CommandResult(
            argv=[script],
            cwd=str(pkg_dir),
            exit_code=1,
            duration_ms=0,
            output_tail=f"package.json has no '{script}' script",
        )
    last = results[-1]
    return last.model_copy(
        update={
            "duration_ms": sum(r.duration_ms for r in results),
            "output_tail": "".join(f"> {r.argv[-1]}\n{r.output_tail}" for r in results)[-16384:],
        }
    )


def _package_dir(inp: PackageStepInput) -> Path:
    pkg_dir = Path(inp.workspace_root) / inp.package.path
    if not (pkg_dir / "package.json").is_file():
        raise ApplicationError(
            f"Package directory {pkg_dir} has no package.json.",
            type=ErrorType.WorkspaceError,
            non_retryable=True,
        )
    return pkg_dir


def _script_step(step: str, script: str, res: CommandResult, **extra: Any) -> StepResult:
    """The StepResult of one package script run (a typed failure when it failed)."""
    failures = (
        []
        if res.ok
        else [failure_for(script, res.argv, res.output_tail, res.exit_code, res.timeout_seconds)]
    )
    return StepResult(
        step=step,
        ok=res.ok,
        duration_ms=res.duration_ms,
        failures=failures,
        output_tail=res.output_tail[-4000:],
        commands=[res.argv],
        **extra,
    )


@activity.defn
@_swept
async def build_package(inp: PackageStepInput) -> StepResult:
    """Verify the workspace dependencies were built, then run the package's ``build``
    script (skipped when it has none)."""
    _package_dir(inp)
    problems = missing_dependency_outputs(Path(inp.workspace_root), inp.dependencies)
    if problems:
        return StepResult(
            step="build",
            ok=False,
            failures=[Failure(type=FailureType.DEPENDENCY, message="; ".join(problems))],
        )
    if "build" not in inp.package.scripts:
        return StepResult(step="build", ok=True, skipped=True, detail="no build script")
    res = await _run_script(inp, "build", inp.settings.timeouts.build_seconds, "build")
    return _script_step(
        "build",
        "build",
        res,
        type_script_errors=typescript_error_count(res.output_tail) if not res.ok else 0,
        worker=worker_label(),
    )


def worker_label() -> str:
    """``pid@host`` of this worker process (what reports name as the builder)."""
    return f"{os.getpid()}@{socket.gethostname()}"


@activity.defn
@_swept
async def test_package(inp: PackageStepInput) -> StepResult:
    """Run the tests (``test:coverage`` when coverage is on and it exists, else ``test``)
    and read the coverage report the runner wrote."""
    pkg_dir = _package_dir(inp)
    scripts = inp.package.scripts
    script = "test"
    if inp.settings.testing.enable_coverage and "test:coverage" in scripts:
        script = "test:coverage"
    if script not in scripts:
        return StepResult(step="test", ok=True, skipped=True, detail="no test script")
    # A stale report from an earlier run must never count as this run's coverage (the
    # directory itself stays: runners such as node:test expect it to exist).
    for rel in COVERAGE_FILES:
        (pkg_dir / rel).unlink(missing_ok=True)
    res = await _run_script(inp, script, inp.settings.timeouts.test_seconds, "test")
    cov = read_coverage(pkg_dir)
    return _script_step(
        "test", script, res, coverage_percent=cov.percent, coverage_source=cov.source
    )


@activity.defn
@_swept
async def quality_check_package(inp: PackageStepInput) -> StepResult:
    """Configured quality commands (or the package's lint/typecheck scripts) plus the
    category's coverage threshold."""
    pkg_dir = _package_dir(inp)
    settings = inp.settings
    category = inp.package.category
    failures: list[Failure] = []
    commands: list[list[str]] = []
    duration = 0
    tails: list[str] = []
    ts_errors = 0
    configured = settings.quality.commands.get(category.value) or settings.quality.commands.get("*")
    # (name, argv) for configured commands; (script, []) for the package's own scripts
    runs: list[tuple[str, list[str]]] = []
    if configured:
        for argv in configured:
            runs.append((argv[-1] if argv else "", argv))
    else:
        for script in settings.quality.default_scripts:
            if script in inp.package.scripts:
                runs.append((script, []))
    for i, (name, argv) in enumerate(runs):
        if argv:
            try:
                with _confinement(inp) as confine:
                    res = await run_command(
                        confine(argv),
                        pkg_dir,
                        timeout=settings.timeouts.quality_seconds,
                        env=await tool_env(
                            scrubbed_env(), Path(inp.workspace_root), inp.package_manager
                        ),
                        heartbeat=_heartbeat,
                        heartbeat_every=_heartbeat_every(),
                        **_step_options(),
                        log_path=_log_path(inp.log_dir, f"quality-{i}-{name}"),
                    )
            except FileNotFoundError as e:
                raise ApplicationError(
                    f"Quality command '{argv[0]}' is not installed on this worker.",
                    type=ErrorType.MissingTool,
                    non_retryable=True,
                ) from e
        else:
            res = await _run_script(
                inp, name, settings.timeouts.quality_seconds, f"quality-{i}-{name}"
            )
        commands.append(res.argv)
        duration += res.duration_ms
        tails.append(res.output_tail[-2000:])
        if not res.ok:
            failure = failure_for(
                name, res.argv, res.output_tail, res.exit_code, res.timeout_seconds
            )
            failures.append(failure)
            if failure.type is FailureType.TYPESCRIPT:
                ts_errors += max(1, typescript_error_count(res.output_tail))
    cov = inp.coverage_percent
    failures.extend(
        coverage_failures(
            cov,
            settings.testing.threshold_for(category),
            inp.tests_ran,
            settings.testing.enable_coverage,
            settings.testing.require_coverage_report,
        )
    )
    lint_runs = [f for f in failures if f.type is FailureType.LINT]
    lint_total = sum(1 for name, _ in runs if "lint" in name)
    lint_score = None if lint_total == 0 else 100.0 * (lint_total - len(lint_runs)) / lint_total
    return StepResult(
        step="quality",
        ok=not failures,
        duration_ms=duration,
        failures=failures,
        output_tail="\n".join(tails)[-4000:],
        commands=commands,
        coverage_percent=cov,
        type_script_errors=ts_errors,
        lint_score=lint_score,
    )


def _main_entry(pkg_dir: Path) -> str | None:
    try:
        manifest = json.loads((pkg_dir / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    main = manifest.get("main")
    return main if isinstance(main, str) and main else None


def missing_dependency_outputs(root: Path, deps: list[PackageNode]) -> list[str]:
    """Dependencies whose directory is gone or whose declared ``main`` was not built."""
    problems = []
    for dep in deps:
        dep_dir = root / dep.path
        if not (dep_dir / "package.json").is_file():
            problems.append(f"{dep.name} has no package.json at {dep.path}")
            continue
        main = _main_entry(dep_dir)
        if main and not (dep_dir / main).exists():
            problems.append(f"{dep.name} is not built ({main} is missing)")
    return problems


@activity.defn
@_swept
async def run_suite_command(inp: CommandInput) -> StepResult:
    """Run the suite-level VERIFY command in the workspace root."""
    root = Path(inp.workspace_root)
    try:
        res = await run_command(
            inp.argv,
            root,
            timeout=inp.timeout_seconds,
            env=await tool_env(scrubbed_env(), root, inp.package_manager),
            heartbeat=_heartbeat,
            heartbeat_every=_heartbeat_every(),
            **_step_options(),
            log_path=Path(inp.log_path) if inp.log_path else None,
        )
    except FileNotFoundError as e:
        raise ApplicationError(
            f"Verify command '{inp.argv[0]}' was not found.",
            type=ErrorType.MissingTool,
            non_retryable=True,
        ) from e
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


ACTIVITIES: list[Callable[..., Any]] = [
    install_workspace,
    build_package,
    test_package,
    quality_check_package,
    run_suite_command,
]
