"""Subprocess runner for package-manager shell-outs.

argv lists only (never a shell string), explicit cwd/timeout/env, the environment scrubbed of
secrets, output streamed to an optional log file with only a bounded tail kept in memory, a
heartbeat callback while the command runs, and the whole process group killed on timeout or
cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pkgbuilder.models.common import Model

# Names that are always removed, plus anything that looks like a credential.
SECRET_ENV_NAMES = frozenset(
    {
        "ANTHROPIC_API_KEY",
        "CLAUDE_API_KEY",
        "NPM_TOKEN",
        "NODE_AUTH_TOKEN",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "PACKAGES_MCP_TOKEN",
        "MCP_API_KEY",
        "TEMPORAL_API_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    }
)
_SECRET_PATTERN = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_KEY|CREDENTIAL|_AUTH)", re.IGNORECASE
)
# npm reads these as config; an auth token in them is a secret too.
_NPM_AUTH_PATTERN = re.compile(r"^npm_config_.*(auth|token|password)", re.IGNORECASE)

TAIL_BYTES = 16 * 1024


def is_secret_env_name(name: str) -> bool:
    return (
        name in SECRET_ENV_NAMES
        or bool(_SECRET_PATTERN.search(name))
        or bool(_NPM_AUTH_PATTERN.search(name))
    )


def scrubbed_env(
    base: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment for builds/tests of (possibly generated) code: no secrets, no
    interactive npm noise. ``extra`` is applied after scrubbing (callers pass e.g. an npm
    userconfig path, never a token value)."""
    src = os.environ if base is None else base
    env = {k: v for k, v in src.items() if not is_secret_env_name(k)}
    env.update(
        {
            "CI": "true",
            "FORCE_COLOR": "0",
            "NO_COLOR": "1",
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
            "npm_config_loglevel": env.get("npm_config_loglevel", "warn"),
        }
    )
    if extra:
        env.update(extra)
    return env


class CommandResult(Model):
    argv: list[str]
    cwd: str
    exit_code: int | None
    duration_ms: int
    output_tail: str
    timed_out: bool = False
    log_path: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def _kill_group(proc: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


async def run_command(
    argv: Sequence[str],
    cwd: Path,
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    heartbeat: Callable[[str], None] | None = None,
    heartbeat_every: float = 5.0,
    log_path: Path | None = None,
    tail_bytes: int = TAIL_BYTES,
) -> CommandResult:
    """Run ``argv`` in ``cwd``; never raises for a non-zero exit (the result says so).

    Raises:
        FileNotFoundError: the executable does not exist.
        asyncio.CancelledError: propagated after the process group was killed.
    """
    if isinstance(argv, str):  # defensive: a string here would be a shell-string bug
        raise TypeError("argv must be a list of arguments, not a string")
    argv = [str(a) for a in argv]
    start = time.monotonic()
    tail: deque[bytes] = deque()
    tail_size = 0
    log_file = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = log_path.open("wb")
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=str(cwd),
        env=dict(env) if env is not None else scrubbed_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # own process group: kill the whole tree on timeout/cancel
    )

    async def pump() -> None:
        nonlocal tail_size
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(8192):
            if log_file is not None:
                log_file.write(chunk)
            tail.append(chunk)
            tail_size += len(chunk)
            while tail_size - len(tail[0]) >= tail_bytes and len(tail) > 1:
                tail_size -= len(tail.popleft())

    async def beat() -> None:
        while True:
            await asyncio.sleep(heartbeat_every)
            if heartbeat is not None:
                heartbeat(f"{argv[0]} running {int(time.monotonic() - start)}s")

    pump_task = asyncio.create_task(pump())
    beat_task = asyncio.create_task(beat())
    timed_out = False
    try:
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            timed_out = True
            _kill_group(proc, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                _kill_group(proc, signal.SIGKILL)
                await proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pump_task, 5)
    except asyncio.CancelledError:
        _kill_group(proc, signal.SIGKILL)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 5)
        raise
    finally:
        beat_task.cancel()
        pump_task.cancel()
        if log_file is not None:
            log_file.close()
    text = b"".join(tail)[-tail_bytes:].decode("utf-8", errors="replace")
    if timed_out:
        text += f"\n[pkgbuilder] command timed out after {int(timeout)}s and was killed\n"
    return CommandResult(
        argv=argv,
        cwd=str(cwd),
        exit_code=proc.returncode,
        duration_ms=int((time.monotonic() - start) * 1000),
        output_tail=text,
        timed_out=timed_out,
        log_path=str(log_path) if log_path else None,
    )
