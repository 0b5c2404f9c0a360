"""The package manager's own record that ``node_modules`` is current, so that a workspace
the user just installed (``npm ci``, ``pnpm install``) is not installed a second time.

Every rule is a reason to *install*; the record is trusted only when all of them pass:

npm — ``node_modules/.package-lock.json`` (npm's hidden lockfile, written by every npm 7+
install and listing what is really in ``node_modules``) has exactly the ``packages`` of
``npm-shrinkwrap.json`` / ``package-lock.json`` minus the root ``""`` entry; every path it
lists under ``node_modules`` exists; the lockfile's workspace entries are exactly the
workspace packages; and the root manifest and each workspace manifest agree with their
lockfile entry (name, version, ``bin``, the four dependency maps; ``workspaces`` for the
root), because ``npm ci`` fails on a lockfile out of sync and that must not be hidden; a
root manifest with ``overrides`` (which the lockfile does not record) must not be newer
than the record.
Optional dependencies skipped for this platform, or an ``--omit=dev`` install, leave the
hidden lockfile shorter, so those workspaces are simply installed again.

pnpm — ``node_modules/.pnpm/lock.yaml`` (the lockfile pnpm last installed, rewritten by
every install) is byte-identical to ``pnpm-lock.yaml``; ``node_modules/.modules.yaml`` says
the same pnpm major as the binary pkgbuilder would run, all dependency kinds included,
nothing skipped and no pending builds; the importers are exactly ``.`` and the workspace
packages, each importer's specifiers equal its manifest's (pnpm's own rule: optional over
regular over dev, peers added to the dependencies under ``autoInstallPeers``), with the same
``dependenciesMeta`` and ``publishConfig.directory``, and every direct dependency is linked.
Anything pnpm reads beyond that — ``.pnpmfile.cjs``, a ``pnpm`` or ``resolutions`` field,
``pnpm-workspace.yaml`` settings other than ``packages`` (catalogs, overrides), lockfile
sections other than settings/importers/packages/snapshots, ``excludeLinksFromLockfile`` —
means install.

Both — settings files (``.npmrc``, ``pnpm-workspace.yaml``, ``.pnpmfile.cjs``, yarn rc files)
must not be newer than the record. Yarn is not trusted (yarn 1's ``.yarn-integrity`` holds
hashes of yarn's own parse of ``yarn.lock`` and flags; Berry keeps its state elsewhere).
Nothing records whether install scripts ran (``--ignore-scripts``). Temporal-free.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pkgbuilder.models.common import PackageManager
from pkgbuilder.util.yamltext import load_yaml

NPM_RECORD = "node_modules/.package-lock.json"
PNPM_RECORD = "node_modules/.pnpm/lock.yaml"
PNPM_MODULES = "node_modules/.modules.yaml"
SETTINGS_FILES = (".npmrc", ".yarnrc", ".yarnrc.yml", ".pnpmfile.cjs", "pnpm-workspace.yaml")
DEP_FIELDS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")
_PNPM_FIELDS = ("dependencies", "devDependencies", "optionalDependencies")
_PNPM_LOCK_KEYS = {"lockfileVersion", "settings", "importers", "packages", "snapshots"}


@dataclass(frozen=True)
class InstallRecord:
    """A package manager's record, trusted: ``record`` matches ``lockfile`` (root-relative)."""

    manager: PackageManager
    record: str
    lockfile: str

    def describe(self) -> str:
        return f"installed by {self.manager.value} ({self.record} matches {self.lockfile})"


def current_install(
    root: Path,
    pm: PackageManager,
    package_dirs: Iterable[str],
    tool_version: str | None = None,
) -> InstallRecord | None:
    """The package manager's record that ``node_modules`` is what an install of this lockfile
    and these manifests gives, or None when there is any doubt (then install).

    Args:
        root: the workspace root.
        pm: the workspace's package manager.
        package_dirs: the workspace packages (relative posix paths).
        tool_version: the version of the binary pkgbuilder would install with (pnpm only:
            a record written by another major is not trusted).
    """
    dirs = sorted(set(package_dirs))
    try:
        if pm is PackageManager.NPM:
            return _npm(root, dirs)
        if pm is PackageManager.PNPM:
            return _pnpm(root, dirs, tool_version)
    except (OSError, ValueError, TypeError):  # unreadable or malformed (YAML errors too)
        return None
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _json(path: Path) -> dict[str, Any]:
    return _dict(json.loads(path.read_text(encoding="utf-8-sig")))


def _older_than(root: Path, record: Path, names: Iterable[str] = SETTINGS_FILES) -> bool:
    """None of ``names`` (those that exist) was modified after ``record`` was written."""
    stamp = record.stat().st_mtime_ns
    return all(
        not (root / name).exists() or (root / name).stat().st_mtime_ns <= stamp for name in names
    )


# --- npm ------------------------------------------------------------------------------


