"""Restore the build outputs of a package's workspace dependencies from the cache (local,
then remote) into a checkout, before the package builds there: the dependencies may have
been built by another worker on another machine, so what lies on this disk is never
trusted (see docs/workers.md)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pkgbuilder.cache.archive import ArchiveRejected, extract
from pkgbuilder.cache.engine import Warnings, fetch_artifacts, limits_for
from pkgbuilder.cache.store import LocalStore
from pkgbuilder.config import BuildSettings
from pkgbuilder.models.cache_info import CacheSource
from pkgbuilder.models.fleet import DependencyBuild


@dataclass
class DependencyRestore:
    """What a restore did: each restored dependency and where it came from, one sentence per
    dependency that could not be restored, and the cache's warnings."""

    restored: dict[str, CacheSource] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    restore_ms: int = 0

    @property
    def ok(self) -> bool:
        return not self.missing


class DependencyRestorer:
    """Restores into one checkout. Thread-safe: parallel package steps of one worker that
    share a dependency restore it once (a build never reads a half-written output), and a
    dependency already restored at the same hash by this restorer is not written again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._restored: dict[str, str] = {}  # package → build hash restored

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def restore(
        self, dependencies: list[DependencyBuild], settings: BuildSettings
    ) -> DependencyRestore:
        """Restore the build artifact of every dependency (under its path in this checkout)."""
        started = time.perf_counter()
        out = DependencyRestore()
        paths = {d.name: d.path for d in dependencies}
        hashes = {d.name: d.build_hash for d in dependencies}
        wanted = {n: h for n, h in sorted(hashes.items()) if self._restored.get(n) != h}
        for name in sorted(set(hashes) - set(wanted)):
            out.restored[name] = CacheSource.LOCAL
        store = LocalStore.from_settings(settings.cache, self.root)
        warnings = Warnings()
        blobs, sources = fetch_artifacts(list(wanted.values()), store, settings, warnings)
        limits = limits_for(settings)
        for name, task_hash in wanted.items():
            data = blobs.get(task_hash)
            if data is None:
                out.missing.append(
                    f"the build outputs of {name} ({task_hash[:12]}) are in neither the local "
                    "nor the remote cache"
                )
                continue
            with self._lock(name):
                if self._restored.get(name) != task_hash:
                    try:
                        extract(data, self.root / paths[name], None, limits)
                    except (ArchiveRejected, KeyError, ValueError, TypeError) as e:
                        if sources[task_hash] is CacheSource.LOCAL:
                            store.discard(task_hash)
                        out.missing.append(f"the cached build of {name} was rejected: {e}")
                        continue
                    self._restored[name] = task_hash
            if sources[task_hash] is CacheSource.REMOTE and settings.cache.local_write:
                store.put(task_hash, data)
            out.restored[name] = sources[task_hash]
        out.warnings = warnings.items
        out.restore_ms = int((time.perf_counter() - started) * 1000)
        return out
