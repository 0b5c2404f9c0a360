"""The one check pipeline of one package: verify its workspace dependencies were built →
build → test with coverage → quality. Temporal-free; the ``check_package`` activity wraps it
and the package build, a generation's BUILD_VALIDATION and the lifecycle gate all call that.

The rule (the same for every caller; callers say only whether the package is
``model_written`` — a generation wrote it — or ``model_changed`` by a fix attempt):

- **dependencies**: every workspace dependency must have its ``package.json`` and, when it
  declares ``main``, that file (it was built). Else the build step fails (``dependency``).
- **build**: the ``build`` script; none → the step is *skipped* and passes. A failing build
  ends the pipeline (test and quality are not run).
- **test**: ``test:coverage`` when coverage is on and the package has it, else ``test``.
  Tests are *required* when the package is model-written, or when publishing is enabled
  with ``publishing.requireTests``. No test script → the step is skipped; it fails the
  package (a ``test`` failure) only when tests are required. Failing tests fail the package,
  except under ``testing.failOnError = false`` for a package that is not model-written:
  then they are *tolerated* (reported, never silently clean; such a package is not
  published).
- **quality**: the configured ``quality.commands`` of the package's category (or ``"*"``),
  else those of ``quality.defaultScripts`` the package defines; then the category's
  coverage threshold, always. With no command to run the step starts no process (it is
  reported as skipped, carrying only the coverage verdict). Quality runs after failing
  tests too, so one run reports everything wrong.

Per-step budgets: each step's commands share ``timeouts.<step>Seconds`` (a pre/post hook
and the script, or several quality commands, together). Model-written or model-changed
packages run their scripts inside the bubblewrap sandbox (see sandbox.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pkgbuilder.config import BuildSettings
from pkgbuilder.errors import ErrorType
from pkgbuilder.models.build import Failure, FailureType, PackageNode
from pkgbuilder.models.checks import CheckInput, CheckResult
from pkgbuilder.models.steps import StepResult
from pkgbuilder.steps import sandbox
from pkgbuilder.steps.coverage import COVERAGE_FILES, read_coverage
from pkgbuilder.steps.failures import coverage_failures, failure_for, typescript_error_count
from pkgbuilder.steps.scripts import direct_argv, lifecycle, read_scripts, script_env
from pkgbuilder.steps.shell import CommandResult, RunOptions, scrubbed_env
from pkgbuilder.workspace.pm.commands import script_argv, tool_env
from pkgbuilder.workspace.pm.toolchain import tools_cache

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
Confine = Callable[[list[str]], list[str]]


class PipelineError(Exception):
    """The checks cannot run at all (not a failing package): the package directory is
    gone, a program is missing, the sandbox is refused. ``error_type`` is what the activity
    raises (none of them is retryable)."""

    def __init__(self, message: str, error_type: ErrorType) -> None:
        super().__init__(message)
        self.error_type = error_type


# -- the rule, as pure functions ---------------------------------------------------------


def tests_required(settings: BuildSettings, model_written: bool) -> bool:
    """Tests are required for model-written code, and when publishing requires them."""
    publishing = settings.publishing
    return model_written or (publishing.enabled and publishing.require_tests)


def test_verdict(
    test: StepResult, settings: BuildSettings, model_written: bool
) -> tuple[list[Failure], list[Failure]]:
    """(failures, tolerated) of the test step under the rule of the module docstring."""
    if test.skipped:
        if not tests_required(settings, model_written):
            return [], []
        why = (
            "a model-written package must have tests"
            if model_written
            else "publishing.requireTests requires tests"
        )
        return [
            Failure(type=FailureType.TEST, message=f"package.json has no 'test' script ({why})")
        ], []
    if test.ok:
        return [], []
    if settings.testing.fail_on_error or model_written:
        return list(test.failures), []
    return [], list(test.failures)


def test_script(settings: BuildSettings, scripts: Collection[str]) -> str | None:
    """The script the test step runs, None when the package has none."""
    if settings.testing.enable_coverage and "test:coverage" in scripts:
        return "test:coverage"
    return "test" if "test" in scripts else None


def quality_runs(settings: BuildSettings, package: PackageNode) -> list[tuple[str, list[str]]]:
    """What the quality step runs: ``(name, argv)`` for configured commands, ``(script, [])``
    for the package's own default scripts. Empty: only the coverage check."""
    q = settings.quality
    configured = q.commands.get(package.category.value) or q.commands.get("*")
    if configured:
        return [(argv[-1] if argv else "", argv) for argv in configured]
    return [(script, []) for script in q.default_scripts if script in package.scripts]


