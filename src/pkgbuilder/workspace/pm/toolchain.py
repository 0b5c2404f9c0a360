"""Find (or fetch) the package manager binary a workspace asks for.

Order: the binary on ``PATH`` when it is the version ``packageManager`` asks for (any
version when the field is absent); a copy in pkgbuilder's tool cache, installed there once
with ``npm install <package>@<version>`` from the registry npm is configured for; corepack;
last, a ``PATH`` binary of another version. npm itself always comes from ``PATH``. The
result says which one was used (``Tool.describe()``).

Yarn Berry with a committed ``yarnPath`` (``.yarnrc.yml``) runs that release with node,
which is what any ``yarn`` on PATH would do.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pkgbuilder.models.common import PackageManager
from pkgbuilder.util.filelock import file_lock
from pkgbuilder.util.yamltext import YamlError, load_yaml
from pkgbuilder.workspace.pm.detect import requested_version

TOOLS_CACHE_ENV = "PKGBUILDER_TOOLS_CACHE"
VERSION_TIMEOUT = 20
INSTALL_TIMEOUT = 300


@dataclass(frozen=True)
class Tool:
    """How to invoke a package manager: ``argv`` is the prefix (``[".../pnpm"]``)."""

    manager: PackageManager
    argv: tuple[str, ...]
    version: str | None
    source: str  # "PATH", "tool cache", "corepack", "yarnPath"
    requested: str | None = None

    def describe(self) -> str:
        what = f"{self.manager.value} {self.version or '(unknown version)'} from {self.source}"
        if self.requested and self.version != self.requested:
            what += f" (packageManager asks for {self.requested})"
        return what


class ToolError(Exception):
    """No usable binary for the package manager (message is one sentence)."""


def _version_of(argv: list[str], cwd: Path) -> str | None:
    env = {**os.environ, "COREPACK_ENABLE_DOWNLOAD_PROMPT": "0"}
    try:
        out = subprocess.run(
            [*argv, "--version"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"\d+\.\d+\.\d+\S*", out.stdout) if out.returncode == 0 else None
    return m[0] if m else None


def is_yarn_berry(root: Path, requested: str | None) -> bool:
    """Yarn 2+ (Berry): by the requested version, else by the lockfile or .yarnrc.yml."""
    if requested:
        return not requested.startswith("1.")
    try:
        head = (root / "yarn.lock").read_text(encoding="utf-8")[:2000]
    except (OSError, UnicodeDecodeError):
        head = ""
    return "__metadata:" in head or (root / ".yarnrc.yml").is_file()


def _read_yarnrc(root: Path) -> dict[str, Any]:
    try:
        data = load_yaml((root / ".yarnrc.yml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YamlError):
        return {}
    return data if isinstance(data, dict) else {}


def yarn_node_linker(root: Path) -> str:
    """Berry's ``nodeLinker`` (``pnp`` when unset, as in Yarn itself)."""
    return str(_read_yarnrc(root).get("nodeLinker") or "pnp")


def _npm_package(manager: PackageManager, version: str) -> str:
    if manager is PackageManager.YARN and not version.startswith("1."):
        return f"@yarnpkg/cli-dist@{version}"
    return f"{manager.value}@{version}"


def default_version(root: Path, manager: PackageManager) -> str:
    """What to fetch when packageManager names no version: the newest major that writes
    the lockfile's version (pnpm 10 for ``lockfileVersion: '9.0'``, which pnpm 9 writes too,
    as ``npm install -g pnpm`` in a repository's CI would pick)."""
    if manager is PackageManager.YARN:
        return "4" if is_yarn_berry(root, None) else "1"
    try:
        head = (root / "pnpm-lock.yaml").read_text(encoding="utf-8")[:200]
    except (OSError, UnicodeDecodeError):
        head = ""
    m = re.search(r"lockfileVersion:\s*'?(\d+)", head)
    return {"5": "7", "6": "8"}.get(m[1], "10") if m else "10"


def tools_cache(home: Path | None = None) -> Path:
    env = os.environ.get(TOOLS_CACHE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    base = home or Path(os.environ.get("PKGBUILDER_HOME") or ".pkgbuilder").expanduser().resolve()
    return base / "tools"


def _cached(cache: Path, manager: PackageManager, version: str) -> Path:
    safe = re.sub(r"[^\w.^~-]", "_", version)
    return cache / f"{manager.value}@{safe}" / "node_modules" / ".bin" / manager.value


def _install_into_cache(cache: Path, manager: PackageManager, version: str) -> Path | None:
    exe = _cached(cache, manager, version)
    prefix = exe.parents[2]
    prefix.mkdir(parents=True, exist_ok=True)
    with file_lock(prefix / ".lock"):
        if exe.exists():
            return exe
        (prefix / "package.json").write_text('{"private": true}\n')
        try:
            done = subprocess.run(
                [
                    "npm",
                    "install",
                    "--no-save",
                    "--no-audit",
                    "--no-fund",
                    "--no-package-lock",
                    _npm_package(manager, version),
                ],
                cwd=prefix,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return exe if done.returncode == 0 and exe.exists() else None


def resolve_tool(
    root: Path, manager: PackageManager, manifest: dict[str, Any] | None, home: Path | None = None
) -> Tool:
    """The package manager binary to use for the workspace at ``root``.

    Raises:
        ToolError: nothing usable was found or could be installed.
    """
    requested = requested_version(manifest)
    on_path = shutil.which(manager.value)
    if manager is PackageManager.NPM:
        if on_path is None:
            raise ToolError("npm is not on PATH: install Node.js with npm.")
        return Tool(manager, (on_path,), _version_of([on_path], root), "PATH", requested)
    if manager is PackageManager.YARN:
        yarn_path = _read_yarnrc(root).get("yarnPath")
        if isinstance(yarn_path, str) and (root / yarn_path).is_file():
            release = (root / yarn_path).resolve()
            node = shutil.which("node") or "node"
            return Tool(
                manager,
                (node, str(release)),
                _version_of([node, str(release)], root),
                "yarnPath",
                requested,
            )
    path_version = _version_of([on_path], root) if on_path else None
    if on_path and (requested is None or path_version == requested):
        return Tool(manager, (on_path,), path_version, "PATH", requested)
    want = requested or default_version(root, manager)
    cache = tools_cache(home)
    exe = _cached(cache, manager, want)
    if exe.exists() or _install_into_cache(cache, manager, want):
        return Tool(manager, (str(exe),), _version_of([str(exe)], root), "tool cache", requested)
    corepack = shutil.which("corepack")
    if corepack:
        version = _version_of([corepack, manager.value], root)
        if version:
            return Tool(manager, (corepack, manager.value), version, "corepack", requested)
    if on_path:
        return Tool(manager, (on_path,), path_version, "PATH", requested)
    raise ToolError(
        f"No {manager.value} {want} is available: it is not on PATH, "
        f"'npm install {_npm_package(manager, want)}' into {cache} failed and corepack "
        f"could not provide it; install it and put it on PATH."
    )
