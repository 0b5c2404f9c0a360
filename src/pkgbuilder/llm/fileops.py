"""Apply a model's file operations to a package directory, treating them as hostile input.

Every operation of an answer is validated before anything is written (all-or-nothing):

* paths are relative to the package directory: no absolute paths, drive letters, ``~``,
  backslashes, ``..``, NUL or control characters, nothing inside ``.git/`` or ``node_modules/``;
* the resolved path (every symlink followed: parent directories and the target itself) must
  stay inside the package directory; deletes touch regular files only, never a symlink;
* caps: number of operations, bytes per file, bytes per answer.

Writes are atomic per file (temporary file in the same directory + ``os.replace``) and happen
in two phases: all temporary files first, then all renames, then deletes; a failure in the
first phase removes every temporary file, so the package is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pkgbuilder.models.llm import FileOperation

FORBIDDEN_DIRS = frozenset({".git", "node_modules"})
_DRIVE = re.compile(r"^[A-Za-z]:")
_MAX_COMPONENT = 255


@dataclass(frozen=True)
class FileOpLimits:
    """Caps on one answer; defaults match ``FixSettings``."""

    max_files: int = 50
    max_file_bytes: int = 512 * 1024
    max_total_bytes: int = 4 * 1024 * 1024


class FileOperationError(ValueError):
    """One or more operations are unsafe or invalid; nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"rejected the model's file operations, nothing written: {shown}{more}")


@dataclass(frozen=True)
class PlannedChange:
    """A validated operation: where it goes and what it writes."""

    rel_path: str
    target: Path
    operation: str
    data: bytes | None = None


def normalise_path(raw: str) -> str:
    """Posix path relative to the package directory, or ``ValueError`` naming the reason."""
    if not raw:
        raise ValueError("empty path")
    if "\x00" in raw:
        raise ValueError("path contains a NUL byte")
    if any(ord(c) < 32 or c == "\x7f" for c in raw):
        raise ValueError("path contains control characters")
    if "\\" in raw:
        raise ValueError("backslashes are not allowed in paths (use /)")
    if raw.startswith(("/", "~")) or _DRIVE.match(raw):
        raise ValueError("absolute paths are not allowed")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError("'..' is not allowed in paths")
    if not parts:
        raise ValueError("the path names the package directory itself")
    if any(p.lower() in FORBIDDEN_DIRS for p in parts):
        raise ValueError("paths into .git/ or node_modules/ are not allowed")
    if any(len(p.encode("utf-8", "surrogatepass")) > _MAX_COMPONENT for p in parts):
        raise ValueError("a path component is longer than 255 bytes")
    return "/".join(parts)


def _inside(path: Path, root: Path) -> bool:
    return path != root and root in path.parents


def _forbidden_after_resolution(path: Path, root: Path) -> bool:
    return any(p.lower() in FORBIDDEN_DIRS for p in path.relative_to(root).parts)


def _check_parents_are_dirs(target: Path, root: Path) -> None:
    for parent in target.parents:
        if parent == root or root not in parent.parents:
            return
        if parent.is_symlink():  # still a symlink after realpath: a loop
            raise ValueError(f"parent '{parent.relative_to(root)}' is a symlink loop")
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"parent '{parent.relative_to(root)}' is not a directory")


def _plan_one(op: FileOperation, rel: str, root: Path) -> PlannedChange:
    candidate = root.joinpath(*rel.split("/"))
    if op.operation == "delete":
        # The last component is not followed: deleting a symlink's target is never intended.
        parent = Path(os.path.realpath(candidate.parent))
        if parent != root and not _inside(parent, root):
            raise ValueError("resolves outside the package directory")
        target = parent / candidate.name
        if _forbidden_after_resolution(target, root):
            raise ValueError("resolves into .git/ or node_modules/")
        if target.is_symlink():
            raise ValueError("is a symlink; only regular files are deleted")
        if target.exists() and not target.is_file():
            raise ValueError("is not a regular file; only regular files are deleted")
        return PlannedChange(rel, target, "delete")
    target = Path(os.path.realpath(candidate))
    if not _inside(target, root):
        raise ValueError("resolves outside the package directory")
    if target.is_symlink():  # realpath stops at a symlink loop
        raise ValueError("is a symlink loop")
    if _forbidden_after_resolution(target, root):
        raise ValueError("resolves into .git/ or node_modules/")
    if target.exists() and not target.is_file():
        raise ValueError("exists and is not a regular file")
    _check_parents_are_dirs(target, root)
    assert op.content is not None  # guaranteed by FileOperation's validator
    try:
        data = op.content.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError("content is not valid UTF-8 text") from e
    return PlannedChange(rel, target, op.operation, data)


