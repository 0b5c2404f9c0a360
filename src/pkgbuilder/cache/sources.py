"""Where a hash's input files come from: the working tree (git index + modified and
untracked files) or a git tree at a ref (``--affected``). Paths are posix, relative to the
workspace root; every file is identified by its git blob id, so the same content hashes
the same in any checkout, worktree or directory."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from pkgbuilder.errors import UserError
from pkgbuilder.vcs.errors import VcsError
from pkgbuilder.vcs.objects import ObjectReader

_SKIP_DIRS = {"node_modules", ".git"}


def blob_id(data: bytes) -> str:
    """The git blob id of ``data`` (what ``git hash-object`` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class FileSource:
    """Files of one snapshot: ``files`` maps each path to its blob id."""

    files: dict[str, str]
    tracked: set[str]

    def read(self, rel: str) -> bytes | None:  # pragma: no cover - interface
        raise NotImplementedError

    def under(self, prefix: str) -> Iterable[tuple[str, str]]:
        """(path relative to ``prefix``, blob id) of the files below directory ``prefix``."""
        if prefix in ("", "."):
            yield from self.files.items()
            return
        base = prefix.rstrip("/") + "/"
        for path, blob in self.files.items():
            if path.startswith(base):
                yield path[len(base) :], blob


class WorkingTree(FileSource):
    """The working tree as it is now. In a git repository: tracked files at their current
    content plus untracked files git does not ignore; elsewhere every file outside
    ``node_modules`` and ``.git``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = {}
        self.tracked = set()
        reader = ObjectReader(root)
        try:
            self._from_git(reader)
        except VcsError:
            self.files, self.tracked = {}, set()
            self._walk()

    def _from_git(self, reader: ObjectReader) -> None:
        self.files = reader.index_blobs()
        self.tracked = set(self.files)
        for rel in reader.changed_paths():
            if "node_modules" in rel.split("/"):
                continue
            data = self.read(rel)
            if data is None:
                self.files.pop(rel, None)  # deleted in the working tree
                self.tracked.discard(rel)
            else:
                self.files[rel] = blob_id(data)

    def _walk(self) -> None:
        for current, dirs, names in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
            for name in names:
                full = Path(current) / name
                rel = full.relative_to(self.root).as_posix()
                data = self.read(rel)
                if data is not None:
                    self.files[rel] = blob_id(data)

    def read(self, rel: str) -> bytes | None:
        path = self.root / rel
        try:
            if path.is_symlink():
                return os.readlink(path).encode()  # git hashes a link's target text
            return path.read_bytes()
        except (OSError, ValueError):
            return None


class GitTree(FileSource):
    """The files of commit ``ref`` (nothing is checked out)."""

    def __init__(self, root: Path, ref: str) -> None:
        self.root = root
        self.ref = ref
        self._reader = ObjectReader(root)
        self.files = self._reader.tree_blobs(ref)
        self.tracked = set(self.files)
        self._cache: dict[str, bytes | None] = {}

    def read(self, rel: str) -> bytes | None:
        if rel not in self._cache:
            blob = self.files.get(rel)
            self._cache[rel] = None if blob is None else self._reader.blob(blob)
        return self._cache[rel]


def resolve_ref(root: Path, ref: str) -> str:
    """The commit id of ``ref``, or one clear sentence (unknown ref, shallow clone)."""
    reader = ObjectReader(root)
    if not reader.is_repository():
        raise UserError(f"{root} is not a git repository, so --affected cannot compare refs.")
    commit = reader.commit_of(ref)
    if commit is not None:
        return commit
    if reader.is_shallow():
        raise UserError(
            f"'{ref}' is not in this shallow clone; fetch more history (git fetch "
            f"--unshallow, or fetch-depth: 0 in CI) to compare against it."
        )
    raise UserError(f"'{ref}' is not a known git ref in {root}.")
