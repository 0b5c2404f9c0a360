"""``--affected`` and ``--dry``: which packages' hashed inputs differ between two refs, and
what a build would do (hashes, cache status, the reason each package would run)."""

from __future__ import annotations

from pathlib import Path

from pkgbuilder.cache.engine import hash_packages, remote_for
from pkgbuilder.cache.hashing import diff_manifests
from pkgbuilder.cache.remote import RemoteUnavailable
from pkgbuilder.cache.sources import FileSource, GitTree, WorkingTree, resolve_ref
from pkgbuilder.cache.store import LocalStore
from pkgbuilder.config import BuildSettings
from pkgbuilder.models.build import WorkspaceGraph
from pkgbuilder.models.cache import DryRunPackage, DryRunPlan


def _source(root: Path, ref: str | None) -> FileSource:
    return WorkingTree(root) if ref is None else GitTree(root, resolve_ref(root, ref))


def affected_packages(
    root: Path, graph: WorkspaceGraph, settings: BuildSettings, base: str, head: str | None = None
) -> list[str]:
    """Packages whose build or test hash differs between ``base`` and ``head`` (default:
    the working tree). Dependents follow, since a package's hash holds its dependencies'.

    Raises:
        UserError: not a git repository, an unknown ref, or a ref missing from a shallow
            clone (one sentence).
    """
    base_source = _source(root, base)
    head_source = _source(root, head)
    _, new = hash_packages(head_source, graph.packages, settings)
    present = [
        p
        for p in graph.packages
        if (f"{p.path}/package.json" if p.path not in ("", ".") else "package.json")
        in base_source.files
    ]
    _, old = hash_packages(base_source, present, settings)
    return [
        n
        for n in graph.topological_order
        if n not in old or (old[n].build, old[n].test) != (new[n].build, new[n].test)
    ]


def dry_plan(
    root: Path, graph: WorkspaceGraph, settings: BuildSettings, names: list[str] | None = None
) -> DryRunPlan:
    """What ``pkgbuilder build`` would do now; runs nothing, writes nothing."""
    hasher, hashes = hash_packages(WorkingTree(root), graph.packages, settings, names)
    store = LocalStore.from_settings(settings.cache, root)
    remote = remote_for(settings)
    previous = store.latest_build()
    before = store.build_hashes(previous) if previous else None
    plan = DryRunPlan(cache_dir=str(store.root), compared_with=previous)
    remote_ok = remote is not None and remote.cfg.read
    for name, h in hashes.items():
        row = DryRunPackage(name=name, build_hash=h.build, test_hash=h.test)
        plan.packages.append(row)
        if settings.cache.force:
            row.cache, row.reason = "miss", "--force"
            continue
        if not settings.cache.enabled:
            row.cache, row.reason = "miss", "the cache is off"
            continue
        found = {
            t: "local" for t in (h.build, h.test) if settings.cache.local_read and store.has(t)
        }
        if remote_ok and remote is not None and len(found) < 2:
            try:
                for t in (h.build, h.test):
                    if t not in found and remote.exists(t):
                        found[t] = "remote"
            except RemoteUnavailable as e:
                if str(e) not in plan.warnings:
                    plan.warnings.append(str(e))
        if len(found) == 2:
            row.cache = "remote" if "remote" in found.values() else "local"
            row.would_run = False
            continue
        row.cache = "miss"
        row.reason = "no cache entry for " + ("its build" if h.build not in found else "its tests")
        old = (before or {}).get(name, {}).get("build")
        if old and old != h.build:
            old_manifest = store.get_manifest(old)
            if old_manifest is not None:
                changes = diff_manifests(old_manifest, hasher.manifest(name)).changes
                if changes:
                    more = f" (+{len(changes) - 3} more)" if len(changes) > 3 else ""
                    row.reason = (
                        "changed since build " + f"{previous}: " + "; ".join(changes[:3]) + more
                    )
    return plan
