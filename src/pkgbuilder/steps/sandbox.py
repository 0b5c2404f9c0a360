"""Confinement for code the model wrote: bubblewrap (``bwrap``) around a command.

Inside the sandbox the whole file system is read-only except the package directory and a
private temp dir (``TMPDIR``); ``$HOME`` and ``$PKGBUILDER_HOME`` are empty; there is no
network (a private loopback only), its own pid namespace (everything in it dies with it)
and the caller's already-scrubbed environment. Pure module apart from the one-time probe
that checks bwrap works here (it needs user namespaces or root).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

# The operator may point at a bwrap binary (or at nothing, to turn the sandbox off).
BWRAP_ENV = "PKGBUILDER_BWRAP"


class SandboxUnavailable(Exception):
    """No working sandbox on this worker (one sentence saying why)."""


def bwrap_path() -> str | None:
    configured = os.environ.get(BWRAP_ENV)
    if configured is not None:
        return configured if configured and os.access(configured, os.X_OK) else None
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=4)
def _probe(bwrap: str) -> str | None:
    """None when ``bwrap`` can build our sandbox here, else why not."""
    argv = [
        bwrap,
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--unshare-net",
        "--unshare-pid",
        "--die-with-parent",
        "--",
        "true",
    ]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if proc.returncode != 0:
        return (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
    return None


def check_available() -> str:
    """The bwrap binary to use.

    Raises:
        SandboxUnavailable: bwrap is missing or cannot create namespaces here.
    """
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed on this worker")
    why = _probe(bwrap)
    if why is not None:
        raise SandboxUnavailable(f"bubblewrap cannot create a sandbox on this worker ({why})")
    return bwrap


def confined_argv(
    bwrap: str,
    argv: list[str],
    package_dir: Path,
    workspace_root: Path,
    tmp_dir: Path,
    hidden: list[Path],
    visible: list[Path] | None = None,
) -> list[str]:
    """``argv`` run by ``bwrap``: read-only everything, ``hidden`` directories empty, the
    workspace and ``visible`` (e.g. the package-manager tool cache) readable again even when
    they lie under a hidden one, and only ``package_dir`` and ``tmp_dir`` writable. Later
    mounts win, so the order matters."""
    out = [
        bwrap,
        "--die-with-parent",
        "--new-session",
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
    ]
    for path in hidden:
        if path.is_dir():
            out += ["--tmpfs", str(path)]
    for path in visible or []:
        if path.is_dir():
            out += ["--ro-bind", str(path), str(path)]
    out += [
        "--ro-bind",
        str(workspace_root),
        str(workspace_root),
        "--bind",
        str(package_dir),
        str(package_dir),
        "--bind",
        str(tmp_dir),
        str(tmp_dir),
        "--setenv",
        "TMPDIR",
        str(tmp_dir),
        "--chdir",
        str(package_dir),
        "--",
        *argv,
    ]
    return out
