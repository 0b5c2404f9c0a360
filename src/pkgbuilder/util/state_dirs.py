"""Directories pkgbuilder creates for its own state carry their own ``.gitignore``, so the
user's repository stays clean (``git status`` shows nothing of pkgbuilder's)."""

from __future__ import annotations

import contextlib
from pathlib import Path

GITIGNORE = "# pkgbuilder's own state (reports, logs, server data): never committed\n*\n"


def ensure_state_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with a ``.gitignore`` that ignores everything in it;
    an existing ``.gitignore`` is left as the user wrote it."""
    path.mkdir(parents=True, exist_ok=True)
    marker = path / ".gitignore"
    if not marker.exists():
        with contextlib.suppress(OSError):  # read-only location: nothing to keep clean
            marker.write_text(GITIGNORE, encoding="utf-8")
    return path
