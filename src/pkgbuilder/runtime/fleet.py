"""A fleet worker (``pkgbuilder worker --workspace PATH --fleet``): the package steps of
``build --fleet`` suites, run in the checkout at PATH, on the fleet task queue. It hosts no
workflow and no suite-level activity, so it may run on any host that has a checkout of the
repository (see docs/workers.md)."""

from __future__ import annotations

import concurrent.futures

from temporalio.client import Client
from temporalio.worker import Worker

from pkgbuilder.activities.fleet import FleetCheckout, fleet_activities
from pkgbuilder.config import BuildSettings
from pkgbuilder.runtime.logs import one_line_expected_failures
from pkgbuilder.runtime.worker import WORKER_BUILD_ID
from pkgbuilder.workflows.policies import DRAIN_TIMEOUT


def make_fleet_worker(
    client: Client, settings: BuildSettings, checkout: FleetCheckout, max_concurrent: int
) -> Worker:
    one_line_expected_failures()
    return Worker(
        client,
        task_queue=settings.temporal.fleet_queue,
        identity=checkout.identity,
        build_id=WORKER_BUILD_ID,
        activities=fleet_activities(checkout),
        max_concurrent_activities=max_concurrent,
        activity_executor=concurrent.futures.ThreadPoolExecutor(max_concurrent),
        graceful_shutdown_timeout=DRAIN_TIMEOUT,
    )
