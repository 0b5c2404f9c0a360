"""Output/input globs as Turborepo writes them (relative to the package directory):
``*``, ``?``, ``[...]``, ``**``, ``{a,b}``; a leading ``!`` excludes; later patterns win."""

from __future__ import annotations

from fnmatch import fnmatchcase
from functools import lru_cache

TURBO_DEFAULT = "$TURBO_DEFAULT$"


def _expand_braces(pattern: str) -> list[str]:
    start = pattern.find("{")
    end = pattern.find("}", start)
    if start < 0 or end < 0:
        return [pattern]
    head, body, tail = pattern[:start], pattern[start + 1 : end], pattern[end + 1 :]
    return [x for alt in body.split(",") for x in _expand_braces(head + alt + tail)]


def _segments_match(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    if not pattern:
        return not path
    if pattern[0] == "**":
        return any(_segments_match(pattern[1:], path[i:]) for i in range(len(path) + 1))
    return (
        bool(path) and fnmatchcase(path[0], pattern[0]) and _segments_match(pattern[1:], path[1:])
    )


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> tuple[tuple[str, ...], ...]:
    body = pattern.removeprefix("./").rstrip("/")
    return tuple(tuple(p.split("/")) for p in _expand_braces(body))


def glob_match(pattern: str, rel: str) -> bool:
    """Does ``rel`` (posix, relative) match ``pattern`` (no ``!``)? A pattern naming a
    directory (``dist``) matches what is below it too, as in turbo."""
    parts = tuple(rel.split("/"))
    for alt in _compiled(pattern):
        if _segments_match(alt, parts) or _segments_match((*alt, "**"), parts):
            return True
    return False


def select(patterns: list[str], rel: str, default: bool = False) -> bool:
    """Apply ``patterns`` in order to ``rel`` (``!`` negates); ``default`` when none match.
    ``$TURBO_DEFAULT$`` stands for "every default input"."""
    state = default
    for raw in patterns:
        negated = raw.startswith("!")
        pat = raw[1:] if negated else raw
        if pat == TURBO_DEFAULT:
            if not negated:
                state = True
            continue
        if glob_match(pat, rel):
            state = not negated
    return state
