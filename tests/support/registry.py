"""Helpers shared by the registry and publish tests: one Verdaccio install per machine
(``.pkgbuilder-test-cache/registry``), a fresh registry home and free loopback port per use."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from pkgbuilder.models.build import WorkspaceGraph
from pkgbuilder.publishing import verdaccio
from pkgbuilder.workspace.discovery import discover_workspace

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO = REPO_ROOT / "examples" / "demo-monorepo"
REGISTRY_CACHE = Path(
    os.environ.get(verdaccio.CACHE_ENV) or REPO_ROOT / ".pkgbuilder-test-cache" / "registry"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_registry(home: Path) -> Iterator[tuple[str, str]]:
    """Start a Verdaccio for ``home`` on a free port; yields (url, token); always stopped."""
    home.mkdir(parents=True, exist_ok=True)
    st = verdaccio.start(home, port=free_port(), cache_dir=REGISTRY_CACHE)
    try:
        assert st.url is not None
        yield st.url, verdaccio.ensure_user(home, st.url)
    finally:
        verdaccio.stop(home)


def npm_view(registry: str, token: str, spec: str, field: str, tmp: Path) -> str:
    """``npm view SPEC FIELD`` against ``registry`` (token in a throwaway userconfig)."""
    from pkgbuilder.publishing.registry import npmrc_with_token

    rc = tmp / f"npmrc-view-{os.getpid()}"
    rc.write_text(npmrc_with_token(registry, token))
    rc.chmod(0o600)
    try:
        proc = subprocess.run(
            ["npm", "view", spec, field, "--json", "--registry", registry, "--userconfig", str(rc)],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={k: v for k, v in os.environ.items() if k != "NPM_TOKEN"},
        )
    finally:
        rc.unlink(missing_ok=True)
    return proc.stdout.strip()


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=60,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@e",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@e",
        },
    )


def build_demo(dest: Path) -> Path:
    """The demo monorepo with its packages built (dist/ is what gets published)."""
    shutil.copytree(DEMO, dest, ignore=shutil.ignore_patterns("node_modules", "dist", "production"))
    for pj in dest.glob("packages/*/*/package.json"):
        subprocess.run(
            ["node", str(dest / "scripts" / "build.js")],
            cwd=pj.parent,
            check=True,
            capture_output=True,
            timeout=60,
        )
    return dest


def make_demo(template: Path, dest: Path) -> tuple[Path, WorkspaceGraph]:
    """A committed copy of the built demo under a scope of its own (the tests share one
    registry, so each gets package names nobody published yet)."""
    scope = f"@t{uuid.uuid4().hex[:10]}/"
    shutil.copytree(template, dest)
    for f in dest.rglob("*"):
        if f.is_file() and f.suffix in (".json", ".js", ".md"):
            text = f.read_text()
            if "@demo" in text:
                escaped = scope.replace("/", "\\/")  # regexes in the demo's tests
                f.write_text(text.replace("@demo/", scope).replace("@demo\\/", escaped))
    # Rewriting the scope touched sources and outputs in no particular order; the build
    # outputs are as new as the sources again, as after a real build.
    now = time.time() + 1
    for out in dest.glob("packages/*/*/dist/**/*"):
        os.utime(out, (now, now))
    _git(dest, "init", "-q", "-b", "main")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "-m", "demo")
    return dest, discover_workspace(dest)
