"""Which package manager a workspace uses, at which version, with which lockfile."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pkgbuilder.errors import UserError
from pkgbuilder.models.common import PackageManager

LOCKFILES: tuple[tuple[str, PackageManager], ...] = (
    ("pnpm-lock.yaml", PackageManager.PNPM),
    ("yarn.lock", PackageManager.YARN),
    ("package-lock.json", PackageManager.NPM),
    ("npm-shrinkwrap.json", PackageManager.NPM),
)
_SPEC = re.compile(r"^(?P<tool>[a-z]+)(?:@(?P<version>[^+\s]+))?(?:\+\S*)?$")


class PackageManagerError(UserError):
    """An unsupported or malformed ``packageManager`` (one clear sentence)."""


def _spec(manifest: dict[str, Any] | None) -> str | None:
    spec = (manifest or {}).get("packageManager")
    return spec.strip() if isinstance(spec, str) and spec.strip() else None


def detect_package_manager(root: Path, manifest: dict[str, Any] | None) -> PackageManager:
    """From ``packageManager`` (e.g. ``pnpm@9.1.0``), else the lockfile, else
    pnpm-workspace.yaml (pnpm), else npm."""
    spec = _spec(manifest)
    if spec is not None:
        m = _SPEC.match(spec)
        try:
            return PackageManager(m["tool"] if m else spec.split("@", 1)[0])
        except ValueError:
            raise PackageManagerError(
                f"packageManager '{spec}' in package.json is not supported: use npm, yarn or pnpm."
            ) from None
    for lockfile, manager in LOCKFILES:
        if (root / lockfile).is_file():
            return manager
    if (root / "pnpm-workspace.yaml").is_file():
        return PackageManager.PNPM
    return PackageManager.NPM


def requested_version(manifest: dict[str, Any] | None) -> str | None:
    """The exact version ``packageManager`` asks for (``pnpm@9.1.0+sha512...`` → ``9.1.0``),
    or None when the field is absent or names no version."""
    spec = _spec(manifest)
    m = _SPEC.match(spec) if spec else None
    return m["version"] if m and m["version"] else None


def lockfile_of(root: Path, manager: PackageManager) -> Path | None:
    """The workspace's lockfile for ``manager``, if committed."""
    for name, owner in LOCKFILES:
        if owner is manager and (root / name).is_file():
            return root / name
    return None
