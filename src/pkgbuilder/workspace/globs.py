"""Workspace glob matching as npm, yarn and pnpm understand it.

Supports ``*``, ``?``, ``[...]``, ``**`` (any number of directories), ``{a,b}`` and
negation with a leading ``!``. Patterns apply in order, so a later ``!pattern`` removes
what an earlier one added and a later positive pattern can add it back. ``node_modules``
and hidden directories are never workspace packages.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

_GLOB_CHARS = set("*?[{")
_SKIP_DIRS = {"node_modules"}


def expand_braces(pattern: str) -> list[str]:
    """``a{b,c}d`` -> ``[abd, acd]`` (nested and repeated groups too)."""
    start = pattern.find("{")
    end = pattern.find("}", start)
    if start < 0 or end < 0:
        return [pattern]
    head, body, tail = pattern[:start], pattern[start + 1 : end], pattern[end + 1 :]
    return [x for alt in body.split(",") for x in expand_braces(head + alt + tail)]


def segments_match(pattern: Sequence[str], path: Sequence[str]) -> bool:
    """Do path segments match pattern segments (``**`` spans any number of them)?"""
    if not pattern:
        return not path
    if pattern[0] == "**":
        return any(segments_match(pattern[1:], path[i:]) for i in range(len(path) + 1))
    return bool(path) and fnmatchcase(path[0], pattern[0]) and segments_match(pattern[1:], path[1:])


@dataclass(frozen=True)
class WorkspaceGlob:
    """One workspace entry: a directory glob, or ``!glob`` to exclude what it matches."""

    negated: bool
    alternatives: tuple[tuple[str, ...], ...]  # brace-expanded, split into segments

    @classmethod
    def parse(cls, text: str) -> WorkspaceGlob:
        negated = text.startswith("!")
        body = text[1:].strip() if negated else text
        body = body.removeprefix("./").rstrip("/")
        return cls(negated, tuple(tuple(p.split("/")) for p in expand_braces(body)))

    @property
    def literal(self) -> str | None:
        """The directory a glob-free pattern names."""
        if len(self.alternatives) != 1 or any(_GLOB_CHARS & set(s) for s in self.alternatives[0]):
            return None
        return "/".join(self.alternatives[0])

    def matches(self, rel: str) -> bool:
        parts = rel.split("/")
        return any(segments_match(list(alt), parts) for alt in self.alternatives)


def _walk(root: Path, segments: tuple[str, ...]) -> set[str]:
    """Directories under the pattern's glob-free prefix, down to the pattern's depth."""
    prefix: list[str] = []
    for seg in segments:
        if _GLOB_CHARS & set(seg):
            break
        prefix.append(seg)
    unlimited = "**" in segments
    base = root.joinpath(*prefix)
    found: set[str] = set()
    if not base.is_dir() or ".." in segments:
        return found
    for current, dirs, _files in os.walk(base):
        rel = Path(current).relative_to(root).as_posix()
        if rel != ".":
            found.add(rel)
        depth = 0 if rel == "." else rel.count("/") + 1
        dirs[:] = (
            sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
            if unlimited or depth < len(segments)
            else []
        )
    return found


def matching_directories(root: Path, patterns: list[str]) -> list[str]:
    """Directories (relative posix paths, sorted) that the workspace patterns include."""
    globs = [WorkspaceGlob.parse(p) for p in patterns]
    candidates: set[str] = set()
    for glob in globs:
        if not glob.negated:
            for alt in glob.alternatives:
                candidates |= _walk(root, alt)
    included: list[str] = []
    for rel in sorted(candidates):
        state = False
        for glob in globs:
            if glob.matches(rel):
                state = not glob.negated
        if state:
            included.append(rel)
    return included


def literal_entries(patterns: list[str]) -> list[str]:
    """Glob-free positive entries (e.g. ``apps/web``): they must name a real package."""
    literals = (WorkspaceGlob.parse(p) for p in patterns)
    return [g.literal for g in literals if g.literal is not None and not g.negated]


def declaration_index(patterns: list[str], rel: str) -> int:
    """Index of the first positive pattern that matches ``rel`` (its place in the order the
    workspace declares packages; ``len(patterns)`` when none does)."""
    for i, text in enumerate(patterns):
        glob = WorkspaceGlob.parse(text)
        if not glob.negated and glob.matches(rel):
            return i
    return len(patterns)
