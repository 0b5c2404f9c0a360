"""Look up, restore and save task results: the cache's one entry point for activities and
the CLI (``hash``, ``--dry``)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pkgbuilder.cache import FORMAT_VERSION
from pkgbuilder.cache.archive import ArchiveRejected, Limits, extract, inspect, pack
from pkgbuilder.cache.hashing import WorkspaceHasher
from pkgbuilder.cache.remote import (
    RemoteCache,
    RemoteUnavailable,
    SignatureMismatch,
    remote_config,
)
from pkgbuilder.cache.sources import FileSource, WorkingTree
from pkgbuilder.cache.store import LocalStore
from pkgbuilder.config import BuildSettings
from pkgbuilder.models.build import PackageNode
from pkgbuilder.models.cache import (
    CachedSteps,
    CacheSource,
    PackageHashes,
    PackageLookup,
    ResolveCacheInput,
    ResolveCacheResult,
    SaveCacheInput,
    SaveCacheResult,
)
from pkgbuilder.models.common import name_slug
from pkgbuilder.models.steps import StepResult

REMOTE_THREADS = 8
RESTORE_THREADS = 4
UNAVAILABLE = "remote cache unavailable (misses, no uploads): "


def _ms(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)


def hash_packages(
    source: FileSource,
    packages: list[PackageNode],
    settings: BuildSettings,
    names: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> tuple[WorkspaceHasher, dict[str, PackageHashes]]:
    hasher = WorkspaceHasher(source, packages, settings, env)
    out: dict[str, PackageHashes] = {}
    for name in names if names is not None else [p.name for p in packages]:
        build, test = hasher.manifest(name, "build"), hasher.manifest(name, "test")
        out[name] = PackageHashes(
            package=name,
            build=build.hash,
            test=test.hash,
            outputs=build.outputs,
            test_outputs=test.outputs,
        )
    return hasher, out


def limits_for(settings: BuildSettings) -> Limits:
    cap = settings.cache.max_artifact_mb * 1024 * 1024
    return Limits(max_archive_bytes=cap, max_unpacked_bytes=4 * cap)


def remote_for(settings: BuildSettings) -> RemoteCache | None:
    cfg = remote_config(settings.cache.remote)
    return RemoteCache(cfg, limits_for(settings).max_archive_bytes) if cfg else None


class Warnings:
    def __init__(self) -> None:
        self.items: list[str] = []
        self._lock = threading.Lock()

    def add(self, text: str) -> None:
        with self._lock:
            if text not in self.items:
                self.items.append(text)


def fetch_artifacts(
    wanted: list[str], store: LocalStore, settings: BuildSettings, warnings: Warnings
) -> tuple[dict[str, bytes], dict[str, CacheSource]]:
    """The artifacts of ``wanted`` task hashes found in the local cache, then (the rest, in
    parallel) in the remote one, and where each came from. Nothing is verified or
    extracted here; a remote that fails is a warning."""
    blobs: dict[str, bytes] = {}
    sources: dict[str, CacheSource] = {}
    if settings.cache.local_read:
        for task_hash in wanted:
            data = store.get(task_hash)
            if data is not None:
                blobs[task_hash], sources[task_hash] = data, CacheSource.LOCAL
    remote = remote_for(settings)
    missing = [t for t in wanted if t not in blobs]
    if remote is not None and remote.cfg.read and missing:

        def fetch(task_hash: str) -> tuple[str, bytes | None, str | None]:
            try:
                return task_hash, remote.get(task_hash), None
            except RemoteUnavailable as e:
                return task_hash, None, f"{UNAVAILABLE}{e}"
            except SignatureMismatch as e:
                return task_hash, None, f"remote artifact rejected: {e}"

        with ThreadPoolExecutor(min(REMOTE_THREADS, len(missing))) as pool:
            for fetched, data, warning in pool.map(fetch, missing):
                if warning:
                    warnings.add(warning)
                if data is not None:
                    blobs[fetched], sources[fetched] = data, CacheSource.REMOTE
    return blobs, sources


def resolve(inp: ResolveCacheInput) -> ResolveCacheResult:
    """Hash ``inp.names``, record the manifests, and restore every package whose build and
    test artifacts are both in the local or remote cache."""
    settings = inp.settings
    root = Path(inp.workspace_root)
    started = time.perf_counter()
    hasher, hashes = hash_packages(WorkingTree(root), inp.packages, settings, inp.names)
    store = LocalStore.from_settings(settings.cache, root)
    for name in inp.names:
        store.put_manifest(hasher.manifest(name, "build"))
        store.put_manifest(hasher.manifest(name, "test"))
    store.record_build(
        inp.build_id, {n: {"build": h.build, "test": h.test} for n, h in hashes.items()}
    )
    result = ResolveCacheResult(hash_ms=_ms(started))
    warnings = Warnings()
    if settings.cache.force or not settings.cache.enabled:
        reason = "--force" if settings.cache.force else "the cache is off"
        result.lookups = [
            PackageLookup(package=n, hashes=h, reason=reason) for n, h in hashes.items()
        ]
        return result
    restore_start = time.perf_counter()

    def needed(h: PackageHashes) -> tuple[str, ...]:
        return (h.build,) if inp.build_only else (h.build, h.test)

    wanted = [t for n in inp.names for t in needed(hashes[n])]
    blobs, sources = fetch_artifacts(wanted, store, settings, warnings)
    log_root = Path(inp.log_root) if inp.log_root else None
    nodes = {p.name: p for p in inp.packages}
    limits = limits_for(settings)

    def restore(name: str) -> PackageLookup:
        h = hashes[name]
        lookup = PackageLookup(package=name, hashes=h)
        if any(t not in blobs for t in needed(h)):
            lookup.reason = "no cache entry for " + (
                "its build" if h.build not in blobs else "its tests"
            )
            return lookup
        t0 = time.perf_counter()
        pkg_dir = root / nodes[name].path
        log_dir = log_root / name_slug(name) if log_root else None
        stage = "tests"
        try:
            if not inp.build_only:
                inspect(blobs[h.test], limits)
            stage = "build"
            build_meta = extract(blobs[h.build], pkg_dir, log_dir, limits)
            steps = CachedSteps(build=StepResult.model_validate(build_meta["result"]))
            if not inp.build_only:
                stage = "tests"
                test_meta = extract(blobs[h.test], pkg_dir, log_dir, limits)
                steps.test = StepResult.model_validate(test_meta["result"])
                if test_meta.get("quality"):
                    steps.quality = StepResult.model_validate(test_meta["quality"])
        except (ArchiveRejected, KeyError, ValueError, TypeError) as e:
            warnings.add(f"cache artifact of {name} ({stage}) rejected, rebuilding: {e}")
            for task_hash in needed(h):
                if sources.get(task_hash) is CacheSource.LOCAL:
                    store.discard(task_hash)
            lookup.reason = f"cached artifact rejected: {e}"
            return lookup
        if settings.cache.local_write:
            for task_hash in needed(h):
                if sources[task_hash] is CacheSource.REMOTE:
                    store.put(task_hash, blobs[task_hash])
        lookup.hit = True
        lookup.steps = steps
        lookup.source = (
            CacheSource.REMOTE
            if CacheSource.REMOTE in (sources[t] for t in needed(h))
            else CacheSource.LOCAL
        )
        lookup.restore_ms = _ms(t0)
        return lookup

    # Packages restore into separate directories: a few at a time (decompression and file
    # writes overlap), results in the order asked.
    with ThreadPoolExecutor(RESTORE_THREADS) as pool:
        result.lookups = list(pool.map(restore, inp.names))
    result.restore_ms = _ms(restore_start)
    result.warnings = warnings.items
    return result


def _logs(log_dir: Path | None, prefixes: tuple[str, ...]) -> dict[str, Path]:
    if log_dir is None or not log_dir.is_dir():
        return {}
    return {
        p.name: p
        for p in log_dir.iterdir()
        if p.is_file() and p.suffix == ".log" and p.name.startswith(prefixes)
    }


def save(inp: SaveCacheInput) -> SaveCacheResult:
    """Pack the build and test artifacts of a package that just succeeded; store them
    locally and upload them (a failing upload is a warning, never a failure)."""
    settings = inp.settings
    out = SaveCacheResult()
    if not settings.cache.enabled:
        out.reason = "the cache is off"
        return out
    pkg_dir = Path(inp.workspace_root) / inp.package.path
    log_dir = Path(inp.log_dir) if inp.log_dir else None
    base: dict[str, Any] = {"format": FORMAT_VERSION, "package": inp.package.name}
    build = pack(
        pkg_dir,
        inp.hashes.outputs,
        _logs(log_dir, ("build",)),
        {
            **base,
            "step": "build",
            "hash": inp.hashes.build,
            "result": inp.steps.build.model_dump(mode="json", by_alias=True),
        },
    )
    artifacts = [(inp.hashes.build, build, inp.steps.build.duration_ms)]
    if inp.steps.test is not None:
        test = pack(
            pkg_dir,
            inp.hashes.test_outputs,
            _logs(log_dir, ("test", "quality")),
            {
                **base,
                "step": "test",
                "hash": inp.hashes.test,
                "result": inp.steps.test.model_dump(mode="json", by_alias=True),
                "quality": inp.steps.quality.model_dump(mode="json", by_alias=True)
                if inp.steps.quality
                else None,
            },
        )
        artifacts.append(
            (
                inp.hashes.test,
                test,
                inp.steps.test.duration_ms
                + (inp.steps.quality.duration_ms if inp.steps.quality else 0),
            )
        )
    if settings.cache.local_write:
        store = LocalStore.from_settings(settings.cache, Path(inp.workspace_root))
        for task_hash, data, _ in artifacts:
            store.put(task_hash, data)
        out.stored = True
        store.prune_if_due()
    remote = remote_for(settings)
    if remote is not None and remote.cfg.write:
        try:
            for task_hash, data, duration in artifacts:
                remote.put(task_hash, data, duration)
            out.uploaded = True
        except RemoteUnavailable as e:
            out.warnings.append(f"{UNAVAILABLE}{e}")
    return out