def _npm_bin(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """``bin`` as npm writes it into the lockfile (None: a form not worth guessing)."""
    if "directories" in manifest and "bin" in _dict(manifest["directories"]):
        return None
    raw = manifest.get("bin")
    if raw is None:
        return {}
    if isinstance(raw, str):
        name = manifest.get("name")
        if not isinstance(name, str):
            return None
        raw = {name.rsplit("/", 1)[-1]: raw}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        return None
    return {k: posixpath.normpath("/" + v)[1:] for k, v in raw.items()}


def _npm_agrees(manifest: dict[str, Any], entry: dict[str, Any], *, is_root: bool) -> bool:
    fields = ("name", "version", "workspaces") if is_root else ("name", "version")
    if any(manifest.get(f) != entry.get(f) for f in fields):
        return False
    if any(_dict(manifest.get(f)) != _dict(entry.get(f)) for f in DEP_FIELDS):
        return False
    return is_root or _npm_bin(manifest) == _dict(entry.get("bin"))


def _npm(root: Path, dirs: list[str]) -> InstallRecord | None:
    lockfile = next(
        (n for n in ("npm-shrinkwrap.json", "package-lock.json") if (root / n).is_file()), None
    )
    record = root / NPM_RECORD
    if lockfile is None or not record.is_file() or not _older_than(root, record):
        return None
    wanted = _dict(_json(root / lockfile).get("packages"))
    installed = _dict(_json(record).get("packages"))
    root_entry = wanted.pop("", None)
    if not isinstance(root_entry, dict) or not installed or installed != wanted:
        return None
    manifest = _json(root / "package.json")
    if not _npm_agrees(manifest, root_entry, is_root=True):
        return None
    if "overrides" in manifest and not _older_than(root, record, ["package.json"]):
        return None  # overrides are not in the lockfile: unchanged since the install?
    workspaces = sorted(k for k in wanted if "node_modules" not in k.split("/"))
    if workspaces != dirs:
        return None
    for rel in dirs:
        if not _npm_agrees(_json(root / rel / "package.json"), _dict(wanted[rel]), is_root=False):
            return None
    if not all(os.path.lexists(root / k) for k in installed if k not in workspaces):
        return None
    return InstallRecord(PackageManager.NPM, NPM_RECORD, lockfile)


# --- pnpm -----------------------------------------------------------------------------


def _yaml(path: Path) -> dict[str, Any]:
    """The file's YAML (a dict, else empty); malformed YAML raises ValueError."""
    return _dict(load_yaml(path.read_text(encoding="utf-8")))


def _major(version: Any) -> str | None:
    return version.split(".", 1)[0] if isinstance(version, str) and version else None


def _pnpm_modules_ok(modules: dict[str, Any], tool_version: str | None) -> bool:
    spec = modules.get("packageManager")
    if not isinstance(spec, str) or not spec.startswith("pnpm@"):
        return False
    if tool_version is None or _major(spec[len("pnpm@") :]) != _major(tool_version):
        return False
    included = _dict(modules.get("included"))
    return (
        modules.get("virtualStoreDir") in (".pnpm", None)
        and all(included.get(f) is True for f in _PNPM_FIELDS)
        and not modules.get("skipped")
        and not modules.get("pendingBuilds")
    )


def _pnpm_expected(manifest: dict[str, Any], auto_install_peers: bool) -> dict[str, dict[str, Any]]:
    """The specifiers pnpm expects in the importer, per field (lockfile-verification rule)."""
    optional = _dict(manifest.get("optionalDependencies"))
    deps = _dict(manifest.get("dependencies"))
    dev = _dict(manifest.get("devDependencies"))
    if auto_install_peers:
        existing = {**dev, **deps, **optional}
        peers = _dict(manifest.get("peerDependencies"))
        deps = {**{k: v for k, v in peers.items() if k not in existing}, **deps}
    return {
        "dependencies": {k: v for k, v in deps.items() if k not in optional},
        "devDependencies": {k: v for k, v in dev.items() if k not in optional and k not in deps},
        "optionalDependencies": optional,
    }


def _pnpm_importer_ok(
    root: Path, rel: str, importer: dict[str, Any], auto_install_peers: bool
) -> bool:
    manifest = _json(root / rel / "package.json")
    for field, expected in _pnpm_expected(manifest, auto_install_peers).items():
        locked = _dict(importer.get(field))
        specs = {name: _dict(dep).get("specifier") for name, dep in locked.items()}
        if specs != expected:
            return False
        if not all(os.path.lexists(root / rel / "node_modules" / name) for name in specs):
            return False
    publish = _dict(manifest.get("publishConfig")).get("directory")
    return _dict(manifest.get("dependenciesMeta")) == _dict(
        importer.get("dependenciesMeta")
    ) and publish == importer.get("publishDirectory")


def _pnpm(root: Path, dirs: list[str], tool_version: str | None) -> InstallRecord | None:
    lockfile, record, modules = root / "pnpm-lock.yaml", root / PNPM_RECORD, root / PNPM_MODULES
    if not (lockfile.is_file() and record.is_file() and modules.is_file()):
        return None
    if (root / ".pnpmfile.cjs").exists() or not _older_than(root, record):
        return None
    data = lockfile.read_bytes()
    if data != record.read_bytes() or not _pnpm_modules_ok(_yaml(modules), tool_version):
        return None
    manifest = _json(root / "package.json")
    if "pnpm" in manifest or "resolutions" in manifest:
        return None
    pnpm_workspace = root / "pnpm-workspace.yaml"
    if pnpm_workspace.is_file() and set(_yaml(pnpm_workspace)) - {"packages"}:
        return None
    lock = _dict(load_yaml(data.decode("utf-8")))
    settings = _dict(lock.get("settings"))
    if set(lock) - _PNPM_LOCK_KEYS or settings.get("excludeLinksFromLockfile"):
        return None
    importers = _dict(lock.get("importers"))
    if sorted(importers) != sorted([".", *dirs]):
        return None
    auto_peers = settings.get("autoInstallPeers") is True
    if not all(
        _pnpm_importer_ok(root, rel, _dict(importers[rel]), auto_peers) for rel in importers
    ):
        return None
    return InstallRecord(PackageManager.PNPM, PNPM_RECORD, "pnpm-lock.yaml")
