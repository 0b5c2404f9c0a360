"""``pkgbuilder ui``: the Temporal Web UI on this workspace's history, at any time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from pkgbuilder.cli.common import console, fail, settings_for, ui_port_for, ui_url
from pkgbuilder.runtime.client import is_local_address, server_answers, split_address


def _suite_id(build_id: str | None) -> str | None:
    return f"suite-{build_id}" if build_id else None


def _stop(home: Path) -> None:
    """``--stop``: stop the server a ``--keep-server`` build left running."""
    from pkgbuilder.runtime.server import stop_kept_server

    pid = asyncio.run(stop_kept_server(home))
    if pid is None:
        console.print(f"no kept embedded server runs on {home / 'temporal.db'}")
    else:
        console.print(f"stopped the embedded server (pid {pid})")


def _point_at_running(address: str, url: str, build_id: str | None) -> None:
    """A server already answers: say where its UI is."""
    if is_local_address(address):
        console.print(
            f"A Temporal server already runs at {address}: UI {url}",
            highlight=False,
            soft_wrap=True,
        )
    else:
        console.print(
            f"A Temporal server runs at {address}; open its Web UI there "
            f"(workflow {_suite_id(build_id) or 'list'}).",
            highlight=False,
            soft_wrap=True,
        )


def ui(
    build_id: str | None = typer.Argument(None, help="Show this build's suite workflow."),
    workspace: Path = typer.Option(Path("."), help="Workspace whose history to show."),
    stop: bool = typer.Option(
        False, "--stop", help="Stop the server a '--keep-server' build left running."
    ),
) -> None:
    """Serve the Temporal Web UI on this workspace's database (the history of every
    build), in the foreground until Ctrl-C; when a server already runs, say where."""
    from pkgbuilder.runtime.binaries import BinaryNotFound
    from pkgbuilder.runtime.server import dev_server_argv, run_foreground, wait_for_stopping_server

    settings = settings_for(workspace)
    from pkgbuilder.config import pkgbuilder_home

    home = pkgbuilder_home()
    if stop:
        _stop(home)
        return
    address = settings.temporal.address
    url = ui_url(settings, _suite_id(build_id))
    if asyncio.run(server_answers(address)):
        _point_at_running(address, url, build_id)
        return
    if not is_local_address(address):
        fail(
            f"No Temporal server answers at {address}; pkgbuilder only serves a UI "
            "for a local address."
        )
    asyncio.run(wait_for_stopping_server(home))
    _, port = split_address(address)
    db = home / "temporal.db"
    try:
        argv = dev_server_argv(
            port=port,
            ui_port=ui_port_for(settings),
            db=db,
            namespace=settings.temporal.namespace,
        )
    except BinaryNotFound as e:
        fail(str(e))
    console.print(f"starting the Temporal dev server on {db} …", highlight=False, soft_wrap=True)

    def ready() -> None:
        console.print(
            f"Temporal UI {url} on {db} (every build of this workspace); Ctrl-C stops it",
            highlight=False,
            soft_wrap=True,
        )

    raise typer.Exit(
        run_foreground(
            argv,
            quiet_log=home / "temporal-server.log",
            on_ready=(ui_port_for(settings), ready),
        )
    )


def register(app: typer.Typer) -> None:
    app.command()(ui)
