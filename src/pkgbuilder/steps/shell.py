"""Subprocess runner for package-manager shell-outs.

argv lists only (never a shell string), explicit cwd/timeout/env, the environment scrubbed of
secrets, output streamed to an optional log file with only a bounded tail kept in memory, a
heartbeat callback while the command runs. A command ends when its main process exits; what
it leaves behind is killed (see :func:`run_command`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

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


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")


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
            # Colour is not forced off: a test suite may snapshot its colours (jest
            # --color); output tails are stripped of ANSI codes instead.
            "CI": "true",
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
    timeout_seconds: float | None = None  # the limit it hit, when it timed out
    log_path: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


# Every process a step starts inherits this variable; after the step (and before a retry of
# it) whatever still carries the step's value is killed, wherever it was reparented to.
STEP_ENV = "PKGBUILDER_STEP"
# How long the output read may go on after the main process exited and its leftovers were
# killed (something that escaped both may still hold the pipe: it is not waited for).
DRAIN_SECONDS = 2.0


def _proc_stat(pid: int) -> tuple[int, int, int] | None:
    """(process group, session, start time in clock ticks) of ``pid`` from /proc, None when
    it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[2]), int(fields[3]), int(fields[19])


def _carries(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return marker in f.read().split(b"\0")
    except OSError:
        return False


def step_processes(
    token: str | None, pgid: int | None = None, since: int | None = None
) -> list[int]:
    """Pids (other than ours) in process group/session ``pgid`` or whose environment holds
    ``PKGBUILDER_STEP=<token>``; ``since`` (clock ticks): only processes started then or
    later (a step's descendants cannot be older than its main process; this keeps the scan
    to a few /proc reads). Linux /proc; an empty list elsewhere."""
    me = os.getpid()
    marker = f"{STEP_ENV}={token}".encode() if token else None
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        stat = _proc_stat(pid)
        if stat is None or (since is not None and stat[2] < since):
            continue
        if (pgid is not None and pgid in stat[:2]) or (marker and _carries(pid, marker)):
            found.append(pid)
    return found


def kill_step_processes(
    token: str | None, pgid: int | None = None, rounds: int = 5, since: int | None = None
) -> int:
    """SIGKILL everything :func:`step_processes` finds, again until nothing is left (a
    forking daemon may spawn while it dies); returns how many were killed."""
    killed = 0
    for _ in range(rounds):
        pids = step_processes(token, pgid, since)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.02)
    if pgid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    return killed


def clock_ticks_now() -> int | None:
    """Now, in the clock ticks since boot that /proc start times use (None off Linux)."""
    try:
        hz = os.sysconf("SC_CLK_TCK")
        return int(time.clock_gettime(time.CLOCK_BOOTTIME) * hz) - 1
    except (AttributeError, ValueError, OSError):
        return None


