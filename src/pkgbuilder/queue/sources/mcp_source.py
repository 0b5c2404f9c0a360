"""The packages API as an MCP server (official ``mcp`` SDK, streamable HTTP transport).

Tools (the seed's names, configurable): ``packages_get_build_queue {limit, filters:
{exclude_blocked}}`` returns ``{"packages": [{id, name, priority, dependencies, ...}]}`` (as
structured content or as JSON text); ``packages_update {id, data: {status, metadata:
{error}}}`` records an outcome. The bearer token comes from the environment variable named by
``mcp.tokenEnv`` and is only ever placed in the Authorization header.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx2
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import CallToolResult, TextContent
from pydantic import ValidationError

from pkgbuilder.models.orchestrator import (
    FetchQueueResult,
    McpSourceSettings,
    QueuedPackage,
    SourceReport,
    SourceStatus,
)
from pkgbuilder.queue.sources.base import QueueSourceError

MAX_ERROR_CHARS = 4000


def _first_error(exc: BaseException) -> BaseException:
    """anyio task groups wrap transport errors in exception groups; find the real one."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def parse_build_queue(payload: Any) -> FetchQueueResult:
    """Packages from a ``packages_get_build_queue`` answer (object with ``packages``, or a
    bare list). Invalid items are listed in ``rejected`` instead of failing the poll."""
    items = payload.get("packages") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise QueueSourceError("The build queue answer holds no 'packages' list.", permanent=True)
    result = FetchQueueResult()
    for item in items:
        if not isinstance(item, dict):
            result.rejected.append(repr(item)[:80])
            continue
        try:
            source_id = item.get("id")
            result.packages.append(
                QueuedPackage(
                    name=item.get("name", ""),
                    priority=item.get("priority") or 0,
                    dependencies=item.get("dependencies") or [],
                    source_id=str(source_id) if source_id is not None else None,
                )
            )
        except ValidationError:
            result.rejected.append(str(item.get("name") or item.get("id") or "?")[:80])
    return result


def _payload(result: CallToolResult) -> Any:
    if result.structured_content is not None:
        return result.structured_content
    for block in result.content:
        if isinstance(block, TextContent):
            try:
                return json.loads(block.text)
            except ValueError as e:
                raise QueueSourceError(
                    f"The build queue answer is not JSON: {block.text[:120]!r}.", permanent=True
                ) from e
    raise QueueSourceError("The build queue answer has no content.", permanent=True)


def _text(result: CallToolResult) -> str:
    texts = [b.text for b in result.content if isinstance(b, TextContent)]
    return " ".join(texts)[:300] or "no details"


class McpQueueSource:
    """``QueueSource`` over the packages MCP server; one short session per call (a poll every
    30 minutes and a write-back per build do not justify holding a session open)."""

    def __init__(self, settings: McpSourceSettings, url: str, token: str | None) -> None:
        self.settings = settings
        self.url = url
        self._token = token

    @classmethod
    def from_settings(cls, settings: McpSourceSettings, env: Mapping[str, str]) -> McpQueueSource:
        if not settings.url:
            raise QueueSourceError(
                "orchestrator.mcp.url is not set; configure the packages MCP server URL "
                'or use orchestrator.source = "sqlite".',
                permanent=True,
            )
        return cls(settings, settings.url, env.get(settings.token_env) or None)

    async def _call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else None
        timeout = httpx2.Timeout(self.settings.timeout_seconds)
        # The SDK turns HTTP errors into a generic JSON-RPC error; keep the status codes to
        # tell bad credentials (permanent) from a server having a bad day (retry).
        statuses: list[int] = []

        async def record(response: httpx2.Response) -> None:
            if response.status_code >= 400:
                statuses.append(response.status_code)

        try:
            async with create_mcp_http_client(headers=headers, timeout=timeout) as http:
                http.event_hooks["response"].append(record)
                transport = streamable_http_client(self.url, http_client=http)
                async with Client(
                    transport, read_timeout_seconds=self.settings.timeout_seconds
                ) as client:
                    result = await client.call_tool(tool, arguments)
        except Exception as e:
            raise self._translate(_first_error(e), tool, statuses) from e
        if result.is_error:
            raise QueueSourceError(
                f"The packages MCP server refused {tool}: {_text(result)}", permanent=True
            )
        return result

    def _translate(self, exc: BaseException, tool: str, statuses: list[int]) -> QueueSourceError:
        if isinstance(exc, QueueSourceError):
            return exc
        code = (
            exc.response.status_code
            if isinstance(exc, httpx2.HTTPStatusError)
            else (statuses[0] if statuses else None)
        )
        if code is not None:
            if code in (401, 403):
                return QueueSourceError(
                    f"The packages MCP server at {self.url} refused the credentials "
                    f"(HTTP {code}); check ${self.settings.token_env}.",
                    permanent=True,
                )
            return QueueSourceError(
                f"The packages MCP server at {self.url} answered HTTP {code} to {tool}.",
                permanent=400 <= code < 500 and code not in (408, 429),
            )
        if isinstance(exc, MCPError):
            return QueueSourceError(
                f"The packages MCP server rejected {tool}: {exc.message}.", permanent=True
            )
        # Connection refused, timeouts, broken streams: worth retrying.
        return QueueSourceError(
            f"Cannot reach the packages MCP server at {self.url}: {type(exc).__name__}: {exc}"[:400]
        )

    async def fetch(self, limit: int) -> FetchQueueResult:
        args: dict[str, Any] = {"limit": limit}
        if self.settings.exclude_blocked:
            args["filters"] = {"exclude_blocked": True}
        result = await self._call(self.settings.get_queue_tool, args)
        return parse_build_queue(_payload(result))

    async def report(self, report: SourceReport) -> bool:
        data: dict[str, Any] = {"status": report.status.value}
        if report.status is SourceStatus.FAILED:
            data["metadata"] = {"error": (report.error or "failed")[:MAX_ERROR_CHARS]}
        await self._call(
            self.settings.update_tool, {"id": report.source_id or report.name, "data": data}
        )
        return True
