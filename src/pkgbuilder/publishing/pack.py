"""Packing a package for the registry: the package manager's pack into a private temporary
directory, and which packages are never published.

The tarball is what the registry check compares and what ``npm publish`` uploads (see
:mod:`pkgbuilder.publishing.publish`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from pkgbuilder.models.build import PackageNode
from pkgbuilder.models.common import PackageManager
from pkgbuilder.models.publish import PackedTarball
from pkgbuilder.publishing import registry as reg
from pkgbuilder.steps.shell import run_command, scrubbed_env
from pkgbuilder.workspace.pm.commands import pm_argv

TMP_PREFIX = "pkgbuilder-publish-"


class PublishError(Exception):
    """A publish step cannot go on; the class name is the ``ErrorType`` it is raised as."""

    retryable = False


class MissingTool(PublishError):
    """The package manager is not installed on this worker."""


class PackFailed(PublishError):
    """The package manager could not pack the package."""


class RegistryUnavailable(PublishError):
    """The registry could not be asked, or a publish failed for no reason the user caused
    (retried)."""

    retryable = True


def sweep_stale_tmp() -> None:
    """Remove temp dirs of publish steps whose worker died (they may hold a userconfig)."""
    base = Path(tempfile.gettempdir())
    for d in base.glob(TMP_PREFIX + "*"):
        try:
            pid = int(d.name[len(TMP_PREFIX) :].split("-", 1)[0])
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            pass


@contextlib.contextmanager
def private_tmp() -> Iterator[Path]:
    """A 0700 directory named after our pid (so a sweeper can tell when we died)."""
    d = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def pack_argv(pm: PackageManager, workspace_root: Path, dest: Path) -> list[str]:
    """argv that packs the package in the cwd into ``dest`` (lifecycle scripts off for npm:
    the build step already built it, and a pack must not run arbitrary code twice)."""
    if pm is PackageManager.PNPM:
        return pm_argv(pm, "pack", "--pack-destination", str(dest), root=workspace_root)
    if pm is PackageManager.YARN:
        if (workspace_root / ".yarnrc.yml").exists():  # yarn berry
            return pm_argv(pm, "pack", "--out", str(dest / "package.tgz"), root=workspace_root)
        return pm_argv(pm, "pack", "--filename", str(dest / "package.tgz"), root=workspace_root)
    return ["npm", "pack", "--ignore-scripts", "--pack-destination", str(dest)]


async def pack_package(
    workspace_root: Path,
    node: PackageNode,
    pm: PackageManager,
    dest: Path,
    timeout: int,
    heartbeat: Callable[[str], None],
) -> PackedTarball:
    """Pack one package into ``dest`` and describe the tarball.

    Raises:
        MissingTool: the package manager is not installed.
        PackFailed: the pack failed, or did not leave exactly one tarball.
    """
    pkg_dir = workspace_root / node.path
    argv = pack_argv(pm, workspace_root, dest)
    try:
        result = await run_command(
            argv, pkg_dir, timeout=timeout, env=scrubbed_env(), heartbeat=heartbeat
        )
    except FileNotFoundError as e:
        raise MissingTool(f"'{argv[0]}' is not installed on this worker.") from e
    tarballs = sorted(dest.glob("*.tgz"))
    if not result.ok or len(tarballs) != 1:
        last = result.output_tail.strip().splitlines()[-1:] or ["no output"]
        raise PackFailed(f"Packing {node.name} failed: {last[0][:300]}")
    try:
        return reg.read_packed(tarballs[0])
    except ValueError as e:
        raise PackFailed(str(e)) from e


def _manifest(workspace_root: Path, node: PackageNode) -> dict:
    try:
        data = json.loads((workspace_root / node.path / "package.json").read_text("utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def not_publishable(workspace_root: Path, node: PackageNode) -> str | None:
    """Why a package is never published (private, no version), or None."""
    manifest = _manifest(workspace_root, node)
    if node.private or manifest.get("private") is True:
        return "private package"
    if not isinstance(manifest.get("version"), str) or not manifest.get("version"):
        return "package.json has no version"
    return None