def sweep_step(token: str, since: int | None) -> int:
    """Kill every process carrying the step's marker that started at or after ``since``
    (:func:`clock_ticks_now` when the step began); returns how many."""
    return kill_step_processes(token, None, since=since)


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def _exited(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait for the main process to exit (not for its output to end); False on timeout."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is None:  # no pidfd: poll
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True
    loop.add_reader(pidfd, done.set)
    try:
        await asyncio.wait_for(done.wait(), timeout)
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


class _Output:
    """The command's merged stdout/stderr, read without blocking as it comes: every chunk to
    the log file (if any), the last ``limit`` bytes (at least one chunk) kept in memory."""

    def __init__(self, fd: int, log_file: BinaryIO | None, limit: int) -> None:
        self.fd, self.log_file, self.limit = fd, log_file, limit
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.eof = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        os.set_blocking(fd, False)
        self.loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.loop.remove_reader(self.fd)
            self.eof.set()
            return
        if self.log_file is not None:
            self.log_file.write(chunk)
        self.chunks.append(chunk)
        self.size += len(chunk)
        while self.size - len(self.chunks[0]) >= self.limit and len(self.chunks) > 1:
            self.size -= len(self.chunks.popleft())

    async def ended(self, seconds: float) -> bool:
        """Whether the output ended within ``seconds``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.eof.wait(), seconds)
        return self.eof.is_set()

    def close(self, pipe: IO[bytes]) -> None:
        """Stop reading; close the pipe and the log file."""
        self.loop.remove_reader(self.fd)
        pipe.close()
        if self.log_file is not None:
            self.log_file.close()

    def tail(self) -> str:
        """The kept output as text; colour codes never reach reports or prompts (the log
        file keeps the raw output)."""
        raw = b"".join(self.chunks)[-self.limit :].decode("utf-8", errors="replace")
        return ANSI_ESCAPE.sub("", raw)


def _spawn(
    argv: list[str], cwd: Path, env: Mapping[str, str] | None, token: str, log_path: Path | None
) -> tuple[subprocess.Popen[bytes], BinaryIO | None]:
    """Start the command in its own session with the step's marker (the environment
    scrubbed unless one is given), and open its log file."""
    log_file = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = log_path.open("wb")
    child_env = dict(env) if env is not None else scrubbed_env()
    child_env[STEP_ENV] = token
    try:
        proc = subprocess.Popen(
            argv,
            cwd=str(cwd),
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: kill the whole tree
        )
    except BaseException:
        if log_file is not None:
            log_file.close()
        raise
    return proc, log_file


async def _beat(
    heartbeat: Callable[[str], None] | None, every: float, name: str, start: float
) -> None:
    while True:
        await asyncio.sleep(every)
        if heartbeat is not None:
            heartbeat(f"{name} running {int(time.monotonic() - start)}s")


async def _finish(
    proc: subprocess.Popen[bytes],
    output: _Output,
    timeout: float,
    token: str,
    since: int | None,
    sweep_later: bool,
) -> bool:
    """Wait for the main process (SIGTERM, then SIGKILL, at the timeout), kill what it left
    behind and let the output drain; True when it timed out."""
    timed_out = False
    if not await _exited(proc, timeout):
        timed_out = True
        _kill_group(proc.pid, signal.SIGTERM)
        if not await _exited(proc, 5):
            _kill_group(proc.pid, signal.SIGKILL)
    proc.wait()
    # What is left in its process group dies now; a full /proc sweep for what left the
    # group costs a few ms, so it runs here only when something still holds the output
    # or the caller does not sweep the whole step afterwards (see sweep_step).
    _kill_group(proc.pid, signal.SIGKILL)
    if not await output.ended(0.05) or not sweep_later:
        await asyncio.to_thread(kill_step_processes, token, proc.pid, 5, since)
    await output.ended(DRAIN_SECONDS)
    return timed_out


def _timed_out_note(timeout: float) -> str:
    return f"\n[pkgbuilder] command timed out after {timeout:g} s and was killed\n"


def _kill_cancelled(proc: subprocess.Popen[bytes], token: str, since: int | None) -> None:
    _kill_group(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.wait(5)
    kill_step_processes(token, proc.pid, since=since)


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
    step_key: str | None = None,
    kill_previous: bool = False,
    sweep_later: bool = False,
) -> CommandResult:
    """Run ``argv`` in ``cwd``; never raises for a non-zero exit (the result says so).

    The command ends when its main process exits: whatever it started and left behind (in
    its process group, or anywhere with the step's ``PKGBUILDER_STEP`` marker, e.g. a
    ``setsid`` daemon) is killed then, and the output read stops. ``step_key`` names the
    step across retries; with ``kill_previous`` (a retry), processes a previous attempt left
    running (its worker was killed) are killed before this one starts, so two attempts
    never overlap. ``sweep_later``: the caller runs :func:`sweep_step` for the step's
    marker when the step ends (one /proc sweep per step instead of one per command).

    Raises:
        FileNotFoundError: the executable does not exist.
        asyncio.CancelledError: propagated after the process group was killed.
    """
    if isinstance(argv, str):  # defensive: a string here would be a shell-string bug
        raise TypeError("argv must be a list of arguments, not a string")
    argv = [str(a) for a in argv]
    token = step_key or uuid.uuid4().hex
    if step_key and kill_previous:
        await asyncio.to_thread(kill_step_processes, token)
    start = time.monotonic()
    proc, log_file = _spawn(argv, cwd, env, token, log_path)
    assert proc.stdout is not None
    # Not reaped yet, so readable even if it already exited: the step's processes start
    # no earlier than this.
    since = (_proc_stat(proc.pid) or (0, 0, None))[2]
    output = _Output(proc.stdout.fileno(), log_file, tail_bytes)
    beat_task = asyncio.create_task(_beat(heartbeat, heartbeat_every, argv[0], start))
    try:
        timed_out = await _finish(proc, output, timeout, token, since, sweep_later)
    except asyncio.CancelledError:
        _kill_cancelled(proc, token, since)
        raise
    finally:
        beat_task.cancel()
        output.close(proc.stdout)
    return CommandResult(
        argv=argv,
        cwd=str(cwd),
        exit_code=None if timed_out else proc.returncode,
        duration_ms=int((time.monotonic() - start) * 1000),
        output_tail=output.tail() + (_timed_out_note(timeout) if timed_out else ""),
        timed_out=timed_out,
        timeout_seconds=timeout if timed_out else None,
        log_path=str(log_path) if log_path else None,
    )


@dataclass(frozen=True)
class RunOptions:
    """How a step's commands run, beyond argv/cwd/timeout: the heartbeat callback and its
    period, and the step identity across retries (see :func:`run_command`)."""

    heartbeat: Callable[[str], None] | None = None
    heartbeat_every: float = 5.0
    step_key: str | None = None
    kill_previous: bool = False
    sweep_later: bool = False

    async def run(
        self,
        argv: Sequence[str],
        cwd: Path,
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
    ) -> CommandResult:
        return await run_command(
            argv,
            cwd,
            timeout=timeout,
            env=env,
            heartbeat=self.heartbeat,
            heartbeat_every=self.heartbeat_every,
            log_path=log_path,
            step_key=self.step_key,
            kill_previous=self.kill_previous,
            sweep_later=self.sweep_later,
        )
