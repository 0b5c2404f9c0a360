"""What a suite built by a fleet of checkout-bound workers carries (see docs/workers.md):
the commit its package steps need, and where to send them. Hashes and commits, never
file contents or secrets."""

from __future__ import annotations

from pydantic import Field

from pkgbuilder.models.common import Model


class SuiteCheckout(Model):
    """The checkout a suite was started from; a fleet worker's checkout must match it."""

    commit: str
    # The starting checkout had no uncommitted change: a worker must have none either.
    clean: bool


class FleetSpec(Model):
    """``SuiteBuildInput.fleet``: package steps go to ``task_queue`` (the fleet workers)."""

    task_queue: str
    checkout: SuiteCheckout


class DependencyBuild(Model):
    """A workspace dependency whose build outputs a fleet worker restores from the cache."""

    name: str
    path: str  # relative to the workspace root
    build_hash: str


class FleetTask(Model):
    """On a package step sent to the fleet: what the serving worker checks and restores
    before it runs the step in its own checkout."""

    task_queue: str
    checkout: SuiteCheckout
    # The suite's workspace root (the starter's path): paths under it are mapped to the
    # serving worker's checkout.
    suite_root: str
    # Every workspace package the package depends on, transitively, with its build hash.
    dependencies: list[DependencyBuild] = Field(default_factory=list)
    # The package's build hash as the suite computed it: the worker's checkout must hash
    # the same (same files, Node.js major, env allowlist values) or it refuses.
    build_hash: str | None = None
