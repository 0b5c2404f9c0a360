"""Publish activities: ``check_published`` (PLAN) and ``publish_package`` (end of a package build).

Both pack the package with the workspace's package manager into a private temporary directory
and compare the tarball with what the registry holds (``pkgbuilder.publishing.registry.decide``).
``publish_package`` then publishes the *same* tarball file with ``npm publish <tgz>``: npm is the
one client that publishes a prepacked tarball for every workspace kind and honours
``--userconfig``, and publishing the checked file means the integrity we compared is the
integrity the registry stores.

Credentials: ``NPM_TOKEN`` is read here, from the worker's environment, and written only to a
0600 npm userconfig in a 0700 temporary directory for the one ``npm publish`` command; the
child's environment is scrubbed (no NPM_TOKEN), the file is deleted afterwards, and the token is
redacted from any output we keep. Outcomes a user must act on (dirty tree, no tests, version
conflict, missing or rejected token) come back as ``PublishOutcome.FAILED`` with one sentence;
infrastructure faults raise a retryable ``ApplicationError`` (type ``RegistryUnavailable``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pkgbuilder.errors import ErrorType
from pkgbuilder.models.build import PackageNode, PublishOutcome
from pkgbuilder.models.common import PackageManager
from pkgbuilder.models.publish import (
    PackageCheck,
    PackedTarball,
    PublishCheckInput,
    PublishCheckResult,
    PublishDecision,
    PublishPackageInput,
    PublishPackageResult,
)
from pkgbuilder.publishing import registry as reg
from pkgbuilder.publishing.freshness import outputs_fresh
from pkgbuilder.steps.shell import run_command, scrubbed_env
from pkgbuilder.vcs import GitNotInstalled, Repository, VcsError
from pkgbuilder.workspace.pm.commands import pm_argv

T = TypeVar("T")
TOKEN_ENV = "NPM_TOKEN"
TMP_PREFIX = "pkgbuilder-publish-"
_AUTH_MARKERS = ("E401", "E403", "ENEEDAUTH", "401 Unauthorized", "403 Forbidden")


def _heartbeat(detail: str) -> None:
    with contextlib.suppress(RuntimeError):  # outside an activity (unit tests)
        activity.heartbeat(detail)


def _token(registry: str) -> str | None:
    """NPM_TOKEN, else the user:password of NPM_REGISTRY (both from the worker's own
    environment; settings carry the registry URL without userinfo)."""
    return os.environ.get(TOKEN_ENV) or reg.credential_from_env(registry, os.environ)


def _redact(text: str, token: str | None) -> str:
    if not token:
        return text
    return text.replace(token, "***").replace(token.removeprefix(reg.BASIC_PREFIX), "***")


def _sweep_stale_tmp() -> None:
    """Remove temp dirs of publish activities whose worker died (they may hold a userconfig)."""
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
def _private_tmp() -> Iterator[Path]:
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
    workspace_root: Path, node: PackageNode, pm: PackageManager, dest: Path, timeout: int
) -> PackedTarball:
    """Pack one package into ``dest`` and describe the tarball.

    Raises:
        ApplicationError: the package manager is missing (non-retryable) or pack failed.
    """
    pkg_dir = workspace_root / node.path
    argv = pack_argv(pm, workspace_root, dest)
    try:
        result = await run_command(
            argv, pkg_dir, timeout=timeout, env=scrubbed_env(), heartbeat=_heartbeat
        )
    except FileNotFoundError as e:
        raise ApplicationError(
            f"'{argv[0]}' is not installed on this worker.",
            type=ErrorType.MissingTool,
            non_retryable=True,
        ) from e
    tarballs = sorted(dest.glob("*.tgz"))
    if not result.ok or len(tarballs) != 1:
        last = result.output_tail.strip().splitlines()[-1:] or ["no output"]
        raise ApplicationError(
            f"Packing {node.name} failed: {last[0][:300]}",
            type=ErrorType.PackFailed,
            non_retryable=True,
        )
    try:
        packed = reg.read_packed(tarballs[0])
    except ValueError as e:
        raise ApplicationError(str(e), type=ErrorType.PackFailed, non_retryable=True) from e
    return packed


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


async def _in_thread(fn: Callable[..., T], *args: object) -> T:
    """Run blocking HTTP in a thread, heartbeating meanwhile (a slow registry is not a dead
    worker)."""
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    while True:
        done, _ = await asyncio.wait({task}, timeout=5.0)
        if done:
            return task.result()
        _heartbeat("waiting for the registry")


async def _decide(
    packed: PackedTarball, registry: str, token: str | None
) -> tuple[PublishDecision, str]:
    """Ask the registry and compare (HTTP runs in a thread: urllib blocks)."""
    published = await _in_thread(reg.fetch_version, registry, packed.name, packed.version, token)

    def fetch() -> bytes:
        assert published is not None
        return reg.download_tarball(published, registry, token)

    return await _in_thread(reg.decide, packed, published, fetch)


def _unavailable(registry: str, e: Exception) -> ApplicationError:
    return ApplicationError(
        f"The registry at {registry} could not be asked: {e}.", type=ErrorType.RegistryUnavailable
    )


def _auth_sentence(registry: str, token: str | None, action: str) -> str:
    if token is None:
        return f"{action} {registry} needs a token: set {TOKEN_ENV} in the worker's environment."
    return f"The registry at {registry} rejected {TOKEN_ENV} ({action.lower()} it)."


@activity.defn
async def check_published(inp: PublishCheckInput) -> PublishCheckResult:
    """PLAN: which packages are already published with identical content (to be skipped)."""
    registry = reg.normalize_registry(inp.registry)
    root = Path(inp.workspace_root)
    token = _token(registry)
    out = PublishCheckResult(registry=registry)
    _sweep_stale_tmp()
    for node in inp.packages:
        check = PackageCheck(name=node.name, version=node.version)
        out.checks.append(check)
        reason = "its directory does not exist" if not node.exists else not_publishable(root, node)
        if reason:
            check.note = reason
            continue
        _heartbeat(f"checking {node.name}@{node.version}")
        with _private_tmp() as tmp:
            packed = await pack_package(root, node, inp.package_manager, tmp, inp.timeout_seconds)
            try:
                check.decision, check.note = await _decide(packed, registry, token)
            except reg.RegistryAuthError:
                out.error = _auth_sentence(registry, token, "Reading from")
                out.identical = []
                return out
            except (reg.RegistryError, ValueError) as e:
                raise _unavailable(registry, e) from e
            fresh = check.decision is PublishDecision.IDENTICAL and await _in_thread(
                outputs_fresh,
                root / node.path,
                set(reg.file_manifest(Path(packed.path).read_bytes())),
                "build" in node.scripts,
            )
        check.integrity = packed.integrity
        if fresh:
            out.identical.append(node.name)
        elif check.decision is PublishDecision.IDENTICAL:
            check.note = "build outputs are older than the sources; it is built and checked again"
    return out


async def _git_dirty(workspace_root: Path, node: PackageNode) -> str | None:
    """None when the package directory has no uncommitted change, else one sentence.

    Only the package's own directory counts: other packages, reports and the lockfile do not
    end up in this package's tarball, and a build in progress writes elsewhere in the tree.
    """
    repo = Repository(workspace_root, timeout=60)
    try:
        lines = await asyncio.to_thread(repo.status_paths, [node.path])
    except GitNotInstalled:
        return "git is not installed, so publishing.requireCleanWorkingDirectory cannot be checked."
    except VcsError:
        return (
            f"{workspace_root} is not a git repository, so "
            "publishing.requireCleanWorkingDirectory cannot be satisfied."
        )
    if not lines:
        return None
    first = lines[0]
    more = f" and {len(lines) - 1} more" if len(lines) > 1 else ""
    return (
        f"Refusing to publish {node.name}: {node.path} has uncommitted changes ({first}{more}); "
        "commit or stash them (publishing.requireCleanWorkingDirectory)."
    )


def _published_by_earlier_attempt(published_at: str | None) -> bool:
    """A retry that finds its own version in the registry: was it our earlier attempt?"""
    try:
        info = activity.info()
    except RuntimeError:
        return False
    if info.attempt <= 1 or not published_at:
        return False
    try:
        when = datetime.fromisoformat(published_at.replace("Z", "+00:00"))
    except ValueError:
        return False
    return when >= info.scheduled_time


async def _npm_publish(
    inp: PublishPackageInput, packed: PackedTarball, registry: str, token: str, tmp: Path
) -> tuple[bool, str]:
    """Run ``npm publish <tgz>`` with a one-command userconfig; returns (ok, redacted tail)."""
    userconfig = tmp / "npmrc"
    fd = os.open(userconfig, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(reg.npmrc_with_token(registry, token))
    argv = [
        "npm",
        "publish",
        packed.path,
        "--registry",
        registry,
        "--userconfig",
        str(userconfig),
        "--access",
        inp.publishing.access,
        "--tag",
        inp.publishing.tag,
        "--ignore-scripts",
    ]
    if inp.package.name.startswith("@"):
        # A scope registry from the user's global npmrc would otherwise win over --registry.
        argv.append(f"--{inp.package.name.split('/', 1)[0]}:registry={registry}")
    try:
        # cwd = the temp dir: the workspace's .npmrc (possibly "${NPM_TOKEN}") is not read.
        result = await run_command(
            argv, tmp, timeout=inp.timeout_seconds, env=scrubbed_env(), heartbeat=_heartbeat
        )
    finally:
        userconfig.unlink(missing_ok=True)
    return result.ok, _redact(result.output_tail, token)[-4000:]


class _Outcome:
    """Builds results for one publish attempt (keeps the tarball facts and the clock)."""

    def __init__(self, node: PackageNode, registry: str) -> None:
        self.node, self.registry = node, registry
        self.started = time.monotonic()
        self.packed: PackedTarball | None = None

    def __call__(
        self, outcome: PublishOutcome, message: str, tail: str = ""
    ) -> PublishPackageResult:
        p = self.packed
        return PublishPackageResult(
            package_name=self.node.name,
            version=self.node.version,
            outcome=outcome,
            registry=self.registry,
            message=message,
            integrity=p.integrity if p else None,
            shasum=p.shasum if p else None,
            tarball_filename=p.filename if p else None,
            size=p.size if p else None,
            duration_ms=int((time.monotonic() - self.started) * 1000),
            output_tail=tail,
        )


@activity.defn
async def publish_package(inp: PublishPackageInput) -> PublishPackageResult:
    """Pack → ask the registry → publish (or skip, or refuse). Idempotent under retries."""
    root = Path(inp.workspace_root)
    node = inp.package
    registry = reg.normalize_registry(inp.registry)
    done = _Outcome(node, registry)
    _sweep_stale_tmp()
    if reason := not_publishable(root, node):
        return done(PublishOutcome.NOT_ATTEMPTED, f"{node.name} is not published: {reason}.")
    if inp.publishing.require_tests and "test" not in node.scripts:
        return done(
            PublishOutcome.FAILED,
            f"Refusing to publish {node.name}: it has no test script (publishing.requireTests).",
        )
    if inp.publishing.require_clean_working_directory and (dirty := await _git_dirty(root, node)):
        return done(PublishOutcome.FAILED, dirty)
    with _private_tmp() as tmp:
        done.packed = await pack_package(root, node, inp.package_manager, tmp, inp.timeout_seconds)
        return await _publish_packed(inp, done, done.packed, registry, tmp)


async def _publish_packed(
    inp: PublishPackageInput, done: _Outcome, packed: PackedTarball, registry: str, tmp: Path
) -> PublishPackageResult:
    token = _token(registry)
    ident = f"{packed.name}@{packed.version}"
    try:
        decision, how = await _decide(packed, registry, token)
    except reg.RegistryAuthError:
        if inp.publishing.dry_run:
            return done(
                PublishOutcome.DRY_RUN,
                f"Would publish {ident} ({packed.size} bytes) to {registry}; the registry was "
                f"not asked because it needs {TOKEN_ENV}.",
            )
        return done(PublishOutcome.FAILED, _auth_sentence(registry, token, "Reading from"))
    except (reg.RegistryError, ValueError) as e:
        raise _unavailable(registry, e) from e

    if decision is PublishDecision.CONFLICT:
        return done(PublishOutcome.FAILED, reg.bump_message(packed.name, packed.version))
    if decision is PublishDecision.IDENTICAL:
        published = await _in_thread(
            reg.fetch_version, registry, packed.name, packed.version, token
        )
        if _published_by_earlier_attempt(published.published_at if published else None):
            return done(
                PublishOutcome.PUBLISHED,
                f"Published {ident} to {registry} (by an earlier attempt of this step).",
            )
        return done(
            PublishOutcome.SKIPPED, f"{ident} is already published with identical content ({how})."
        )
    if inp.publishing.dry_run:
        return done(
            PublishOutcome.DRY_RUN,
            f"Would publish {ident} ({packed.size} bytes, {packed.integrity}) to {registry} "
            f"with access {inp.publishing.access} and tag {inp.publishing.tag}.",
        )
    if token is None:
        return done(PublishOutcome.FAILED, _auth_sentence(registry, None, "Publishing to"))

    _heartbeat(f"publishing {ident}")
    ok, tail = await _npm_publish(inp, packed, registry, token, tmp)
    if ok:
        return done(PublishOutcome.PUBLISHED, f"Published {ident} to {registry}.", tail)
    # npm failed, yet the registry may have accepted it (lost answer, a concurrent run).
    try:
        decision, _ = await _decide(packed, registry, token)
    except reg.RegistryAuthError:
        decision = PublishDecision.PUBLISH
    except (reg.RegistryError, ValueError) as e:
        raise _unavailable(registry, e) from e
    if decision is PublishDecision.IDENTICAL:
        return done(PublishOutcome.PUBLISHED, f"Published {ident} to {registry}.", tail)
    if decision is PublishDecision.CONFLICT:
        return done(PublishOutcome.FAILED, reg.bump_message(packed.name, packed.version), tail)
    if any(m in tail for m in _AUTH_MARKERS):
        return done(PublishOutcome.FAILED, _auth_sentence(registry, token, "Publishing to"), tail)
    last = tail.strip().splitlines()[-1:] or ["no output"]
    raise ApplicationError(
        f"npm publish of {ident} failed: {last[0][:300]}", type=ErrorType.RegistryUnavailable
    )


ACTIVITIES: list[Callable[..., Any]] = [check_published, publish_package]