def lint_score(run_names: list[str], failures: list[Failure]) -> float | None:
    """Percentage of lint runs that passed (None when no run is a lint run)."""
    total = sum(1 for name in run_names if "lint" in name)
    if total == 0:
        return None
    failed = sum(1 for f in failures if f.type is FailureType.LINT)
    return 100.0 * (total - failed) / total


def missing_dependency_outputs(root: Path, deps: list[PackageNode]) -> list[str]:
    """Dependencies whose directory is gone or whose declared ``main`` was not built."""
    problems = []
    for dep in deps:
        dep_dir = root / dep.path
        if not (dep_dir / "package.json").is_file():
            problems.append(f"{dep.name} has no package.json at {dep.path}")
            continue
        entry = _main_entry(dep_dir)
        if entry and not (dep_dir / entry).exists():
            problems.append(f"{dep.name} is not built ({entry} is missing)")
    return problems


def _main_entry(pkg_dir: Path) -> str | None:
    try:
        manifest = json.loads((pkg_dir / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    main = manifest.get("main") if isinstance(manifest, dict) else None
    return main if isinstance(main, str) and main else None


def worker_label() -> str:
    """``pid@host`` of this worker process (what reports name as the builder)."""
    return f"{os.getpid()}@{socket.gethostname()}"


# -- running -----------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


@contextlib.contextmanager
def confinement(
    workspace_root: Path, package: PackageNode, confined: bool, allow_unsandboxed: bool
) -> Iterator[Confine]:
    """How to run the package's commands: as they are, or — for model-written or
    model-changed code — inside the bubblewrap sandbox. Without a working sandbox the
    checks are refused unless ``fix.allowUnsandboxed`` is set.

    Raises:
        PipelineError: no sandbox and unconfined runs are not allowed.
    """
    if not confined:
        yield lambda argv: argv
        return
    try:
        bwrap = sandbox.check_available()
    except sandbox.SandboxUnavailable as e:
        if not allow_unsandboxed:
            raise PipelineError(
                f"Refusing to run the scripts of {package.name} after a model change: {e}; "
                "install bubblewrap, or set fix.allowUnsandboxed = true to run them unconfined.",
                ErrorType.SandboxUnavailable,
            ) from None
        log.warning("running model-changed scripts of %s unconfined: %s", package.name, e)
        yield lambda argv: argv
        return
    root = workspace_root.resolve()
    pkg_dir = (root / package.path).resolve()
    hidden = [Path.home()]
    if os.environ.get("PKGBUILDER_HOME"):
        hidden.append(Path(os.environ["PKGBUILDER_HOME"]).resolve())
    with tempfile.TemporaryDirectory(prefix="pkgbuilder-sandbox-") as tmp:
        visible = [tools_cache()]
        yield lambda argv: sandbox.confined_argv(
            bwrap, argv, pkg_dir, root, Path(tmp), hidden, visible
        )


@dataclass
class _Run:
    """One check's fixed context: where, how confined, with which environment."""

    inp: CheckInput
    root: Path
    pkg_dir: Path
    options: RunOptions
    confine: Confine
    env: dict[str, str]

    def log_path(self, name: str) -> Path | None:
        return Path(self.inp.log_dir) / f"{name}.log" if self.inp.log_dir else None

    async def command(
        self, argv: list[str], deadline: float, log_name: str, what: str
    ) -> CommandResult:
        try:
            return await self.options.run(
                self.confine(argv),
                self.pkg_dir,
                timeout=_remaining(deadline),
                env=self.env,
                log_path=self.log_path(log_name),
            )
        except FileNotFoundError as e:
            raise PipelineError(
                f"{what} '{argv[0]}' is not installed on this worker.", ErrorType.MissingTool
            ) from e

    async def script(self, script: str, deadline: float, log_name: str) -> CommandResult:
        """Run a package.json script with the configured runner (see scripts.py)."""
        inp = self.inp
        if inp.settings.script_runner == "package-manager":
            argv = script_argv(inp.package_manager, script, self.root)
            return await self.command(argv, deadline, log_name, "Program")
        log_path = self.log_path(log_name)
        results: list[CommandResult] = []
        for event, text in lifecycle(read_scripts(self.pkg_dir), script):
            env = script_env(
                self.env, self.pkg_dir, self.root, inp.package.name, inp.package.version, event
            )
            # The script's own output is <step>.log; its pre/post hooks go to their own files.
            step_log = (
                log_path.with_name(f"{log_path.stem}-{event}.log")
                if log_path and event != script
                else log_path
            )
            res = await self.options.run(
                self.confine(direct_argv(text)),
                self.pkg_dir,
                timeout=_remaining(deadline),
                env=env,
                log_path=step_log,
            )
            results.append(res)
            if not res.ok:
                break
        if not results:  # the script vanished from package.json since discovery
            return CommandResult(
                argv=[script],
                cwd=str(self.pkg_dir),
                exit_code=1,
                duration_ms=0,
                output_tail=f"package.json has no '{script}' script",
            )
        last = results[-1]
        return last.model_copy(
            update={
                "duration_ms": sum(r.duration_ms for r in results),
                "output_tail": "".join(f"> {r.argv[-1]}\n{r.output_tail}" for r in results)[
                    -16384:
                ],
            }
        )


def _remaining(deadline: float) -> float:
    """What is left of a step's budget for its next command (at least one second), to a
    tenth of a second: the first command of a step gets its whole limit, and a timeout
    says "timed out after 2 s", not "after 1.99981 s"."""
    return max(1.0, round(deadline - time.monotonic(), 1))


def _script_step(
    step: str, script: str, res: CommandResult, started: datetime, **extra: object
) -> StepResult:
    """The StepResult of one package script run (a typed failure when it failed)."""
    failures = (
        []
        if res.ok
        else [failure_for(script, res.argv, res.output_tail, res.exit_code, res.timeout_seconds)]
    )
    return StepResult.model_validate(
        {
            "step": step,
            "ok": res.ok,
            "duration_ms": res.duration_ms,
            "failures": failures,
            "output_tail": res.output_tail[-4000:],
            "commands": [res.argv],
            "started_at": started,
            "ended_at": _now(),
            **extra,
        }
    )


async def _build(run: _Run) -> StepResult:
    inp = run.inp
    problems = await asyncio.to_thread(missing_dependency_outputs, run.root, inp.dependencies)
    if problems:
        return StepResult(
            step="build",
            ok=False,
            failures=[Failure(type=FailureType.DEPENDENCY, message="; ".join(problems))],
        )
    if "build" not in inp.package.scripts:
        return StepResult(step="build", ok=True, skipped=True, detail="no build script")
    started = _now()
    deadline = time.monotonic() + inp.settings.timeouts.build_seconds
    res = await run.script("build", deadline, "build")
    return _script_step(
        "build",
        "build",
        res,
        started,
        type_script_errors=typescript_error_count(res.output_tail) if not res.ok else 0,
        worker=worker_label(),
    )


async def _test(run: _Run) -> StepResult:
    script = test_script(run.inp.settings, run.inp.package.scripts)
    if script is None:
        return StepResult(step="test", ok=True, skipped=True, detail="no test script")
    # A stale report from an earlier run must never count as this run's coverage (the
    # directory itself stays: runners such as node:test expect it to exist).
    for rel in COVERAGE_FILES:
        (run.pkg_dir / rel).unlink(missing_ok=True)
    started = _now()
    deadline = time.monotonic() + run.inp.settings.timeouts.test_seconds
    res = await run.script(script, deadline, "test")
    cov = await asyncio.to_thread(read_coverage, run.pkg_dir)
    return _script_step(
        "test", script, res, started, coverage_percent=cov.percent, coverage_source=cov.source
    )


async def _quality(run: _Run, test: StepResult) -> StepResult:
    settings = run.inp.settings
    category = run.inp.package.category
    runs = quality_runs(settings, run.inp.package)
    coverage = coverage_failures(
        test.coverage_percent,
        settings.testing.threshold_for(category),
        not test.skipped,
        settings.testing.enable_coverage,
        settings.testing.require_coverage_report,
    )
    if not runs:
        return StepResult(
            step="quality",
            ok=not coverage,
            skipped=True,
            detail="no quality command: the coverage check only",
            failures=coverage,
            coverage_percent=test.coverage_percent,
        )
    started = _now()
    deadline = time.monotonic() + settings.timeouts.quality_seconds
    failures: list[Failure] = []
    commands: list[list[str]] = []
    tails: list[str] = []
    duration = ts_errors = 0
    for i, (name, argv) in enumerate(runs):
        log_name = f"quality-{i}-{name}"
        if argv:
            res = await run.command(argv, deadline, log_name, "Quality command")
        else:
            res = await run.script(name, deadline, log_name)
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
    failures.extend(coverage)
    return StepResult(
        step="quality",
        ok=not failures,
        duration_ms=duration,
        failures=failures,
        output_tail="\n".join(tails)[-4000:],
        commands=commands,
        coverage_percent=test.coverage_percent,
        type_script_errors=ts_errors,
        lint_score=lint_score([name for name, _ in runs], failures),
        started_at=started,
        ended_at=_now(),
    )


def package_dir(inp: CheckInput) -> Path:
    """The package's directory.

    Raises:
        PipelineError: it has no package.json.
    """
    pkg_dir = Path(inp.workspace_root) / inp.package.path
    if not (pkg_dir / "package.json").is_file():
        raise PipelineError(
            f"Package directory {pkg_dir} has no package.json.", ErrorType.WorkspaceError
        )
    return pkg_dir


def _noop(step: str) -> None:
    return None


async def run_checks(
    inp: CheckInput, options: RunOptions | None = None, progress: Progress = _noop
) -> CheckResult:
    """Run the pipeline of the module docstring for one package; ``progress`` is called with
    each step's name as it starts. Never raises for a failing package (the result says
    what failed).

    Raises:
        PipelineError: the checks cannot run (see the class).
    """
    options = options or RunOptions()
    settings = inp.settings
    pkg_dir = package_dir(inp)
    root = Path(inp.workspace_root)
    out = CheckResult(coverage_threshold=settings.testing.threshold_for(inp.package.category))
    confined = inp.model_written or inp.model_changed
    env = await asyncio.to_thread(tool_env, scrubbed_env(), root, inp.package_manager)
    with confinement(root, inp.package, confined, settings.fix.allow_unsandboxed) as confine:
        run = _Run(inp, root, pkg_dir, options, confine, env)
        progress("build")
        build = await _build(run)
        out.steps.append(build)
        out.build_ok = build.ok
        out.built_by = build.worker
        out.type_script_errors = build.type_script_errors
        if not build.ok:
            out.failures = list(build.failures)
            out.failed_step = "build"
            return out
        if inp.build_only:
            return out
        progress("test")
        test = await _test(run)
        out.steps.append(test)
        out.tests_passed = None if test.skipped else test.ok
        out.coverage_percent = test.coverage_percent
        out.failures, out.tolerated = test_verdict(test, settings, inp.model_written)
        if out.failures:
            out.failed_step = "test"
        progress("quality")
        quality = await _quality(run, test)
        out.steps.append(quality)
        out.lint_score = quality.lint_score
        out.type_script_errors += quality.type_script_errors
        out.failures.extend(quality.failures)
        if quality.failures and out.failed_step is None:
            out.failed_step = "quality"
    return out
