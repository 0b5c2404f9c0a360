"""The registry check (PLAN) and the publish of one package (end of its build).

Both pack the package into a private temporary directory and compare the tarball with what
the registry holds (:func:`pkgbuilder.publishing.registry.decide`). A publish then uploads
the *same* tarball file with ``npm publish <tgz>``: npm is the one client that publishes a
prepacked tarball for every workspace kind and honours ``--userconfig``, and publishing the
checked file means the integrity we compared is the integrity the registry stores.

Credentials: ``NPM_TOKEN`` is read from the worker's environment and written only to a 0600
npm userconfig in a 0700 temporary directory for the one ``npm publish`` command; the child's
environment is scrubbed (no NPM_TOKEN), the file is deleted afterwards, and the token is
redacted from any output kept. Outcomes a user must act on (dirty tree, no tests, version
conflict, missing or rejected token) come back as ``PublishOutcome.FAILED`` with one sentence;
infrastructure faults raise :class:`~pkgbuilder.publishing.pack.RegistryUnavailable`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from pkgbuilder.models.build import PackageNode, PublishOutcome
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
from pkgbuilder.publishing.pack import (
    RegistryUnavailable,
    not_publishable,
    pack_package,
    private_tmp,
    sweep_stale_tmp,
)
from pkgbuilder.steps.shell import run_command, scrubbed_env
from pkgbuilder.vcs import GitNotInstalled, Repository, VcsError

T = TypeVar("T")
TOKEN_ENV = "NPM_TOKEN"
_AUTH_MARKERS = ("E401", "E403", "ENEEDAUTH", "401 Unauthorized", "403 Forbidden")


def _no_heartbeat(detail: str) -> None:
    pass


@dataclass(frozen=True)
class Attempt:
    """Which attempt of the step this is (a retry may find its own earlier publish) and how
    it reports progress (a slow registry is not a dead worker)."""

    number: int = 1
    scheduled: datetime | None = None
    heartbeat: Callable[[str], None] = _no_heartbeat


def token(registry: str) -> str | None:
    """NPM_TOKEN, else the user:password of NPM_REGISTRY (both from the worker's own
    environment; settings carry the registry URL without userinfo)."""
    return os.environ.get(TOKEN_ENV) or reg.credential_from_env(registry, os.environ)


def redact(text: str, secret: str | None) -> str:
    if not secret:
        return text
    return text.replace(secret, "***").replace(secret.removeprefix(reg.BASIC_PREFIX), "***")


async def _in_thread(heartbeat: Callable[[str], None], fn: Callable[..., T], *args: object) -> T:
    """Run blocking HTTP in a thread, heartbeating meanwhile."""
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    while True:
        done, _ = await asyncio.wait({task}, timeout=5.0)
        if done:
            return task.result()
        heartbeat("waiting for the registry")


async def _decide(
    packed: PackedTarball, registry: str, secret: str | None, heartbeat: Callable[[str], None]
) -> tuple[PublishDecision, str]:
    """Ask the registry and compare (HTTP runs in a thread: urllib blocks)."""
    published = await _in_thread(
        heartbeat, reg.fetch_version, registry, packed.name, packed.version, secret
    )

    def fetch() -> bytes:
        assert published is not None
        return reg.download_tarball(published, registry, secret)

    return await _in_thread(heartbeat, reg.decide, packed, published, fetch)


def _unavailable(registry: str, e: Exception) -> RegistryUnavailable:
    return RegistryUnavailable(f"The registry at {registry} could not be asked: {e}.")


def auth_sentence(registry: str, secret: str | None, action: str) -> str:
    """What to do about a missing or rejected token, in one sentence."""
    if secret is None:
        return f"{action} {registry} needs a token: set {TOKEN_ENV} in the worker's environment."
    return f"The registry at {registry} rejected {TOKEN_ENV} ({action.lower()} it)."


async def check_published(inp: PublishCheckInput, attempt: Attempt) -> PublishCheckResult:
    """PLAN: which packages are already published with identical content (to be skipped).

    Raises:
        MissingTool, PackFailed: a package cannot be packed.
        RegistryUnavailable: the registry could not be asked.
    """
    registry = reg.normalize_registry(inp.registry)
    root = Path(inp.workspace_root)
    secret = token(registry)
    out = PublishCheckResult(registry=registry)
    sweep_stale_tmp()
    for node in inp.packages:
        check = PackageCheck(name=node.name, version=node.version)
        out.checks.append(check)
        reason = "its directory does not exist" if not node.exists else not_publishable(root, node)
        if reason:
            check.note = reason
            continue
        attempt.heartbeat(f"checking {node.name}@{node.version}")
        with private_tmp() as tmp:
            packed = await pack_package(
                root, node, inp.package_manager, tmp, inp.timeout_seconds, attempt.heartbeat
            )
            try:
                check.decision, check.note = await _decide(
                    packed, registry, secret, attempt.heartbeat
                )
            except reg.RegistryAuthError:
                out.error = auth_sentence(registry, secret, "Reading from")
                out.identical = []
                return out
            except (reg.RegistryError, ValueError) as e:
                raise _unavailable(registry, e) from e
            fresh = check.decision is PublishDecision.IDENTICAL and await _in_thread(
                attempt.heartbeat,
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


async def git_dirty(workspace_root: Path, node: PackageNode) -> str | None:
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


def published_by_earlier_attempt(published_at: str | None, attempt: Attempt) -> bool:
    """A retry that finds its own version in the registry: was it our earlier attempt?"""
    if attempt.number <= 1 or not published_at or attempt.scheduled is None:
        return False
    try:
        when = datetime.fromisoformat(published_at.replace("Z", "+00:00"))
    except ValueError:
        return False
    return when >= attempt.scheduled


def npm_publish_argv(
    inp: PublishPackageInput, packed: PackedTarball, registry: str, userconfig: Path
) -> list[str]:
    """``npm publish <tgz>`` with the one-command userconfig and the configured access/tag."""
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
    return argv


async def _npm_publish(
    inp: PublishPackageInput,
    packed: PackedTarball,
    registry: str,
    secret: str,
    tmp: Path,
    heartbeat: Callable[[str], None],
) -> tuple[bool, str]:
    """Run ``npm publish <tgz>``; returns (ok, redacted tail)."""
    userconfig = tmp / "npmrc"
    fd = os.open(userconfig, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(reg.npmrc_with_token(registry, secret))
    argv = npm_publish_argv(inp, packed, registry, userconfig)
    try:
        # cwd = the temp dir: the workspace's .npmrc (possibly "${NPM_TOKEN}") is not read.
        result = await run_command(
            argv, tmp, timeout=inp.timeout_seconds, env=scrubbed_env(), heartbeat=heartbeat
        )
    finally:
        userconfig.unlink(missing_ok=True)
    return result.ok, redact(result.output_tail, secret)[-4000:]


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


async def publish_package(inp: PublishPackageInput, attempt: Attempt) -> PublishPackageResult:
    """Pack → ask the registry → publish (or skip, or refuse). Idempotent under retries.

    Raises:
        MissingTool, PackFailed: the package cannot be packed.
        RegistryUnavailable: the registry could not be asked, or npm failed for no reason
            the user caused.
    """
    root = Path(inp.workspace_root)
    node = inp.package
    registry = reg.normalize_registry(inp.registry)
    done = _Outcome(node, registry)
    sweep_stale_tmp()
    if reason := not_publishable(root, node):
        return done(PublishOutcome.NOT_ATTEMPTED, f"{node.name} is not published: {reason}.")
    if inp.publishing.require_tests and "test" not in node.scripts:
        return done(
            PublishOutcome.FAILED,
            f"Refusing to publish {node.name}: it has no test script (publishing.requireTests).",
        )
    if inp.publishing.require_clean_working_directory and (dirty := await git_dirty(root, node)):
        return done(PublishOutcome.FAILED, dirty)
    with private_tmp() as tmp:
        done.packed = await pack_package(
            root, node, inp.package_manager, tmp, inp.timeout_seconds, attempt.heartbeat
        )
        return await _publish_packed(inp, done, done.packed, registry, tmp, attempt)


async def _publish_packed(
    inp: PublishPackageInput,
    done: _Outcome,
    packed: PackedTarball,
    registry: str,
    tmp: Path,
    attempt: Attempt,
) -> PublishPackageResult:
    secret = token(registry)
    ident = f"{packed.name}@{packed.version}"
    try:
        decision, how = await _decide(packed, registry, secret, attempt.heartbeat)
    except reg.RegistryAuthError:
        if inp.publishing.dry_run:
            return done(
                PublishOutcome.DRY_RUN,
                f"Would publish {ident} ({packed.size} bytes) to {registry}; the registry was "
                f"not asked because it needs {TOKEN_ENV}.",
            )
        return done(PublishOutcome.FAILED, auth_sentence(registry, secret, "Reading from"))
    except (reg.RegistryError, ValueError) as e:
        raise _unavailable(registry, e) from e

    if decision is PublishDecision.CONFLICT:
        return done(PublishOutcome.FAILED, reg.bump_message(packed.name, packed.version))
    if decision is PublishDecision.IDENTICAL:
        return await _already_there(done, packed, registry, secret, how, attempt)
    if inp.publishing.dry_run:
        return done(
            PublishOutcome.DRY_RUN,
            f"Would publish {ident} ({packed.size} bytes, {packed.integrity}) to {registry} "
            f"with access {inp.publishing.access} and tag {inp.publishing.tag}.",
        )
    if secret is None:
        return done(PublishOutcome.FAILED, auth_sentence(registry, None, "Publishing to"))

    attempt.heartbeat(f"publishing {ident}")
    ok, tail = await _npm_publish(inp, packed, registry, secret, tmp, attempt.heartbeat)
    if ok:
        return done(PublishOutcome.PUBLISHED, f"Published {ident} to {registry}.", tail)
    return await _after_failed_publish(done, packed, registry, secret, tail, attempt)


async def _already_there(
    done: _Outcome,
    packed: PackedTarball,
    registry: str,
    secret: str | None,
    how: str,
    attempt: Attempt,
) -> PublishPackageResult:
    """The registry holds identical content: our earlier attempt published it, or it is a
    skip."""
    ident = f"{packed.name}@{packed.version}"
    published = await _in_thread(
        attempt.heartbeat, reg.fetch_version, registry, packed.name, packed.version, secret
    )
    if published_by_earlier_attempt(published.published_at if published else None, attempt):
        return done(
            PublishOutcome.PUBLISHED,
            f"Published {ident} to {registry} (by an earlier attempt of this step).",
        )
    return done(
        PublishOutcome.SKIPPED, f"{ident} is already published with identical content ({how})."
    )


async def _after_failed_publish(
    done: _Outcome,
    packed: PackedTarball,
    registry: str,
    secret: str,
    tail: str,
    attempt: Attempt,
) -> PublishPackageResult:
    """npm failed, yet the registry may have accepted it (lost answer, a concurrent run)."""
    ident = f"{packed.name}@{packed.version}"
    try:
        decision, _ = await _decide(packed, registry, secret, attempt.heartbeat)
    except reg.RegistryAuthError:
        decision = PublishDecision.PUBLISH
    except (reg.RegistryError, ValueError) as e:
        raise _unavailable(registry, e) from e
    if decision is PublishDecision.IDENTICAL:
        return done(PublishOutcome.PUBLISHED, f"Published {ident} to {registry}.", tail)
    if decision is PublishDecision.CONFLICT:
        return done(PublishOutcome.FAILED, reg.bump_message(packed.name, packed.version), tail)
    if any(m in tail for m in _AUTH_MARKERS):
        return done(PublishOutcome.FAILED, auth_sentence(registry, secret, "Publishing to"), tail)
    last = tail.strip().splitlines()[-1:] or ["no output"]
    raise RegistryUnavailable(f"npm publish of {ident} failed: {last[0][:300]}")
