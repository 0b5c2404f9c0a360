"""The embedded queue: a SQLite file (default ``$PKGBUILDER_HOME/queue.db``) that
``pkgbuilder queue add/list`` edit and the poller reads.

One row per package name. ``queue add`` (re)queues a package; the orchestrator writes back
``published`` or ``failed`` + error; only ``queued`` rows are handed to the poller.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field, ValidationError

from pkgbuilder.models.common import Model
from pkgbuilder.models.orchestrator import (
    FetchQueueResult,
    QueuedPackage,
    SourceReport,
    SourceStatus,
)
from pkgbuilder.queue.sources.base import QueueSourceError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS packages (
    name TEXT PRIMARY KEY,
    priority INTEGER NOT NULL DEFAULT 0,
    dependencies TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL DEFAULT 'queued',
    error TEXT,
    added_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
)
"""
# Errors written back are capped: the table is for people, the full log is in the report.
MAX_ERROR_CHARS = 4000


class QueueItem(Model):
    """A row of the embedded queue (what ``queue list --json`` prints)."""

    name: str
    priority: int = 0
    dependencies: list[str] = Field(default_factory=list)
    status: SourceStatus = SourceStatus.QUEUED
    error: str | None = None
    added_at: datetime
    updated_at: datetime


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SqliteQueue:
    """Synchronous access to the queue file (the CLI uses it directly)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30)
        except (OSError, sqlite3.Error) as e:
            raise QueueSourceError(f"Cannot open the queue database {self.path}: {e}.") from e
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
            with conn:
                yield conn
        except sqlite3.DatabaseError as e:
            raise QueueSourceError(f"The queue database {self.path} failed: {e}.") from e
        finally:
            conn.close()

    def add(self, pkg: QueuedPackage) -> None:
        """Queue ``pkg`` (re-queue it if it was published or failed before)."""
        now = _now()
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO packages (name, priority, dependencies, status, error, added_at,"
                " updated_at) VALUES (?, ?, ?, 'queued', NULL, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET priority=excluded.priority,"
                " dependencies=excluded.dependencies, status='queued', error=NULL,"
                " updated_at=excluded.updated_at",
                (pkg.name, pkg.priority, json.dumps(pkg.dependencies), now, now),
            )

    def remove(self, name: str) -> bool:
        with self._connect() as conn:
            return conn.execute("DELETE FROM packages WHERE name = ?", (name,)).rowcount > 0

    def items(self, status: SourceStatus | None = None) -> list[QueueItem]:
        """Rows, best first (queued by priority, then everything else by name)."""
        sql = "SELECT * FROM packages"
        args: tuple[str, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            args = (status.value,)
        sql += " ORDER BY status != 'queued', priority DESC, added_at, name"
        with self._connect() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [
            QueueItem(
                name=r["name"],
                priority=r["priority"],
                dependencies=json.loads(r["dependencies"]),
                status=SourceStatus(r["status"]),
                error=r["error"],
                added_at=datetime.fromisoformat(r["added_at"]),
                updated_at=datetime.fromisoformat(r["updated_at"]),
            )
            for r in rows
        ]

    def fetch(self, limit: int) -> FetchQueueResult:
        result = FetchQueueResult()
        for item in self.items(SourceStatus.QUEUED)[:limit]:
            try:
                result.packages.append(
                    QueuedPackage(
                        name=item.name,
                        priority=item.priority,
                        dependencies=item.dependencies,
                        source_id=item.name,
                    )
                )
            except ValidationError:
                result.rejected.append(item.name)
        return result

    def report(self, report: SourceReport) -> bool:
        """Write an outcome back; False when the package is no longer in the queue."""
        error = (report.error or "")[:MAX_ERROR_CHARS] or None
        with self._connect() as conn:
            cur = conn.execute(
                "UPDATE packages SET status = ?, error = ?, updated_at = ? WHERE name = ?",
                (report.status.value, error, _now(), report.source_id or report.name),
            )
            return cur.rowcount > 0


class SqliteQueueSource:
    """``QueueSource`` over :class:`SqliteQueue` (file access off the event loop)."""

    def __init__(self, path: Path) -> None:
        self.queue = SqliteQueue(path)

    async def fetch(self, limit: int) -> FetchQueueResult:
        return await asyncio.to_thread(self.queue.fetch, limit)

    async def report(self, report: SourceReport) -> bool:
        return await asyncio.to_thread(self.queue.report, report)
