"""Which dependencies on workspace packages the package manager really links.

A dependency that names a workspace package is an edge of the build graph only when the
package manager links the workspace copy; otherwise it installs that name from the registry
and the workspace package is not an input of the dependent's build. The truth is the
committed lockfile; without one, each manager's own rule decides:

- ``workspace:`` ranges always link (and must name a workspace package);
- ``file:``/``link:``/``portal:`` specs link when they point at the package's directory;
- npm, yarn classic and yarn Berry link a plain semver range the workspace version
  satisfies (npm also links a dist-tag such as ``latest``);
- pnpm links a satisfied range only with ``link-workspace-packages`` (``.npmrc`` or
  ``pnpm-workspace.yaml``), which is off by default since pnpm 9.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pkgbuilder.models.common import PackageManager
from pkgbuilder.util.yamltext import YamlError, load_yaml
from pkgbuilder.workspace.pm.semver import parse_range, satisfies

_PATH_PROTOCOLS = ("file:", "link:", "portal:")
_TAG = re.compile(r"^[A-Za-z][\w.-]*$")
_LOCK_SECTIONS = ("dependencies", "devDependencies", "optionalDependencies")


def _read_npmrc(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return out
    for line in lines:
        line = line.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out[key.strip()] = value.strip().strip("\"'")
    return out


# pnpm-lock.yaml's sections after ``importers`` (resolved packages) are most of the file.
_AFTER_IMPORTERS = re.compile(r"^(?:packages|snapshots):", re.MULTILINE)


def _read_yaml(path: Path, importers_only: bool = False) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
        if importers_only and (m := _AFTER_IMPORTERS.search(text)):
            text = text[: m.start()]
        return load_yaml(text)
    except (OSError, UnicodeDecodeError, YamlError):
        return None


def _major(version: str | None) -> int | None:
    m = re.match(r"^(\d+)", version or "")
    return int(m[1]) if m else None


def pnpm_links_workspace_packages(root: Path, pm_version: str | None) -> bool:
    """``link-workspace-packages`` as pnpm reads it (``deep`` counts as on)."""
    value: Any = None
    settings = _read_yaml(root / "pnpm-workspace.yaml")
    if isinstance(settings, dict) and "linkWorkspacePackages" in settings:
        value = settings["linkWorkspacePackages"]
    npmrc = _read_npmrc(root / ".npmrc")
    if value is None and "link-workspace-packages" in npmrc:
        value = npmrc["link-workspace-packages"]
    if value is None:
        major = _major(pm_version)
        return major is not None and major < 9
    return str(value).lower() in ("true", "deep")


def _pnpm_lock_links(root: Path) -> dict[str, dict[str, bool]] | None:
    data = _read_yaml(root / "pnpm-lock.yaml", importers_only=True)
    importers = data.get("importers") if isinstance(data, dict) else None
    if not isinstance(importers, dict):
        return None
    out: dict[str, dict[str, bool]] = {}
    for rel, importer in importers.items():
        if not isinstance(importer, dict):
            continue
        deps: dict[str, bool] = {}
        for section in _LOCK_SECTIONS:
            for name, entry in (importer.get(section) or {}).items():
                version = entry.get("version") if isinstance(entry, dict) else entry
                deps[name] = isinstance(version, str) and version.startswith(
                    ("link:", "file:", "workspace:")
                )
        out[str(rel)] = deps
    return out


def _npm_lock_packages(root: Path) -> dict[str, Any] | None:
    for name in ("npm-shrinkwrap.json", "package-lock.json"):
        try:
            data = json.loads((root / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        packages = data.get("packages") if isinstance(data, dict) else None
        return packages if isinstance(packages, dict) else None
    return None


@dataclass
class LinkResolver:
    """Answers "does the package at ``importer`` get the workspace copy of ``name``?"."""

    root: Path
    manager: PackageManager
    pm_version: str | None = None
    workspace: dict[str, tuple[str, str]] = field(default_factory=dict)  # name → (rel, version)
    _pnpm_lock: dict[str, dict[str, bool]] | None = None
    _npm_lock: dict[str, Any] | None = None
    _pnpm_link: bool = False

    def __post_init__(self) -> None:
        if self.manager is PackageManager.PNPM:
            self._pnpm_lock = _pnpm_lock_links(self.root)
            self._pnpm_link = pnpm_links_workspace_packages(self.root, self.pm_version)
        elif self.manager is PackageManager.NPM:
            self._npm_lock = _npm_lock_packages(self.root)

    def links(self, importer: str, name: str, spec: str) -> bool:
        """Whether ``name`` (a workspace package) declared as ``spec`` in the package at
        ``importer`` (relative posix path) resolves to the workspace copy."""
        if name not in self.workspace:
            return False
        if spec.startswith("workspace:"):
            return True
        dep_rel, version = self.workspace[name]
        if spec.startswith(_PATH_PROTOCOLS):
            target = spec.split(":", 1)[1]
            joined = PurePosixPath(importer, target).as_posix()
            return _normalise(joined) == _normalise(dep_rel)
        from_lock = self._from_lockfile(importer, name, dep_rel)
        if from_lock is not None:
            return from_lock
        ok = satisfies(version, spec.strip() or "*")
        if ok is None:  # not a semver range: a tag, URL, git spec or alias
            is_tag = bool(_TAG.match(spec)) and parse_range(spec) is None
            return self.manager is PackageManager.NPM and is_tag
        if self.manager is PackageManager.PNPM:
            return ok and self._pnpm_link
        return ok

    def _from_lockfile(self, importer: str, name: str, dep_rel: str) -> bool | None:
        if self._pnpm_lock is not None:
            found = self._pnpm_lock.get(importer or ".", {})
            return found.get(name)
        if self._npm_lock is not None:
            nested = self._npm_lock.get(f"{importer}/node_modules/{name}")
            if isinstance(nested, dict):
                return bool(nested.get("link")) and nested.get("resolved") == dep_rel
            hoisted = self._npm_lock.get(f"node_modules/{name}")
            if isinstance(hoisted, dict):
                return bool(hoisted.get("link"))
        return None


def _normalise(path: str) -> str:
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == ".." and parts:
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)
