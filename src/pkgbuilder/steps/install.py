"""The workspace install: once per manifest state (a stamp of the install fingerprint in
``node_modules``) and once at a time (a file lock), whatever number of package builds ask
for it; not at all when the package manager's own record says the user's install is
current (pm/install_state.py). Temporal-free; ``activities/build.install_workspace`` is
its adapter."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from pkgbuilder.models.build import Failure, FailureType
from pkgbuilder.models.common import PackageManager
from pkgbuilder.models.steps import StepResult
from pkgbuilder.steps.shell import RunOptions, scrubbed_env
from pkgbuilder.util.filelock import file_lock
from pkgbuilder.workspace.discovery import workspace_package_dirs
from pkgbuilder.workspace.pm import (
    InstallRecord,
    Tool,
    ToolError,
    current_install,
    install_fingerprint,
)
from pkgbuilder.workspace.pm.commands import INSTALL_ENV, install_argv, workspace_tool

STAMP_NAME = ".pkgbuilder-install.json"
LOCK_NAME = ".pkgbuilder-install.lock"
UP_TO_DATE = "lockfile and manifests unchanged since pkgbuilder installed"  # the stamp's detail


def manifest_fingerprint(root: Path) -> str:
    """Hash of the files a workspace install reads: root manifest and settings, lockfiles,
    and the package.json of each workspace package (see pm/fingerprint.py)."""
    return install_fingerprint(root, workspace_package_dirs(root))


_ERROR_LINE = re.compile(r"ERR_PNPM_|^npm (?:error|ERR!) |^error |YN0(?!000)\d{3}:")
_BOILERPLATE = re.compile(
    r"A complete log of this run|^code \S+$|^errno |^Usage:|^Options:|^\s*$|^\[|^-|^aliases:|"
    r"^Run \"npm help|^Clean install a project|^npm ci$|^info Visit"
)


def install_failure_reason(tail: str) -> str:
    """The line of an install's output that says why it failed: the first error line of
    npm, pnpm or yarn that is not boilerplate (else the last non-empty line)."""
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    for line in lines:
        if not _ERROR_LINE.search(line):
            continue
        text = re.sub(r"^(?:npm (?:error|ERR!)|error)\s+", "", line).strip()
        if not _BOILERPLATE.search(text):
            return text[:300]
    return lines[-1][:300] if lines else ""


def install_failure_message(tool: Tool, argv: list[str], exit_code: int | None, tail: str) -> str:
    """One sentence: what ran, how it ended and the line that says why."""
    why = install_failure_reason(tail)
    how = f"exit {exit_code}" if exit_code is not None else "timed out"
    return (
        f"Workspace install '{' '.join([tool.manager.value, *argv[len(tool.argv) :]])}' "
        f"({tool.describe()}) failed ({how})" + (f": {why}" if why else ".")
    )


def _stamped(stamp: Path, fingerprint: str) -> bool:
    try:
        return bool(json.loads(stamp.read_text()).get("fingerprint") == fingerprint)
    except (OSError, ValueError):
        return False


def _write_stamp(stamp: Path, fingerprint: str, trusted: InstallRecord | None = None) -> None:
    stamp.parent.mkdir(parents=True, exist_ok=True)
    data = {"fingerprint": fingerprint}
    if trusted is not None:
        data["trusted"] = trusted.describe()
    stamp.write_text(json.dumps(data))


def _users_install(root: Path, pm: PackageManager) -> InstallRecord | None:
    """The package manager's record of an install it did itself, if it can be trusted.
    Blocking (pnpm: resolves the binary, whose major the record must match)."""
    version: str | None = None
    if pm is PackageManager.PNPM:
        try:
            version = workspace_tool(root, pm).version
        except ToolError:
            return None  # the install below reports it
    return current_install(root, pm, workspace_package_dirs(root), version)


async def install(
    root: Path,
    pm: PackageManager,
    *,
    timeout: float,
    options: RunOptions,
    update_lockfile: bool = False,
    log_path: Path | None = None,
) -> StepResult:
    """Install the workspace's dependencies unless the stamp says this manifest state was
    installed already, or the package manager's own record says the user's install is
    current (then the stamp is written, and ``detail`` names the record). Never raises for
    a failing install (the result carries the ``install`` failure naming the line that
    says why)."""
    stamp = root / "node_modules" / STAMP_NAME
    fingerprint = await asyncio.to_thread(manifest_fingerprint, root)
    # flock blocks: take it in a thread so heartbeats keep flowing meanwhile.
    lock_cm = file_lock(root / "node_modules" / LOCK_NAME)
    await asyncio.to_thread(lock_cm.__enter__)
    try:
        if stamp.is_file() and _stamped(stamp, fingerprint):
            return StepResult(step="install", ok=True, skipped=True, detail=UP_TO_DATE)
        if not update_lockfile:
            trusted = await asyncio.to_thread(_users_install, root, pm)
            if trusted is not None:
                await asyncio.to_thread(_write_stamp, stamp, fingerprint, trusted)
                return StepResult(step="install", ok=True, skipped=True, detail=trusted.describe())
        try:
            tool = await asyncio.to_thread(workspace_tool, root, pm)
        except ToolError as e:
            return StepResult(
                step="install",
                ok=False,
                failures=[Failure(type=FailureType.INSTALL, message=str(e))],
            )
        argv = install_argv(root, pm, update_lockfile, tool)
        result = await options.run(
            argv, root, timeout=timeout, env={**scrubbed_env(), **INSTALL_ENV}, log_path=log_path
        )
        if not result.ok:
            return StepResult(
                step="install",
                ok=False,
                duration_ms=result.duration_ms,
                output_tail=result.output_tail,
                commands=[argv],
                detail=tool.describe(),
                failures=[
                    Failure(
                        type=FailureType.INSTALL,
                        message=install_failure_message(
                            tool, argv, result.exit_code, result.output_tail
                        ),
                        command=argv,
                        output_tail=result.output_tail[-8000:],
                    )
                ],
            )
        _write_stamp(stamp, fingerprint)
        return StepResult(
            step="install",
            ok=True,
            duration_ms=result.duration_ms,
            output_tail=result.output_tail[-2000:],
            commands=[argv],
            detail=tool.describe(),
        )
    finally:
        lock_cm.__exit__(None, None, None)
