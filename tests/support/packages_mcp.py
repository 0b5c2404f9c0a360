"""A real packages-API MCP server for the tests: the ``mcp`` SDK's ``MCPServer`` served over
streamable HTTP by uvicorn on a free loopback port, bearer tokens checked by the SDK's auth
middleware. It serves the seed's two tools and records every call it receives."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer


@dataclass
class PackagesApi:
    """The server's data: the build queue it hands out and what it was told."""

    token: str
    queue: list[dict[str, Any]] = field(default_factory=list)
    queue_requests: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    tokens_seen: list[str] = field(default_factory=list)
    url: str = ""

    def updates_for(self, package_id: str) -> list[dict[str, Any]]:
        return [u for u in self.updates if u["id"] == package_id]


class _StaticTokens:
    def __init__(self, api: PackagesApi) -> None:
        self.api = api

    async def verify_token(self, token: str) -> AccessToken | None:
        self.api.tokens_seen.append(token)
        if token != self.api.token:
            return None
        return AccessToken(token=token, client_id="pkgbuilder", scopes=[])


def _server(api: PackagesApi, base: str) -> MCPServer:
    server = MCPServer(
        "packages-api",
        token_verifier=_StaticTokens(api),
        auth=AuthSettings(
            issuer_url=base, resource_server_url=f"{base}/mcp", validate_token_resource=False
        ),
        log_level="WARNING",
    )

    @server.tool()
    def packages_get_build_queue(
        limit: int, filters: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Packages ready to build, best first."""
        api.queue_requests.append({"limit": limit, "filters": filters})
        ready = [p for p in api.queue if p.get("status", "ready") == "ready"]
        return {"packages": ready[:limit]}

    @server.tool()
    def packages_update(id: str, data: dict[str, Any]) -> str:
        """Record a build outcome."""
        if not any(p["id"] == id for p in api.queue):
            raise ValueError(f"unknown package id {id}")
        api.updates.append({"id": id, "data": data})
        for p in api.queue:
            if p["id"] == id:
                p["status"] = data.get("status", p.get("status"))
        return "ok"

    return server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def packages_mcp_server(token: str) -> AsyncIterator[PackagesApi]:
    """Serve the packages API until the block ends; ``api.url`` is its MCP endpoint."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    api = PackagesApi(token=token, url=f"{base}/mcp")
    app = _server(api, base).streamable_http_app()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("the test MCP server did not start")
        yield api
    finally:
        server.should_exit = True
        await task
