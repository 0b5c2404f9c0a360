"""Output/input globs as Turborepo writes them (relative to the package directory):
``*``, ``?``, ``[...]``, ``**``, ``{a,b}``; a leading ``!`` excludes; later patterns win."""

from __future__ import annotations

from functools import lru_cache

from pkgbuilder.workspace.globs import expand_braces, segments_match

TURBO_DEFAULT = "$TURBO_DEFAULT$"


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> tuple[tuple[str, ...], ...]:
    body = pattern.removeprefix("./").rstrip("/")
    return tuple(tuple(p.split("/")) for p in expand_braces(body))


def glob_match(pattern: str, rel: str) -> bool:
    """Does ``rel`` (posix, relative) match ``pattern`` (no ``!``)? A pattern naming a
    directory (``dist``) matches what is below it too, as in turbo."""
    parts = tuple(rel.split("/"))
    for alt in _compiled(pattern):
        if segments_match(alt, parts) or segments_match((*alt, "**"), parts):
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
