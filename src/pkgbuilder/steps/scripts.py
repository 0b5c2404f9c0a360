"""Running a package.json script without the package manager's start-up cost.

``npm run build`` costs 0.3-0.9 s of CPU per call before the script even starts; on a monorepo
of a hundred packages with four scripts each that is minutes of pure overhead. Like pnpm, the
direct runner executes the script text itself, with the same semantics npm gives it: the
``pre<name>``/``post<name>`` hooks, ``node_modules/.bin`` of the package and of the workspace
root on ``PATH``, and the ``npm_*`` variables scripts commonly read. The script text is the
package's own command, passed verbatim to ``sh -c`` as npm does — never a string pkgbuilder
builds from names. ``scriptRunner = "package-manager"`` restores ``npm run``/``yarn run``/
``pnpm run``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

SHELL = "/bin/sh"


def read_scripts(pkg_dir: Path) -> dict[str, str]:
    try:
        manifest = json.loads((pkg_dir / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    scripts = manifest.get("scripts") if isinstance(manifest, dict) else None
    if not isinstance(scripts, dict):
        return {}
    return {k: v for k, v in scripts.items() if isinstance(k, str) and isinstance(v, str)}


def scripts_changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """One line per package.json script the change added, removed or rewrote:
    ``test: 'node --test' -> 'touch /x'`` (shown in the fix record)."""
    lines = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old != new:
            shown_old = "(none)" if old is None else repr(old)
            shown_new = "(removed)" if new is None else repr(new)
            lines.append(f"{name}: {shown_old} -> {shown_new}"[:500])
    return lines


def lifecycle(scripts: Mapping[str, str], name: str) -> list[tuple[str, str]]:
    """``[(event, command), ...]`` for ``pre<name>``, ``<name>``, ``post<name>``."""
    steps = []
    for event in (f"pre{name}", name, f"post{name}"):
        if event in scripts:
            steps.append((event, scripts[event]))
    return steps


def direct_argv(command: str) -> list[str]:
    """The argv npm itself would use for a script: the shell with the script text."""
    return [SHELL, "-c", command]


def script_env(
    base: Mapping[str, str],
    pkg_dir: Path,
    workspace_root: Path,
    package_name: str,
    package_version: str,
    event: str,
) -> dict[str, str]:
    env = dict(base)
    bins = [str(pkg_dir / "node_modules" / ".bin"), str(workspace_root / "node_modules" / ".bin")]
    env["PATH"] = os.pathsep.join([*bins, env.get("PATH", "")])
    env.update(
        {
            "npm_lifecycle_event": event,
            "npm_package_name": package_name,
            "npm_package_version": package_version,
            "npm_package_json": str(pkg_dir / "package.json"),
            "INIT_CWD": str(pkg_dir),
            "npm_config_user_agent": "pkgbuilder",
        }
    )
    return env
