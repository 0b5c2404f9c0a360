"""``pkgbuilder worker --workspace PATH --fleet`` and ``pkgbuilder build --fleet``: many
checkout-bound workers on many hosts building one suite (see docs/workers.md)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from pkgbuilder.cli.common import console, fail, run_async, temporal_client
from pkgbuilder.config import BuildSettings
from pkgbuilder.models.fleet import FleetSpec, SuiteCheckout
from pkgbuilder.vcs import VcsError
from pkgbuilder.vcs.checkout import checkout_state


def suite_fleet(settings: BuildSettings, workspace: Path) -> FleetSpec:
    """The fleet a ``build --fleet`` suite hands its package steps to: the commit of the
    starting checkout (and whether it is clean). Refuses (exit 2) what a fleet cannot do."""
    if not settings.cache.enabled:
        fail("--fleet needs the build cache (workers move outputs through it): enable cache.")
    if settings.publishing.enabled:
        fail(
            "--fleet cannot publish yet (the packages are built on the workers' checkouts): "
            "set publishing.enabled = false, or build without --fleet."
        )
    if settings.verify.command:
        fail(
            "--fleet cannot run verify.command (the packages are built on the workers' "
            "checkouts): remove it, or build without --fleet."
        )
    try:
        state = checkout_state(workspace, [".pkgbuilder"])
    except VcsError as e:
        fail(f"--fleet needs a git checkout (workers check out its commit): {e}")
    if state.commit is None:
        fail(f"--fleet needs a commit: {workspace} has none yet.")
    return FleetSpec(
        task_queue=settings.temporal.fleet_queue,
        checkout=SuiteCheckout(commit=state.commit, clean=state.clean),
    )


def run_fleet_worker(settings: BuildSettings, workspace: Path, concurrency: int | None) -> None:
    """Serve the fleet task queue from the checkout at ``workspace`` until SIGINT/SIGTERM
    (running steps finish first)."""
    from pkgbuilder.activities.fleet import FleetCheckout
    from pkgbuilder.cache.remote import remote_config
    from pkgbuilder.runtime.fleet import make_fleet_worker

    root = workspace.resolve()
    try:
        state = checkout_state(root, [".pkgbuilder"])
    except VcsError as e:
        fail(f"a fleet worker serves a git checkout: {e}")
    checkout = FleetCheckout(root)
    slots = concurrency or os.cpu_count() or 2

    async def _run() -> None:
        async with temporal_client(settings) as (client, _):
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            async with make_fleet_worker(client, settings, checkout, slots):
                at = state.commit[:12] if state.commit else "no commit"
                console.print(
                    f"fleet worker {checkout.identity} polling "
                    f"'{settings.temporal.fleet_queue}' at {settings.temporal.address} "
                    f"({slots} at a time); checkout at {at}"
                    + ("" if state.clean else " with uncommitted changes"),
                    highlight=False,
                    soft_wrap=True,
                )
                if remote_config(settings.cache.remote) is None:
                    console.print(
                        "warning: no remote cache (REMOTE_CACHE_URL or TURBO_API): this "
                        "worker can restore only outputs its own local cache holds.",
                        highlight=False,
                        soft_wrap=True,
                    )
                await stop.wait()
                console.print("stopping: waiting for the running steps to finish")

    run_async(_run())
