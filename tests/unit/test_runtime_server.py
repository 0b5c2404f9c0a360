"""The embedded server's detached shutdown: the next command waits for a server that is
still stopping (it holds the port and the SQLite database), and kills one that hangs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from pkgbuilder.runtime.server import (
    STOPPING_MARKER,
    _is_dev_server,
    _start_ticks,
    wait_for_stopping_server,
)


def _fake_server(seconds: float) -> subprocess.Popen[bytes]:
    # argv carries "start-dev" like the real `temporal server start-dev` (a Python sleeper:
    # `sh -c "sleep N"` may exec sleep and lose its argv)
    sleeper = "import sys, time; time.sleep(float(sys.argv[1]))"
    return subprocess.Popen([sys.executable, "-c", sleeper, str(seconds), "server", "start-dev"])


async def test_waits_for_a_server_that_stops_by_itself(tmp_path: Path) -> None:
    proc = _fake_server(0.6)
    (tmp_path / STOPPING_MARKER).write_text(str(proc.pid))
    assert _is_dev_server(proc.pid)
    started = time.monotonic()
    await wait_for_stopping_server(tmp_path, timeout=10)
    took = time.monotonic() - started  # an exited child is a zombie until reaped: not a server
    proc.wait(timeout=5)
    assert 0.3 < took < 9
    assert not (tmp_path / STOPPING_MARKER).exists()


async def test_kills_a_server_that_does_not_stop(tmp_path: Path) -> None:
    proc = _fake_server(60)
    (tmp_path / STOPPING_MARKER).write_text(str(proc.pid))
    await wait_for_stopping_server(tmp_path, timeout=0.3)
    assert proc.wait(timeout=5) != 0  # SIGKILLed
    assert not (tmp_path / STOPPING_MARKER).exists()


async def test_a_stale_marker_or_reused_pid_is_ignored(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "30"])  # alive, but not a dev server
    try:
        (tmp_path / STOPPING_MARKER).write_text(str(other.pid))
        started = time.monotonic()
        await wait_for_stopping_server(tmp_path, timeout=10)
        assert time.monotonic() - started < 1
        assert other.poll() is None
        server = _fake_server(30)  # a dev server, but not the one the marker names
        try:
            (tmp_path / STOPPING_MARKER).write_text(f"{server.pid} 1")
            await wait_for_stopping_server(tmp_path, timeout=10)
            assert server.poll() is None
            assert _start_ticks(server.pid) not in (None, "1")
        finally:
            server.kill()
            server.wait()
        (tmp_path / STOPPING_MARKER).write_text("not a pid")
        await wait_for_stopping_server(tmp_path)
        await wait_for_stopping_server(tmp_path / "nothing-here")
    finally:
        other.kill()
        other.wait()
