"""Queue sources: the embedded SQLite queue (real file) and the MCP packages API (a real
``mcp`` SDK server over streamable HTTP with bearer auth)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from pkgbuilder.models.orchestrator import (
    McpSourceSettings,
    QueuedPackage,
    QueueSourceKind,
    QueueSourceSettings,
    SourceReport,
    SourceStatus,
)
from pkgbuilder.queue.sources import QueueSourceError, open_source
from pkgbuilder.queue.sources.mcp_source import McpQueueSource, parse_build_queue
from pkgbuilder.queue.sources.sqlite import MAX_ERROR_CHARS, SqliteQueue, SqliteQueueSource
from tests.support.packages_mcp import PackagesApi, packages_mcp_server

TOKEN = "test-token-3f9a"  # a throwaway value the test server accepts; not a secret


def report(
    name: str, status: SourceStatus, error: str | None = None, source_id: str | None = None
) -> SourceReport:
    return SourceReport(
        key=f"{name}-{status}", name=name, source_id=source_id, status=status, error=error
    )


# -- SQLite ----------------------------------------------------------------------------------


def test_sqlite_queue_orders_by_priority_and_hands_out_only_queued(tmp_path: Path) -> None:
    q = SqliteQueue(tmp_path / "q.db")
    q.add(QueuedPackage(name="@a/low", priority=1))
    q.add(QueuedPackage(name="@a/high", priority=100, dependencies=["@a/low"]))
    q.add(QueuedPackage(name="@a/mid", priority=50))
    q.add(QueuedPackage(name="@a/low", priority=5))  # re-add: one row, new priority
    assert [(p.name, p.priority) for p in q.fetch(10).packages] == [
        ("@a/high", 100),
        ("@a/mid", 50),
        ("@a/low", 5),
    ]
    assert q.fetch(10).packages[0].dependencies == ["@a/low"]
    assert [p.name for p in q.fetch(2).packages] == ["@a/high", "@a/mid"]
    assert q.report(report("@a/high", SourceStatus.PUBLISHED))
    assert q.report(report("@a/mid", SourceStatus.FAILED, "x" * (MAX_ERROR_CHARS + 50)))
    assert [p.name for p in q.fetch(10).packages] == ["@a/low"]
    rows = {i.name: i for i in q.items()}
    assert rows["@a/high"].status is SourceStatus.PUBLISHED and rows["@a/high"].error is None
    assert rows["@a/mid"].status is SourceStatus.FAILED
    assert len(rows["@a/mid"].error or "") == MAX_ERROR_CHARS
    q.add(QueuedPackage(name="@a/mid", priority=7))  # re-queue after a failure
    assert {p.name for p in q.fetch(10).packages} == {"@a/low", "@a/mid"}
    assert q.items()[-1].status is SourceStatus.PUBLISHED  # finished rows sort last
    assert q.remove("@a/low") and not q.remove("@a/low")
    assert not q.report(report("@a/unknown", SourceStatus.PUBLISHED))


def test_sqlite_rows_that_are_not_package_names_are_rejected(tmp_path: Path) -> None:
    q = SqliteQueue(tmp_path / "q.db")
    q.add(QueuedPackage(name="@a/ok"))
    with sqlite3.connect(tmp_path / "q.db") as conn:  # written by something else
        conn.execute(
            "INSERT INTO packages VALUES ('bad name', 9, '[]', 'queued', NULL, "
            "'2025-01-01T00:00:00+00:00', '2025-01-01T00:00:00+00:00')"
        )
    result = q.fetch(10)
    assert [p.name for p in result.packages] == ["@a/ok"]
    assert result.rejected == ["bad name"]


def test_queued_package_names_are_validated() -> None:
    for bad in ("", "   ", "a b", "x" * 215):
        with pytest.raises(ValueError):
            QueuedPackage(name=bad)
    assert QueuedPackage(name="  @a/b ").name == "@a/b"


def test_unreadable_queue_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "q.db"
    bad.write_text("this is not a database" * 100)
    with pytest.raises(QueueSourceError, match="queue database"):
        SqliteQueue(bad).items()


async def test_default_source_is_the_embedded_queue_in_pkgbuilder_home(
    pkgbuilder_home: Path,
) -> None:
    source = open_source(QueueSourceSettings())
    assert isinstance(source, SqliteQueueSource)
    assert source.queue.path == pkgbuilder_home / "queue.db"
    SqliteQueue(pkgbuilder_home / "queue.db").add(QueuedPackage(name="@h/one", priority=3))
    assert [p.name for p in (await source.fetch(5)).packages] == ["@h/one"]
    await source.report(report("@h/one", SourceStatus.PUBLISHED, source_id="@h/one"))
    assert SqliteQueue(pkgbuilder_home / "queue.db").items()[0].status is SourceStatus.PUBLISHED


# -- MCP -------------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def api() -> AsyncIterator[PackagesApi]:
    async with packages_mcp_server(TOKEN) as server:
        yield server


def mcp_settings(
    api: PackagesApi, token_env: str = "PKGBUILDER_TEST_MCP_TOKEN"
) -> QueueSourceSettings:
    return QueueSourceSettings(
        kind=QueueSourceKind.MCP, mcp=McpSourceSettings(url=api.url, token_env=token_env)
    )


async def test_mcp_source_reads_the_build_queue_and_writes_outcomes_back(api: PackagesApi) -> None:
    api.queue[:] = [
        {
            "id": "p1",
            "name": "@m/one",
            "priority": 10,
            "dependencies": ["@m/two"],
            "category": "core",
            "status": "ready",
        },
        {"id": "p2", "name": "@m/two", "priority": 20, "dependencies": []},
        {"id": "p3", "name": "not a name", "priority": 1},
        {"id": "p4", "name": "@m/done", "status": "published"},
    ]
    source = open_source(mcp_settings(api), env={"PKGBUILDER_TEST_MCP_TOKEN": TOKEN})
    result = await source.fetch(50)
    assert [(p.name, p.priority, p.source_id) for p in result.packages] == [
        ("@m/one", 10, "p1"),
        ("@m/two", 20, "p2"),
    ]
    assert result.packages[0].dependencies == ["@m/two"]
    assert result.rejected == ["not a name"]
    assert api.queue_requests[-1] == {"limit": 50, "filters": {"exclude_blocked": True}}
    await source.report(report("@m/one", SourceStatus.PUBLISHED, source_id="p1"))
    await source.report(report("@m/two", SourceStatus.FAILED, "test: 2 failing", "p2"))
    assert api.updates_for("p1") == [{"id": "p1", "data": {"status": "published"}}]
    assert api.updates_for("p2") == [
        {"id": "p2", "data": {"status": "failed", "metadata": {"error": "test: 2 failing"}}}
    ]
    assert set(api.tokens_seen) == {TOKEN}


async def test_mcp_source_with_a_wrong_token_fails_permanently_naming_the_variable(
    api: PackagesApi,
) -> None:
    source = open_source(mcp_settings(api, "MY_TOKEN_VAR"), env={"MY_TOKEN_VAR": "wrong"})
    with pytest.raises(QueueSourceError) as err:
        await source.fetch(5)
    assert err.value.permanent
    assert "$MY_TOKEN_VAR" in str(err.value) and "wrong" not in str(err.value)


async def test_mcp_tool_errors_are_permanent(api: PackagesApi) -> None:
    source = open_source(mcp_settings(api), env={"PKGBUILDER_TEST_MCP_TOKEN": TOKEN})
    with pytest.raises(QueueSourceError, match="refused packages_update") as err:
        await source.report(report("@m/x", SourceStatus.PUBLISHED, source_id="no-such-id"))
    assert err.value.permanent


async def test_unreachable_mcp_server_is_a_retryable_error() -> None:
    source = McpQueueSource(
        McpSourceSettings(url="http://127.0.0.1:9/mcp", timeout_seconds=5),
        "http://127.0.0.1:9/mcp",
        TOKEN,
    )
    with pytest.raises(QueueSourceError, match="Cannot reach") as err:
        await source.fetch(5)
    assert not err.value.permanent


def test_mcp_source_without_a_url_is_a_configuration_error() -> None:
    with pytest.raises(QueueSourceError, match=r"orchestrator\.mcp\.url") as err:
        open_source(QueueSourceSettings(kind=QueueSourceKind.MCP), env={})
    assert err.value.permanent


def test_build_queue_answers_in_either_shape() -> None:
    as_list = parse_build_queue([{"name": "@a/b", "id": 7}])
    assert [(p.name, p.source_id) for p in as_list.packages] == [("@a/b", "7")]
    with pytest.raises(QueueSourceError, match="no 'packages' list"):
        parse_build_queue({"items": []})
    mixed = parse_build_queue({"packages": ["junk", {"name": "@a/c", "priority": None}]})
    assert [(p.name, p.priority) for p in mixed.packages] == [("@a/c", 0)]
    assert len(mixed.rejected) == 1
