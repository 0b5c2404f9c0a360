"""Helpers shared by CLI commands: error handling, settings, connection."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from temporalio.client import Client
from temporalio.service import RPCError

from pkgbuilder.config import (
    BuildSettings,
    ConfigError,
    load_settings,
    pkgbuilder_home,
    resolve_home,
)
from pkgbuilder.errors import UserError
from pkgbuilder.runtime.client import connect, is_local_address, server_answers, split_address

console = Console(stderr=True)
out = Console()

T = TypeVar("T")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one clear sentence and exit with ``code``."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine, turning user errors into one sentence and a non-zero exit code."""
    try:
        return asyncio.run(coro)
    except UserError as e:  # ConfigError and BinaryNotFound too
        fail(str(e), e.exit_code)
    except RPCError as e:
        fail(f"Temporal refused the request: {e.message}.", 2)
    except KeyboardInterrupt:
        console.print("interrupted; work already done is kept (the workflow is durable).")
        raise typer.Exit(130) from None


def user_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorator for sync commands: user errors end in one sentence, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            fail(str(e), e.exit_code)

    return wrapper


_explicit_home: bool | None = None


def pin_home(start: Path | None) -> Path:
    """Resolve ``$PKGBUILDER_HOME`` for this command from ``start`` (a workspace, or the
    current directory) and export it, so the command's in-process workers and every
    subprocess agree on one home. An explicit ``PKGBUILDER_HOME`` wins."""
    global _explicit_home
    if _explicit_home is None:
        _explicit_home = bool(os.environ.get("PKGBUILDER_HOME"))
    home = resolve_home(start)
    os.environ["PKGBUILDER_HOME"] = str(home)
    return pkgbuilder_home()


def home_is_explicit() -> bool:
    """True when the user set ``PKGBUILDER_HOME`` (rather than ``pin_home`` finding it)."""
    return bool(_explicit_home)


def settings_for(
    workspace: Path | None, config: Path | None = None, overrides: dict[str, Any] | None = None
) -> BuildSettings:
    pin_home(workspace)
    warnings: list[str] = []
    try:
        settings = load_settings(workspace, config, overrides, warnings=warnings)
    except ConfigError as e:  # every command loads its settings here: one sentence, exit 2
        fail(str(e), 2)
    from pkgbuilder.llm.models import deprecated_model_warnings

    for w in [*warnings, *deprecated_model_warnings(settings.llm)]:
        console.print(f"[yellow]warning:[/] {w}")
    return settings


def ui_port_for(settings: BuildSettings) -> int:
    """The Web UI port of a local dev server: ``PKGBUILDER_UI_PORT``, else gRPC port + 1000."""
    _, port = split_address(settings.temporal.address)
    return int(os.environ.get("PKGBUILDER_UI_PORT", str(port + 1000)))


def ui_url(settings: BuildSettings, workflow_id: str | None = None) -> str:
    """The Temporal UI address of a local server (of one workflow when given)."""
    url = f"http://localhost:{ui_port_for(settings)}"
    if workflow_id:
        url += f"/namespaces/{settings.temporal.namespace}/workflows/{workflow_id}"
    return url


@contextlib.asynccontextmanager
async def temporal_client(
    settings: BuildSettings, allow_embedded: bool = False, keep_server: bool = False
) -> AsyncIterator[tuple[Client, bool]]:
    """Connect to ``settings.temporal.address``; with ``allow_embedded``, boot the embedded
    persistent dev server when nothing answers (``keep_server``: leave it running
    afterwards). Yields (client, embedded?)."""
    address = settings.temporal.address
    if allow_embedded and is_local_address(address):
        from pkgbuilder.runtime.server import wait_for_stopping_server

        # An embedded server from the previous command may still be shutting down.
        await wait_for_stopping_server(pkgbuilder_home())
    if await server_answers(address):
        try:
            client = await connect(address, settings.temporal.namespace)
        except RuntimeError as e:
            raise UserError(f"Cannot connect to Temporal at {address}: {e}.") from e
        yield client, False
        return
    if not allow_embedded:
        raise UserError(
            f"No Temporal server answers at {address}; start one with 'pkgbuilder server' "
            "or set TEMPORAL_ADDRESS."
        )
    if not is_local_address(address):
        raise UserError(
            f"No Temporal server answers at {address}; pkgbuilder only boots an embedded "
            "server on a local address."
        )
    from pkgbuilder.runtime.server import embedded_server

    _, port = split_address(address)
    home = pkgbuilder_home()
    ui_port = ui_port_for(settings)
    # The UI port is optional comfort: when it is taken, run headless rather than fail.
    if await server_answers(f"127.0.0.1:{ui_port}", timeout=0.3):
        headless_reason = f"UI port {ui_port} is busy"
    else:
        headless_reason = ""
    headless = bool(headless_reason) or os.environ.get("PKGBUILDER_HEADLESS", "") not in (
        "",
        "0",
        "false",
    )
    console.print(
        f"[cyan]No Temporal server at {address}: booting an embedded one "
        f"(database {home / 'temporal.db'}"
        + ("" if headless else f", UI http://localhost:{ui_port}")
        + ")[/]"
    )
    async with embedded_server(
        port=port,
        db=home / "temporal.db",
        ui=not headless,
        ui_port=None if headless else ui_port,
        namespace=settings.temporal.namespace,
        keep=keep_server,
    ) as client:
        yield client, True
