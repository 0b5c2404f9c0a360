"""Hardening: the embedded Temporal server dies with the command that booted it, even when
that command is SIGKILLed (issue 15 item 11)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import free_port, pkgbuilder_cli
from tests.support.hardening import make_workspace


def _children_running(pid: int, needle: bytes) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if stat[0] not in ("Z", "X") and int(stat[1]) == pid and needle in cmd:
            out.append(int(entry))
    return out


def _with_cmdline(needle: bytes) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and needle in Path(f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
        except OSError:
            continue
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_sigkilled_build_takes_its_embedded_server_with_it(tmp_path: Path) -> None:
    tag = str(random.randint(100000, 999999))
    ws = make_workspace(
        tmp_path / "ws",
        {
            "packages/a": {
                "name": "@e/a",
                "scripts": {"build": f"touch ../../started; sleep 60.{tag}", "test": "true"},
            }
        },
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PKGBUILDER_")}
    port = free_port()
    env.update(
        TEMPORAL_ADDRESS=f"127.0.0.1:{port}",
        PKGBUILDER_HOME=str(tmp_path / "home"),
        PKGBUILDER_HEADLESS="1",
    )
    cli = subprocess.Popen(
        [pkgbuilder_cli(), "build", str(ws)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    servers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (ws / "started").exists():
            servers = servers or _children_running(cli.pid, b"start-dev")
            time.sleep(0.2)
        assert (ws / "started").exists(), "the build never started"
        servers = servers or _children_running(cli.pid, b"start-dev")
        assert len(servers) == 1
        cli.send_signal(signal.SIGKILL)
        cli.wait(10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _running(servers[0]):
            time.sleep(0.1)
        assert not _running(servers[0]), "the embedded server outlived its command"
    finally:
        if cli.poll() is None:
            cli.kill()
        for pid in servers:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
        for pid in _with_cmdline(f"sleep\0{60}.{tag}".encode()):  # the orphaned build step
            os.kill(pid, signal.SIGKILL)
