"""The package manager's command lines: which binary (resolved once per process), the
install argv (frozen or not, per manager), ``run <script>``, and ``PATH`` for scripts that
call the manager themselves. Temporal-free."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from pkgbuilder.models.common import PackageManager
from pkgbuilder.workspace.pm.toolchain import Tool, ToolError, is_yarn_berry, resolve_tool

# Quiet, non-interactive package managers (no telemetry, no prompts, no corepack strictness
# about a packageManager field naming another manager).
INSTALL_ENV = {
    "COREPACK_ENABLE_STRICT": "0",
    "COREPACK_ENABLE_DOWNLOAD_PROMPT": "0",
    "YARN_ENABLE_TELEMETRY": "0",
    "YARN_ENABLE_PROGRESS_BARS": "false",
}

_TOOLS: dict[tuple[str, PackageManager], Tool] = {}


def _root_manifest(root: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((root / "package.json").read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def workspace_tool(root: Path, pm: PackageManager) -> Tool:
    """The package manager binary for the workspace (resolved once per process).

    Raises:
        ToolError: no usable binary (one sentence).
    """
    key = (str(root.resolve()), pm)
    if key not in _TOOLS:
        _TOOLS[key] = resolve_tool(root, pm, _root_manifest(root))
    return _TOOLS[key]


def forget_tools() -> None:
    """Resolve binaries afresh (tests that copy a workspace and change its manager)."""
    _TOOLS.clear()


def pm_argv(pm: PackageManager, *args: str, root: Path | None = None) -> list[str]:
    """argv for the package manager: the workspace's resolved binary when ``root`` is given
    (see toolchain.py), else the one on PATH (corepack for yarn/pnpm when absent)."""
    if root is not None:
        with contextlib.suppress(ToolError):
            return [*workspace_tool(root, pm).argv, *args]
    exe = pm.value
    if shutil.which(exe) is None and pm is not PackageManager.NPM and shutil.which("corepack"):
        return ["corepack", exe, *args]
    return [exe, *args]


def script_argv(pm: PackageManager, script: str, root: Path | None = None) -> list[str]:
    return pm_argv(pm, "run", script, root=root)


def tool_env(env: dict[str, str], root: Path, pm: PackageManager | None) -> dict[str, str]:
    """``env`` with the workspace's package manager first on ``PATH`` when it came from the
    tool cache, so scripts that call it (``pnpm -r test``, ``yarn build``) find it. Blocking
    the first time (it may resolve the binary): async callers run it in a thread."""
    if pm is None or pm is PackageManager.NPM:
        return env
    try:
        tool = workspace_tool(root, pm)
    except ToolError:
        return env
    if tool.source != "tool cache":
        return env
    return {**env, "PATH": os.pathsep.join([str(Path(tool.argv[0]).parent), env.get("PATH", "")])}


def install_argv(
    root: Path, pm: PackageManager, update_lockfile: bool = False, tool: Tool | None = None
) -> list[str]:
    """``update_lockfile``: the workspace gained a package (turn-based generation), so a
    frozen install (``npm ci``) would refuse the now stale lockfile."""
    prefix = list(tool.argv) if tool else pm_argv(pm)
    if pm is PackageManager.PNPM:
        frozen = ["--frozen-lockfile"] if (root / "pnpm-lock.yaml").exists() else []
        if update_lockfile:
            frozen = ["--no-frozen-lockfile"]
        return [*prefix, "install", *frozen]
    if pm is PackageManager.YARN:
        if update_lockfile or not (root / "yarn.lock").exists():
            return [*prefix, "install"]
        berry = is_yarn_berry(root, tool.version if tool else None)
        return [*prefix, "install", "--immutable" if berry else "--frozen-lockfile"]
    if update_lockfile:
        return [*prefix, "install", "--no-audit", "--no-fund"]
    if (root / "package-lock.json").exists() or (root / "npm-shrinkwrap.json").exists():
        return [*prefix, "ci", "--no-audit", "--no-fund"]
    return [*prefix, "install", "--no-audit", "--no-fund"]
