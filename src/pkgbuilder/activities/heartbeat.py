"""Heartbeating for long activities: one interval rule (three beats per heartbeat timeout),
one background beater for async activities and one for blocking (threaded) ones."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Iterator

from temporalio import activity


def heartbeat_interval(default: float = 10.0, cap: float | None = None) -> float:
    """A third of the activity's heartbeat timeout (at least 0.2 s, at most ``cap``);
    ``default`` without a timeout or outside an activity."""
    try:
        timeout = activity.info().heartbeat_timeout
    except RuntimeError:  # not in an activity (unit tests)
        return default
    if not timeout:
        return default
    interval = max(timeout.total_seconds() / 3, 0.2)
    return min(interval, cap) if cap is not None else interval


@contextlib.asynccontextmanager
async def heartbeating(
    detail: str | Callable[[], str], interval: float | None = None
) -> AsyncIterator[None]:
    """Heartbeat in the background of an async activity while the block runs. ``detail``
    may be a callable, read at each beat (e.g. the step running now); outside an activity
    (unit tests) the beats are no-ops."""
    every = interval if interval is not None else heartbeat_interval()

    async def beat() -> None:
        while True:
            with contextlib.suppress(RuntimeError):  # not in an activity
                activity.heartbeat(detail() if callable(detail) else detail)
            await asyncio.sleep(every)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.contextmanager
def heartbeating_thread() -> Iterator[None]:
    """Heartbeat from a side thread while a blocking (sync) activity step runs, so a dead
    worker is noticed after the heartbeat timeout rather than the start-to-close timeout."""
    every = heartbeat_interval()
    stop = threading.Event()
    ctx = contextvars.copy_context()  # the activity context lives in a context variable

    def beat() -> None:
        while not stop.wait(every):
            ctx.run(activity.heartbeat)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
