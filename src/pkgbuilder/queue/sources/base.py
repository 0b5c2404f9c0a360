"""The one interface every queue source implements, and the factory that picks one."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from pkgbuilder.config import pkgbuilder_home
from pkgbuilder.models.orchestrator import (
    FetchQueueResult,
    QueueSourceKind,
    QueueSourceSettings,
    SourceReport,
)


class QueueSourceError(Exception):
    """The source refused or failed a request.

    ``permanent`` errors (bad configuration, a tool the server rejects, a missing token)
    will not get better by retrying; the others (connection refused, timeouts) may.
    """

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class QueueSource(Protocol):
    """A build queue: lists packages ready to build, records what became of them."""

    async def fetch(self, limit: int) -> FetchQueueResult:
        """Up to ``limit`` packages waiting to be built, best first."""
        ...

    async def report(self, report: SourceReport) -> bool:
        """Record an outcome (``published``, or ``failed`` with its error); idempotent.
        False when the source no longer knows the package."""
        ...


def default_queue_db(env: Mapping[str, str] | None = None) -> Path:
    """``$PKGBUILDER_HOME/queue.db``."""
    return pkgbuilder_home(dict(os.environ) if env is None else dict(env)) / "queue.db"


def open_source(settings: QueueSourceSettings, env: Mapping[str, str] | None = None) -> QueueSource:
    """The source ``settings`` describe; ``env`` supplies the MCP token (default os.environ).

    Raises:
        QueueSourceError: the MCP source has no URL configured (permanent).
    """
    env = os.environ if env is None else env
    if settings.kind is QueueSourceKind.MCP:
        from pkgbuilder.queue.sources.mcp_source import McpQueueSource

        return McpQueueSource.from_settings(settings.mcp, env)
    from pkgbuilder.queue.sources.sqlite import SqliteQueueSource

    path = Path(settings.queue_db).expanduser() if settings.queue_db else default_queue_db(env)
    return SqliteQueueSource(path)
