"""The install fingerprint: a hash of exactly the files a workspace install reads.

The root manifest, the package manager's settings files, the lockfiles and the
``package.json`` of every workspace package — nothing else. Test fixtures, ``node_modules``,
pkgbuilder's own state and anything outside the workspace globs never count, and a directory
that happens to be named ``package.json`` is not a manifest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from pkgbuilder.workspace.pm.detect import LOCKFILES

ROOT_FILES = (
    "package.json",
    "pnpm-workspace.yaml",
    ".npmrc",
    ".yarnrc",
    ".yarnrc.yml",
    ".pnpmfile.cjs",
    *(name for name, _ in LOCKFILES),
)


def install_inputs(root: Path, package_dirs: Iterable[str]) -> list[str]:
    """The files (relative posix paths, sorted) a workspace install depends on."""
    found = {name for name in ROOT_FILES if (root / name).is_file()}
    for rel in package_dirs:
        manifest = f"{rel}/package.json"
        if (root / manifest).is_file():
            found.add(manifest)
    return sorted(found)


def install_fingerprint(root: Path, package_dirs: Iterable[str]) -> str:
    """sha256 over the names and contents of :func:`install_inputs`."""
    h = hashlib.sha256()
    for rel in install_inputs(root, package_dirs):
        try:
            data = (root / rel).read_bytes()
        except OSError:
            continue  # vanished or unreadable: the install itself will say so
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()
