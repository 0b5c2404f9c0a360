"""Package steps served by a fleet worker (``pkgbuilder worker --workspace PATH --fleet``):
the same activities, bound to the worker's own checkout.

Before the step runs, the worker checks that its checkout is at the suite's commit (and
clean when the suite was started clean) and hashes the package as the suite did; then it
maps the suite's paths onto its checkout, installs the checkout once and restores the
workspace dependencies' outputs from the cache. A checkout that does not match refuses
the task with a retryable ``CheckoutMismatch`` and a short retry delay, so that another
worker takes it (see docs/workers.md). The remote cache's token and the signing key stay
in this worker's environment."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pkgbuilder.activities import build as build_acts
from pkgbuilder.activities.heartbeat import heartbeating
from pkgbuilder.cache.dependencies import DependencyRestorer
from pkgbuilder.cache.engine import hash_packages
from pkgbuilder.cache.sources import WorkingTree
from pkgbuilder.config import BuildSettings
from pkgbuilder.errors import ErrorType, UserError
from pkgbuilder.models.build import Failure, FailureType
from pkgbuilder.models.checks import CheckInput, CheckResult
from pkgbuilder.models.fleet import FleetTask
from pkgbuilder.models.steps import InstallInput, StepResult
from pkgbuilder.reporting.build_reports import reports_root
from pkgbuilder.vcs.checkout import checkout_state, hash_refusal, refusal
from pkgbuilder.workspace.discovery import discover_workspace

# A refused task is offered again after this long: long enough for another worker to
# poll it, short enough that nobody notices the detour.
REFUSAL_RETRY_DELAY = timedelta(seconds=1)
# pkgbuilder's own state in a checkout never makes it dirty.
STATE_DIRS = (".pkgbuilder",)


def fleet_identity(root: Path) -> str:
    """``pid@host:/checkout``: the worker reports name as the builder of what it built."""
    return f"{os.getpid()}@{socket.gethostname()}:{root}"


class FleetCheckout:
    """The checkout one fleet worker serves, and what it restored there."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.identity = fleet_identity(self.root)
        self.restorer = DependencyRestorer(self.root)

    def _excluded(self, settings: BuildSettings) -> list[str]:
        out = list(STATE_DIRS)
        reports = reports_root(self.root, settings.reports_root)
        if reports.is_relative_to(self.root):
            out.append(reports.relative_to(self.root).as_posix())
        return out

    def check(self, task: FleetTask, settings: BuildSettings, package: str) -> None:
        """Refuse (a retryable ``CheckoutMismatch``) when this checkout cannot serve the
        suite: another commit, uncommitted changes, another hash of the package, or a
        checkout git or the workspace discovery cannot read (another worker's may do)."""
        try:
            state = checkout_state(self.root, self._excluded(settings))
            why = refusal(task.checkout.commit, task.checkout.clean, state, str(self.root))
            if why is None and task.build_hash is not None:
                actual = self.build_hash(package, settings)
                why = hash_refusal(package, task.build_hash, actual, str(self.root))
        except UserError as e:  # git failed, or the checkout is no workspace: not this one
            why = f"its checkout {self.root} cannot be used: {e}"
        if why is None:
            return
        # The SDK logs the refusal on this worker (one line, see runtime/logs.py).
        raise ApplicationError(
            f"worker {self.identity} refused {package}: {why}",
            type=ErrorType.CheckoutMismatch,
            next_retry_delay=REFUSAL_RETRY_DELAY,
        )

    def build_hash(self, package: str, settings: BuildSettings) -> str:
        """The build hash of ``package`` in this checkout (as the suite computes it)."""
        graph = discover_workspace(self.root, depends_on=settings.graph.depends_on)
        _, hashes = hash_packages(WorkingTree(self.root), graph.packages, settings, [package])
        return hashes[package].build

    def map_path(self, path: str | None, suite_root: str) -> str | None:
        """A path under the suite's workspace root, moved under this checkout."""
        if path is None:
            return None
        p = Path(path)
        if p.is_relative_to(suite_root):
            return str(self.root / p.relative_to(suite_root))
        return path

    def localize(self, inp: CheckInput, task: FleetTask) -> CheckInput:
        """The check's input in this checkout: its paths mapped, and the local cache this
        worker's own (a ``cache.dir`` of the starter's host means nothing here)."""
        cache = inp.settings.cache.model_copy(update={"dir": None})
        return inp.model_copy(
            update={
                "workspace_root": str(self.root),
                "log_dir": self.map_path(inp.log_dir, task.suite_root),
                "settings": inp.settings.model_copy(update={"cache": cache}),
            }
        )

    async def prepare(self, inp: CheckInput) -> tuple[CheckInput, list[Failure]]:
        """Check, map, install once and restore the dependencies' outputs: the input to run
        in this checkout, and the failures that stop the check (empty when it may run)."""
        task = inp.fleet
        if task is None:
            return inp, []
        package = inp.package.name
        await asyncio.to_thread(self.check, task, inp.settings, package)
        local = self.localize(inp, task)
        install = await build_acts.install_workspace(
            InstallInput(
                workspace_root=local.workspace_root,
                package_manager=inp.package_manager,
                timeout_seconds=inp.settings.timeouts.install_seconds,
                log_dir=local.log_dir,
            )
        )
        if not install.ok:
            return local, install.failures
        async with heartbeating(f"restoring the dependencies of {package}"):
            restored = await asyncio.to_thread(
                self.restorer.restore, task.dependencies, local.settings
            )
        for text in restored.warnings:
            activity.logger.warning("%s: %s", package, text)
        if not restored.ok:
            return local, [
                Failure(
                    type=FailureType.DEPENDENCY,
                    message=f"worker {self.identity} cannot build {package}: "
                    + "; ".join(restored.missing)
                    + " (every fleet worker needs the same remote cache)",
                )
            ]
        activity.logger.info(
            "%s: restored %d dependencies in %d ms",
            package,
            len(restored.restored),
            restored.restore_ms,
        )
        return local, []


def _as_fleet_worker(checkout: FleetCheckout, result: CheckResult) -> CheckResult:
    """The result naming this worker (``pid@host:/checkout``) as the builder."""
    steps = [
        s.model_copy(update={"worker": checkout.identity}) if s.worker else s for s in result.steps
    ]
    built_by = checkout.identity if result.built_by else None
    return result.model_copy(update={"steps": steps, "built_by": built_by})


def fleet_activities(checkout: FleetCheckout) -> list[Callable[..., Any]]:
    """The activities a fleet worker hosts on the fleet task queue: ``check_package`` (the
    one check pipeline, with its cache store), run in ``checkout`` after
    :meth:`FleetCheckout.prepare`."""

    @activity.defn(name="check_package")
    async def check_package(inp: CheckInput) -> CheckResult:
        local, failures = await checkout.prepare(inp)
        if failures:
            failed = StepResult(step="build", ok=False, failures=failures)
            return CheckResult(steps=[failed], failures=failures)
        return _as_fleet_worker(checkout, await build_acts.check_package(local))

    return [check_package]
