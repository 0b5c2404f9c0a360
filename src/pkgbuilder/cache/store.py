"""The local cache: ``<dir>/artifacts/<hh>/<hash>.tgz`` (content-addressed by task hash),
``<dir>/manifests/<hh>/<hash>.json`` and ``<dir>/builds/<buildId>.json`` (the hashes a build
used, for ``pkgbuilder hash --against``). Writes are atomic (temporary file + rename); an
artifact's modification time is its last use, and ``prune`` evicts the least recently used
artifacts until the cache fits its size cap (after a store: ``prune_if_due``)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from pkgbuilder.config import CacheSettings, resolve_home
from pkgbuilder.models.cache import TaskManifest
from pkgbuilder.util.atomic import write_bytes_atomic
from pkgbuilder.util.state_dirs import ensure_state_dir

_HASH = re.compile(r"^[0-9a-f]{16,64}$")
_BUILD_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


CACHE_DIR_ENV = "PKGBUILDER_CACHE_DIR"


def cache_dir(
    settings: CacheSettings, workspace: Path | None = None, env: dict[str, str] | None = None
) -> Path:
    """``cache.dir``, else ``$PKGBUILDER_CACHE_DIR``, else ``cache`` in the pkgbuilder home
    of ``workspace`` (``$PKGBUILDER_HOME``, or the workspace's ``.pkgbuilder``)."""
    env = dict(os.environ) if env is None else env
    chosen = settings.dir or env.get(CACHE_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser().resolve()
    return ensure_state_dir(resolve_home(workspace, env)) / "cache"


@dataclass(frozen=True)
class StoreStatus:
    dir: str
    artifacts: int
    bytes: int
    max_bytes: int
    manifests: int
    oldest: float | None
    newest: float | None


# After a store, the cache is pruned at most once per this many seconds (the marker file
# ``artifacts/.pruned`` holds the time of the last scan): a prune stats every artifact, which
# on a cache of 20,000 artifacts took 150 ms, once per built package. Between two scans the
# cache can outgrow its cap by what the builds of those seconds stored.
PRUNE_INTERVAL_S = 60.0
PRUNE_MARKER = ".pruned"


class LocalStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    @classmethod
    def from_settings(cls, settings: CacheSettings, workspace: Path | None = None) -> LocalStore:
        return cls(cache_dir(settings, workspace), settings.max_size_mb * 1024 * 1024)

    def _artifact(self, task_hash: str) -> Path:
        if not _HASH.match(task_hash):
            raise ValueError(f"not a task hash: {task_hash!r}")
        return self.root / "artifacts" / task_hash[:2] / f"{task_hash}.tgz"

    def _manifest(self, task_hash: str) -> Path:
        if not _HASH.match(task_hash):
            raise ValueError(f"not a task hash: {task_hash!r}")
        return self.root / "manifests" / task_hash[:2] / f"{task_hash}.json"

    # -- artifacts -----------------------------------------------------------------------

    def has(self, task_hash: str) -> bool:
        return self._artifact(task_hash).is_file()

    def get(self, task_hash: str) -> bytes | None:
        path = self._artifact(task_hash)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # last use, for LRU eviction
        return data

    def put(self, task_hash: str, data: bytes) -> None:
        # Atomic but not fsynced: after an OS crash an entry may be empty or torn, and a
        # restore validates every artifact (a bad one is a reported miss and discarded), so
        # the flushes (two per write, paid on every package's build) buy nothing.
        write_bytes_atomic(self._artifact(task_hash), data, durable=False)

    def discard(self, task_hash: str) -> None:
        """Remove a corrupt or rejected artifact so it is not tried again."""
        self._artifact(task_hash).unlink(missing_ok=True)

    # -- manifests and build records -----------------------------------------------------

    def put_manifest(self, manifest: TaskManifest) -> None:
        path = self._manifest(manifest.hash)
        if not path.is_file():
            write_bytes_atomic(
                path, manifest.model_dump_json(by_alias=True).encode(), durable=False
            )

    def get_manifest(self, task_hash: str) -> TaskManifest | None:
        try:
            return TaskManifest.model_validate_json(self._manifest(task_hash).read_bytes())
        except (OSError, ValueError):
            return None

    def record_build(self, build_id: str, hashes: dict[str, dict[str, str]]) -> None:
        """``{package: {"build": hash, "test": hash}}`` of one build (merged on repeats)."""
        if not _BUILD_ID.match(build_id):
            return
        path = self.root / "builds" / f"{build_id}.json"
        current = self.build_hashes(build_id) or {}
        current.update(hashes)
        write_bytes_atomic(path, json.dumps(current, indent=1, sort_keys=True).encode())

    def build_hashes(self, build_id: str) -> dict[str, dict[str, str]] | None:
        if not _BUILD_ID.match(build_id):
            return None
        try:
            data = json.loads((self.root / "builds" / f"{build_id}.json").read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def latest_build(self) -> str | None:
        builds = self.root / "builds"
        try:
            newest = max(builds.glob("*.json"), key=lambda p: p.stat().st_mtime)
        except (OSError, ValueError):
            return None
        return newest.stem

    # -- size cap ------------------------------------------------------------------------

    def _entries(self) -> list[tuple[float, int, Path]]:
        out: list[tuple[float, int, Path]] = []
        base = self.root / "artifacts"
        if not base.is_dir():
            return out
        for sub in os.scandir(base):
            if not sub.is_dir():
                continue
            for entry in os.scandir(sub.path):
                if entry.name.endswith(".tgz"):
                    with contextlib.suppress(OSError):
                        st = entry.stat()
                        out.append((st.st_mtime, st.st_size, Path(entry.path)))
        return out

    def status(self) -> StoreStatus:
        entries = self._entries()
        manifests = (
            sum(1 for _ in (self.root / "manifests").glob("*/*.json"))
            if (self.root / "manifests").is_dir()
            else 0
        )
        times = [e[0] for e in entries]
        return StoreStatus(
            dir=str(self.root),
            artifacts=len(entries),
            bytes=sum(e[1] for e in entries),
            max_bytes=self.max_bytes,
            manifests=manifests,
            oldest=min(times) if times else None,
            newest=max(times) if times else None,
        )

    def prune_if_due(self, interval_s: float = PRUNE_INTERVAL_S) -> tuple[int, int] | None:
        """:meth:`prune` unless the last one (by any process) was under ``interval_s`` ago;
        None when it was skipped."""
        marker = self.root / "artifacts" / PRUNE_MARKER
        try:
            if time.time() - marker.stat().st_mtime < interval_s:
                return None
        except OSError:
            pass  # never pruned
        with contextlib.suppress(OSError):
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        return self.prune()

    def prune(
        self, max_bytes: int | None = None, older_than_s: float | None = None
    ) -> tuple[int, int]:
        """Evict least recently used artifacts until the total fits ``max_bytes`` (default
        the cap), and any unused for ``older_than_s``. Returns (removed, bytes freed)."""
        cap = self.max_bytes if max_bytes is None else max_bytes
        entries = sorted(self._entries())
        total = sum(e[1] for e in entries)
        now = time.time()
        removed = freed = 0
        for mtime, size, path in entries:
            too_old = older_than_s is not None and now - mtime > older_than_s
            if total <= cap and not too_old:
                continue
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
                freed += size
                total -= size
        return removed, freed
