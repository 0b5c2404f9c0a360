"""The subprocess runner: real processes, secrets scrubbed, timeouts kill the tree."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from pkgbuilder.steps.shell import is_secret_env_name, run_command, scrubbed_env


def test_scrubbed_env_removes_secrets_and_keeps_the_rest() -> None:
    base = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "ANTHROPIC_API_KEY": "sk-ant-SENTINEL",
        "CLAUDE_API_KEY": "x",
        "NPM_TOKEN": "npm_SENTINEL",
        "NODE_AUTH_TOKEN": "y",
        "MY_SERVICE_PASSWORD": "z",
        "npm_config__authToken": "t",
        "npm_config_registry": "http://127.0.0.1:4873/",
    }
    env = scrubbed_env(base)
    assert env["PATH"] == "/usr/bin"
    assert env["npm_config_registry"] == "http://127.0.0.1:4873/"
    for secret in (
        "ANTHROPIC_API_KEY",
        "CLAUDE_API_KEY",
        "NPM_TOKEN",
        "NODE_AUTH_TOKEN",
        "MY_SERVICE_PASSWORD",
        "npm_config__authToken",
    ):
        assert secret not in env
    assert "SENTINEL" not in repr(env)
    assert env["CI"] == "true"


@pytest.mark.parametrize(
    "name", ["GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "X_API_KEY", "PACKAGES_MCP_TOKEN"]
)
def test_secret_names(name: str) -> None:
    assert is_secret_env_name(name)


async def test_child_process_never_sees_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NPM_TOKEN", "npm_SENTINEL_123")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-SENTINEL")
    res = await run_command(
        [sys.executable, "-c", "import os; print(sorted(os.environ))"], tmp_path, timeout=30
    )
    assert res.ok
    assert "NPM_TOKEN" not in res.output_tail
    assert "ANTHROPIC_API_KEY" not in res.output_tail


async def test_nonzero_exit_is_a_result_not_an_exception(tmp_path: Path) -> None:
    res = await run_command(
        [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], tmp_path, timeout=30
    )
    assert not res.ok and res.exit_code == 3
    assert "boom" in res.output_tail


async def test_output_tail_is_bounded_and_full_log_written(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "out.log"
    res = await run_command(
        [sys.executable, "-c", "print('x' * 100); [print(i) for i in range(50000)]"],
        tmp_path,
        timeout=30,
        log_path=log,
        tail_bytes=1024,
    )
    assert res.ok
    assert len(res.output_tail.encode()) <= 1024
    assert res.output_tail.rstrip().endswith("49999")
    assert "49999" in log.read_text() and log.read_text().startswith("x" * 100)


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "grandchild-alive"
    grandchild = f"import time; time.sleep(3); open({str(marker)!r}, 'w').write('x')"
    script = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {grandchild!r}])\n"
        "time.sleep(60)\n"
    )
    res = await run_command([sys.executable, "-c", script], tmp_path, timeout=1)
    assert res.timed_out and not res.ok
    assert "timed out" in res.output_tail
    await asyncio.sleep(3.5)
    assert not marker.exists(), "the grandchild survived the timeout"


async def test_cancellation_kills_the_process(tmp_path: Path) -> None:
    marker = tmp_path / "finished"
    task = asyncio.create_task(
        run_command(
            [sys.executable, "-c", f"import time; time.sleep(2); open({str(marker)!r},'w')"],
            tmp_path,
            timeout=30,
        )
    )
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(2.5)
    assert not marker.exists()


async def test_heartbeats_while_running(tmp_path: Path) -> None:
    beats: list[str] = []
    res = await run_command(
        [sys.executable, "-c", "import time; time.sleep(1.2)"],
        tmp_path,
        timeout=30,
        heartbeat=beats.append,
        heartbeat_every=0.2,
    )
    assert res.ok
    assert len(beats) >= 2


async def test_a_string_argv_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        await run_command("echo hi", tmp_path, timeout=5)  # type: ignore[arg-type]


async def test_colour_is_not_forced_off_and_tails_carry_no_ansi_codes(tmp_path: Path) -> None:
    """A test suite that snapshots its colours (jest --color) passes as in its own CI; the
    tail in reports and prompts is plain text, the log keeps the raw bytes."""
    env = scrubbed_env({"PATH": "/usr/bin:/bin"})
    assert "NO_COLOR" not in env and "FORCE_COLOR" not in env
    log = tmp_path / "out.log"
    res = await run_command(
        [sys.executable, "-c", "print('\\x1b[31mred\\x1b[39m \\x1b[1mbold\\x1b[22m')"],
        tmp_path,
        timeout=30,
        log_path=log,
    )
    assert res.output_tail.strip() == "red bold"
    assert "\x1b[31m" in log.read_text()
