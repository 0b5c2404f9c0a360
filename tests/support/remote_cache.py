"""The real ``turborepo-remote-cache`` server (npm package, local-filesystem storage) on a
free loopback port. Installed once per machine into ``$PKGBUILDER_REMOTE_CACHE_INSTALL``
(default ``.pkgbuilder-test-cache/remote-cache``), like the Verdaccio install."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pkgbuilder.util.filelock import file_lock

VERSION = "2.12.0"
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
INSTALL = Path(
    os.environ.get("PKGBUILDER_REMOTE_CACHE_INSTALL")
    or REPO_ROOT / ".pkgbuilder-test-cache" / "remote-cache"
)


def _installed() -> bool:
    pj = INSTALL / "node_modules" / "turborepo-remote-cache" / "package.json"
    try:
        return json.loads(pj.read_text()).get("version") == VERSION
    except (OSError, ValueError):
        return False


def ensure_installed() -> Path:
    INSTALL.mkdir(parents=True, exist_ok=True)
    with file_lock(INSTALL / ".lock"):
        if not _installed():
            (INSTALL / "package.json").write_text(
                json.dumps(
                    {
                        "name": "pkgbuilder-test-remote-cache",
                        "version": "0.0.0",
                        "private": True,
                        "dependencies": {"turborepo-remote-cache": VERSION},
                    }
                )
            )
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=INSTALL,
                check=True,
                capture_output=True,
                timeout=900,
                env={k: v for k, v in os.environ.items() if k != "NPM_TOKEN"},
            )
    return INSTALL / "node_modules" / "turborepo-remote-cache" / "dist" / "cli.js"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RemoteCacheServer:
    url: str
    token: str
    storage: Path
    team: str = "pkgbuilder"

    def artifact_path(self, task_hash: str) -> Path:
        return self.storage / self.team / task_hash


@contextlib.contextmanager
def running_remote_cache(base: Path, token: str = "test-token") -> Iterator[RemoteCacheServer]:
    """Start the server (storage under ``base``); always stopped."""
    cli = ensure_installed()
    port = free_port()
    storage = base / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(base),
        "NODE_ENV": "production",
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "STORAGE_PROVIDER": "local",
        "STORAGE_PATH": str(storage),
        "STORAGE_PATH_USE_TMP_FOLDER": "false",
        "TURBO_TOKEN": token,
        "LOG_LEVEL": "warn",
        # makes the server keep and return x-artifact-tag (it verifies nothing itself)
        "TURBO_REMOTE_CACHE_SIGNATURE_KEY": "server-side-switch",
    }
    with (base / "server.log").open("ab") as log:
        proc = subprocess.Popen(
            ["node", str(cli)], cwd=base, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/v8/artifacts/status", timeout=1):
                    break
            except urllib.error.HTTPError:
                break  # it answers (401 without a token)
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "turborepo-remote-cache did not start: "
                        + (base / "server.log").read_text()[-2000:]
                    ) from None
                time.sleep(0.1)
        yield RemoteCacheServer(url=url, token=token, storage=storage)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
