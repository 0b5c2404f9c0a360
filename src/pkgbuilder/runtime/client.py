"""Client connection (pydantic data converter) and server reachability probe."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time

from temporalio.api.enums.v1 import IndexedValueType, TaskQueueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from pkgbuilder.search_attributes import ALL_KEYS

# Marks the workers a CLI command runs for itself (they stop when the command ends), so that
# another command never counts on them: see ``has_dedicated_workers``.
IN_PROCESS_TAG = "pkgbuilder-in-process"

log = logging.getLogger(__name__)


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host:
        return address, 7233
    try:
        return host, int(port)
    except ValueError:
        return address, 7233


def is_local_address(address: str) -> bool:
    host, _ = split_address(address)
    return host in ("localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0")


async def server_answers(address: str, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections at ``address`` (cheap pre-check)."""
    host, port = split_address(address)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def connect(address: str, namespace: str = "default") -> Client:
    """Connect with the pydantic data converter (every boundary is a pydantic model)."""
    return await Client.connect(
        address, namespace=namespace, data_converter=pydantic_data_converter
    )


# A live worker polls again at least once a minute (a long poll lasts up to 60 s); the
# server lists a poller for minutes after its worker died (e.g. SIGKILL), so only pollers
# seen this recently count as alive.
LIVE_POLLER_SECONDS = 70.0


async def live_pollers(
    client: Client, namespace: str, task_queue: str, max_age: float = LIVE_POLLER_SECONDS
) -> list[str]:
    """Identities of the workers that polled ``task_queue``'s workflow tasks within
    ``max_age`` seconds."""
    resp = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    now = time.time()
    return [
        poller.identity
        for poller in resp.pollers
        if (
            not poller.HasField("last_access_time")
            or now - poller.last_access_time.ToSeconds() <= max_age
        )
        and not _gone_here(poller.identity)
    ]


def _gone_here(identity: str) -> bool:
    """True when ``identity`` (``pid@host …``, see runtime/worker.worker_identity) names a
    process of this host that no longer exists: its poller is stale at once, whatever its
    age (a SIGKILLed worker, a command that ended)."""
    pid_text, _, rest = identity.partition("@")
    host = rest.split(" ", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process: alive
        return False
    return False


async def has_dedicated_workers(client: Client, namespace: str, task_queue: str) -> bool:
    """True when a live worker that outlives any one command polls ``task_queue``.

    The in-process worker of another ``pkgbuilder build`` does not count: it stops when that
    command ends, and a build relying on it would then wait for a worker forever. Nor does
    the stale poller of a worker that died (see ``LIVE_POLLER_SECONDS``)."""
    return any(
        IN_PROCESS_TAG not in identity
        for identity in await live_pollers(client, namespace, task_queue)
    )


async def ensure_search_attributes(client: Client, namespace: str) -> bool:
    """Register pkgbuilder's search attributes if missing; False if the cluster refuses.

    On Temporal Cloud or a locked-down cluster the operator API may be denied; workflows are
    then started without search attributes (they would fail their first task otherwise).
    """
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        missing = {
            k.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
            for k in ALL_KEYS
            if k.name not in existing.custom_attributes
        }
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
            )
        return True
    except Exception as e:  # the operator API is optional: degrade, never fail a build
        log.warning("search attributes unavailable (%s); the UI will not filter by them", e)
        return False
