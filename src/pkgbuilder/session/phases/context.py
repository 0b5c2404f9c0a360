"""What a phase gets to see of the package: its file tree and, within a size budget, the
contents of the files its globs name.

Reads the package directory as it is on disk at prompt time, so every phase sees what the
earlier phases wrote (the original never showed later phases those files). Symlinks are not
followed and generated/vendored directories are skipped.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

# Skipped anywhere / only at the package's top level (build outputs, caches).
SKIP_DIRS = frozenset({"node_modules", ".git"})
SKIP_TOP_DIRS = frozenset({"dist", "coverage", "build", ".turbo", ".cache", ".nyc_output"})
MAX_TREE_ENTRIES = 400


def glob_match(path: str, pattern: str) -> bool:
    """Match a posix path against a glob where ``**`` spans directories and ``*`` does not."""
    return _match(path.split("/"), pattern.split("/"))


def _match(parts: list[str], pats: list[str]) -> bool:
    if not pats:
        return not parts
    head, rest = pats[0], pats[1:]
    if head == "**":
        return any(_match(parts[i:], rest) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], head) and _match(parts[1:], rest)


def matches_any(path: str, patterns: Iterable[str]) -> bool:
    return any(glob_match(path, p) for p in patterns)


def package_files(package_dir: Path) -> list[str]:
    """Regular files of the package (posix, relative), skipping generated directories."""
    if not package_dir.is_dir():
        return []
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(package_dir, followlinks=False):
        base = Path(dirpath)
        top = base == package_dir
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIP_DIRS and not (top and d in SKIP_TOP_DIRS)
        )
        for name in sorted(filenames):
            full = base / name
            if full.is_symlink() or not full.is_file():
                continue
            out.append(full.relative_to(package_dir).as_posix())
    return sorted(out)


def render_tree(files: Sequence[str]) -> str:
    """The file tree block of a prompt (capped)."""
    if not files:
        return "## Package file tree\n\n(empty: the package directory has no files yet)"
    shown = list(files[:MAX_TREE_ENTRIES])
    more = len(files) - len(shown)
    tail = f"\n… and {more} more files" if more > 0 else ""
    return "## Package file tree\n\n" + "\n".join(shown) + tail


def _read_text(path: Path, limit: int) -> str | None:
    try:
        if path.stat().st_size > limit * 4 + 4:  # cheap pre-check before decoding
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data:
        return None  # binary
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def gather_files(
    package_dir: Path, patterns: Sequence[str], budget_chars: int
) -> tuple[list[tuple[str, str]], list[str]]:
    """Contents of the files matching ``patterns`` (in pattern priority order) that fit into
    ``budget_chars``; returns (path, text) pairs and the matching paths left out."""
    files = package_files(package_dir)
    chosen: list[str] = []
    for pattern in patterns:
        for f in files:
            if f not in chosen and glob_match(f, pattern):
                chosen.append(f)
    included: list[tuple[str, str]] = []
    omitted: list[str] = []
    remaining = budget_chars
    for rel in chosen:
        text = _read_text(package_dir / rel, remaining)
        if text is None or len(text) > remaining:
            omitted.append(rel)
            continue
        included.append((rel, text))
        remaining -= len(text)
    return included, omitted
