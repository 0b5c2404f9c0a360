"""Package steps served by a fleet worker (``pkgbuilder worker --workspace PATH --fleet``):
the same activities, bound to the worker's own checkout.

Before the step runs, the worker checks that its checkout is at the suite's commit (and
clean when the suite was started clean), maps the suite's paths onto its checkout,
installs the checkout once and restores the workspace dependencies' outputs from the
cache. A checkout that does not match refuses the task with a retryable
``CheckoutMismatch`` and a short retry delay, so that another worker takes it (see
docs/workers.md). The remote cache's token and the signing key stay in this worker's
environment."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from pkgbuilder.activities import build as build_acts
from pkgbuilder.activities.heartbeat import heartbeating
from pkgbuilder.cache.dependencies import DependencyRestorer
from pkgbuilder.config import BuildSettings
from pkgbuilder.errors import ErrorType
from pkgbuilder.models.build import Failure, FailureType
from pkgbuilder.models.checks import CheckInput, CheckResult
from pkgbuilder.models.fleet import FleetTask
from pkgbuilder.models.steps import InstallInput, StepResult
from pkgbuilder.reporting.build_reports import reports_root
from pkgbuilder.vcs import VcsError
from pkgbuilder.vcs.checkout import checkout_state, refusal

# A refused task is offered again after this long: long enough for another worker to
# poll it, short enough that nobody notices the detour.
REFUSAL_RETRY_DELAY = timedelta(seconds=1)
# pkgbuilder's own state in a checkout never makes it dirty.
STATE_DIRS = (".pkgbuilder",)

StepInput = TypeVar("StepInput", bound=BaseModel)


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
        suite. A checkout that is no git repository is a non-retryable workspace error."""
        try:
            state = checkout_state(self.root, self._excluded(settings))
        except VcsError as e:
            raise ApplicationError(
                f"the fleet worker's workspace {self.root} cannot be read: {e}",
                type=ErrorType.WorkspaceError,
                non_retryable=True,
            ) from e
        why = refusal(task.checkout.commit, task.checkout.clean, state, str(self.root))
        if why is None:
            return
        activity.logger.warning("worker %s refuses %s: %s", self.identity, package, why)
        raise ApplicationError(
            f"worker {self.identity} refused {package}: {why}",
            type=ErrorType.CheckoutMismatch,
            next_retry_delay=REFUSAL_RETRY_DELAY,
        )

    def map_path(self, path: str | None, suite_root: str) -> str | None:
        """A path under the suite's workspace root, moved under this checkout."""
        if path is None:
            return None
        p = Path(path)
        if p.is_relative_to(suite_root):
            return str(self.root / p.relative_to(suite_root))
        return path

    def localize(self, inp: StepInput, task: FleetTask) -> StepInput:
        """The step's input in this checkout: its paths mapped, and the local cache this
        worker's own (a ``cache.dir`` of the starter's host means nothing here)."""
        settings: BuildSettings = getattr(inp, "settings")  # noqa: B009
        local = settings.model_copy(
            update={"cache": settings.cache.model_copy(update={"dir": None})}
        )
        update: dict[str, Any] = {"workspace_root": str(self.root), "settings": local}
        if hasattr(inp, "log_dir"):
            update["log_dir"] = self.map_path(getattr(inp, "log_dir"), task.suite_root)  # noqa: B009
        return inp.model_copy(update=update)

    async def prepare(self, inp: StepInput) -> tuple[StepInput, list[Failure]]:
        """Check, map, install once and restore the dependencies' outputs: the input to run
        in this checkout, and the failures that stop the step (empty when it may run)."""
        task: FleetTask | None = getattr(inp, "fleet", None)
        if task is None:
            return inp, []
        package = getattr(inp, "package").name  # noqa: B009
        settings: BuildSettings = getattr(inp, "settings")  # noqa: B009
        await asyncio.to_thread(self.check, task, settings, package)
        local = self.localize(inp, task)
        t = settings.timeouts
        install = await build_acts.install_workspace(
            InstallInput(
                workspace_root=str(self.root),
                package_manager=getattr(inp, "package_manager"),  # noqa: B009
                timeout_seconds=t.install_seconds,
                log_dir=getattr(local, "log_dir", None),
            )
        )
        if not install.ok:
            return local, install.failures
        async with heartbeating(f"restoring the dependencies of {package}"):
            restored = await asyncio.to_thread(
                self.restorer.restore,
                task.dependencies,
                local.settings,  # type: ignore[attr-defined]
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


def _bound_check(checkout: FleetCheckout) -> Callable[..., Any]:
    """``check_package`` (activities/build.py) under its own name, run in ``checkout``
    after :meth:`FleetCheckout.prepare`; the result names this worker as the builder."""

    async def check_package(inp: CheckInput) -> CheckResult:
        local, failures = await checkout.prepare(inp)
        if failures:
            step = StepResult(step="build", ok=False, failures=failures, worker=checkout.identity)
            return CheckResult(steps=[step], failures=failures, failed_step="build")
        result = await build_acts.check_package(local)
        if result.built_by is None:
            return result
        steps = [
            s.model_copy(update={"worker": checkout.identity}) if s.worker else s
            for s in result.steps
        ]
        return result.model_copy(update={"built_by": checkout.identity, "steps": steps})

    check_package.__doc__ = build_acts.check_package.__doc__
    return activity.defn(name="check_package")(check_package)


def fleet_activities(checkout: FleetCheckout) -> list[Callable[..., Any]]:
    """The activities a fleet worker hosts on the fleet task queue."""
    return [_bound_check(checkout)]