def plan_operations(
    package_dir: Path | str, ops: Sequence[FileOperation], limits: FileOpLimits | None = None
) -> list[PlannedChange]:
    """Validate every operation against the package directory; write nothing.

    Raises:
        FileOperationError: listing every problem found (all operations are checked).
    """
    limits = limits or FileOpLimits()
    root = Path(os.path.realpath(package_dir))
    if not root.is_dir():
        raise FileOperationError([f"package directory {package_dir} does not exist"])
    problems: list[str] = []
    if len(ops) > limits.max_files:
        problems.append(f"{len(ops)} file operations exceed the limit of {limits.max_files}")
    planned: list[PlannedChange] = []
    seen: dict[Path, str] = {}
    total = 0
    for i, op in enumerate(ops):
        shown = repr(op.path[:120])
        try:
            rel = normalise_path(op.path)
            change = _plan_one(op, rel, root)
        except ValueError as e:
            problems.append(f"files[{i}] {shown}: {e}")
            continue
        size = len(change.data or b"")
        if size > limits.max_file_bytes:
            problems.append(
                f"files[{i}] {shown}: {size} bytes exceed the per-file limit of "
                f"{limits.max_file_bytes}"
            )
        total += size
        if change.target in seen:
            problems.append(f"files[{i}] {shown}: same file as {seen[change.target]!r}")
        seen[change.target] = op.path
        planned.append(change)
    if total > limits.max_total_bytes:
        problems.append(
            f"{total} bytes in total exceed the per-answer limit of {limits.max_total_bytes}"
        )
    if problems:
        raise FileOperationError(problems)
    return planned


def _write_temp(change: PlannedChange, created_dirs: list[Path]) -> Path:
    missing = [p for p in reversed(change.target.parents) if not p.exists()]
    for d in missing:
        d.mkdir()
        created_dirs.append(d)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{change.target.name}.", suffix=".pkgbuilder-tmp", dir=change.target.parent
    )
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(change.data or b"")
        mode = change.target.stat().st_mode & 0o7777 if change.target.exists() else 0o644
        os.chmod(tmp, mode)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def apply_file_operations(
    package_dir: Path | str, ops: Sequence[FileOperation], limits: FileOpLimits | None = None
) -> list[str]:
    """Validate all operations, then apply them; returns the relative paths that changed.

    Writing content identical to the file on disk and deleting a missing file are no-ops
    (so a retried activity changes nothing the second time) and are not reported as changed.

    Raises:
        FileOperationError: some operation is unsafe; nothing was written.
        OSError: the file system failed while writing temporary files (all were removed).
    """
    planned = plan_operations(package_dir, ops, limits)
    writes = [
        c
        for c in planned
        if c.operation != "delete" and not (c.target.is_file() and c.target.read_bytes() == c.data)
    ]
    deletes = [c for c in planned if c.operation == "delete" and c.target.is_file()]
    temps: list[tuple[Path, PlannedChange]] = []
    created_dirs: list[Path] = []
    try:
        for change in writes:
            temps.append((_write_temp(change, created_dirs), change))
    except BaseException:
        for tmp, _ in temps:
            with contextlib.suppress(OSError):
                tmp.unlink()
        for d in reversed(created_dirs):
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
    for tmp, change in temps:
        os.replace(tmp, change.target)
    for change in deletes:
        change.target.unlink()
    changed = {c.rel_path for c in writes} | {c.rel_path for c in deletes}
    return [c.rel_path for c in planned if c.rel_path in changed]
