"""Parsers of git's machine-readable output (pure functions, no git)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The log format :func:`log_records` reads: hash, unit separator, body, record separator.
LOG_FORMAT = "--format=%H%x1f%B%x1e"


@dataclass(frozen=True)
class Worktree:
    """One entry of ``git worktree list --porcelain``."""

    path: Path
    head: str | None
    branch: str | None  # short name, None when detached
    prunable: bool = False


def porcelain_paths(out: str) -> list[str]:
    """The paths of ``git status --porcelain=v1 -z`` output, relative to the repository's
    top level (a rename's source path is skipped)."""
    paths: list[str] = []
    entries = out.split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        if entry[0] in "RC":  # a rename is followed by its source path
            i += 1
        paths.append(entry[3:])
    return paths


def worktree_list(out: str) -> list[Worktree]:
    """The entries of ``git worktree list --porcelain`` (the main worktree first)."""
    result: list[Worktree] = []
    for block in out.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition(" ")
            fields[key] = value
        if "worktree" not in fields:
            continue
        branch = fields.get("branch")
        result.append(
            Worktree(
                path=Path(fields["worktree"]),
                head=fields.get("HEAD"),
                branch=branch.removeprefix("refs/heads/") if branch else None,
                prunable="prunable" in fields,
            )
        )
    return result


def log_records(out: str) -> Iterator[tuple[str, str]]:
    """(hash, message) pairs of ``git log`` run with :data:`LOG_FORMAT`, newest first."""
    for record in out.split("\x1e"):
        sha, _, body = record.strip("\n").partition("\x1f")
        if sha.strip():
            yield sha.strip(), body


def z_list(out: str) -> list[str]:
    """The entries of NUL-separated output (``-z``)."""
    return [p for p in out.split("\0") if p]
