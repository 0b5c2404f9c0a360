"""Hardening: with --json, stdout is exactly one JSON document (issue 15 item 16)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.hardening import make_workspace

# What the Temporal core does from its native threads: write(1, "WARN …") mid-build.
DRIVER = """
import os, sys, threading
from pkgbuilder.cli.app import main
noise = b"WARN temporalio_sdk_core::worker::activities: Activity not found on completion\\n"
for delay in (0.2, 0.5, 0.8):  # all within the build: its build script lasts 2 s
    threading.Timer(delay, lambda: os.write(1, noise)).start()
sys.argv = ["pkgbuilder", *sys.argv[1:]]
main()
"""


@pytest.fixture
def address(temporal_env: WorkflowEnvironment) -> str:
    return temporal_env.client.service_client.config.target_host


def test_json_stdout_survives_native_log_lines(address: str, tmp_path: Path) -> None:
    # The build outlasts the three writes (started after the imports) however fast the CLI
    # gets: a build of a trivial package on a running server can end within 0.8 s.
    slow_build = {"build": 'node -e "setTimeout(() => {}, 2000)"', "test": "true"}
    ws = make_workspace(tmp_path / "ws", {"packages/a": {"name": "@j/a", "scripts": slow_build}})
    env = {k: v for k, v in os.environ.items() if not k.startswith("PKGBUILDER_")}
    env.update(
        TEMPORAL_ADDRESS=address,
        PKGBUILDER_HOME=str(tmp_path / "home"),
        TEMPORAL_TASK_QUEUE=f"tq-{tmp_path.name}",
    )
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, "build", str(ws), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)  # exactly one document, nothing before or after it
    assert data["successful"] == 1
    assert proc.stderr.count("WARN temporalio_sdk_core") == 3
