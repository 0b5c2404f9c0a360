"""Raw reads of git objects for the build cache: index entries with their blob ids, the
paths whose working-tree content differs from the index, a commit's tree, blob bytes.
Paths are relative to the directory the reader was opened on; output is exact bytes (no
newline stripping), since the cache hashes contents."""

from __future__ import annotations

from pathlib import Path

from pkgbuilder.vcs.errors import GitFailed, NotARepository
from pkgbuilder.vcs.process import GitRunner, GitTimeout

DEFAULT_TIMEOUT = 120.0
SUBMODULE = b"160000"


class ObjectReader:
    """Read-only git plumbing in ``cwd`` (never takes the index lock)."""

    def __init__(self, cwd: Path, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.cwd = cwd
        self.timeout = timeout
        self._cmd = GitRunner(cwd)
        self._cmd.update_environment(GIT_OPTIONAL_LOCKS="0")

    def _bytes(self, *args: str) -> bytes:
        argv = list(args)
        try:
            status, out, err = self._cmd.run(argv, self.timeout, binary=True)
        except GitTimeout as e:
            raise GitFailed(argv, self.cwd, -1, str(e)) from e
        if status != 0:
            raise GitFailed(argv, self.cwd, status, err)
        assert isinstance(out, bytes)
        return out

    @staticmethod
    def _entries(raw: bytes) -> list[tuple[bytes, str]]:
        out = []
        for record in raw.split(b"\0"):
            if record:
                meta, _, path = record.partition(b"\t")
                out.append((meta, path.decode("utf-8", "surrogateescape")))
        return out

    def index_blobs(self) -> dict[str, str]:
        """Tracked files → blob id as staged (submodules left out)."""
        found = {}
        for meta, path in self._entries(self._bytes("ls-files", "-s", "-z")):
            parts = meta.split()
            if len(parts) >= 3 and parts[0] != SUBMODULE:
                found[path] = parts[1].decode()
        return found

    def changed_paths(self) -> list[str]:
        """Tracked files modified or deleted in the working tree, and untracked files git
        does not ignore."""
        raw = self._bytes("ls-files", "-m", "-o", "--exclude-standard", "-z")
        return sorted({p.decode("utf-8", "surrogateescape") for p in raw.split(b"\0") if p})

    def tree_blobs(self, commit: str) -> dict[str, str]:
        """Files of ``commit`` below this directory → blob id."""
        found = {}
        for meta, path in self._entries(self._bytes("ls-tree", "-r", "-z", commit, "--", ".")):
            parts = meta.split()
            if len(parts) == 3 and parts[1] == b"blob":
                found[path] = parts[2].decode()
        return found

    def blob(self, blob_id: str) -> bytes:
        return self._bytes("cat-file", "blob", blob_id)

    def commit_of(self, ref: str) -> str | None:
        """The commit ``ref`` names, None when it names none."""
        try:
            return (
                self._bytes("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
                .decode()
                .strip()
                or None
            )
        except GitFailed:
            return None

    def is_repository(self) -> bool:
        try:
            self._bytes("rev-parse", "--git-dir")
            return True
        except (GitFailed, NotARepository):
            return False

    def is_shallow(self) -> bool:
        return self._bytes("rev-parse", "--is-shallow-repository").decode().strip() == "true"
