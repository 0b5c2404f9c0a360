"""Are a package's build outputs up to date with its sources? (PLAN's registry check.)

PLAN packs a package *before* BUILD runs, so the tarball holds whatever build outputs are on
disk. If a source changed since the last build, the stale outputs could match the registry
and the package would be skipped although its next build would differ. PLAN therefore skips a
package only when its outputs are at least as new as its sources, as ``make`` would decide:

- sources: files git tracks or would track in the package directory
  (``git ls-files --cached --others --exclude-standard``);
- outputs: files in the tarball that are not sources (generated, git-ignored: ``dist/``...).

No outputs (the tarball is all sources) → fresh. Not a git work tree → fresh only when the
package has no ``build`` script (nothing can be stale). Anything unsure → not fresh: the
package is then built and its publish step decides, which is always correct, only slower.
"""

from __future__ import annotations

from pathlib import Path

from pkgbuilder.vcs import Repository, VcsError


def _git_sources(pkg_dir: Path) -> set[str] | None:
    try:
        return set(Repository(pkg_dir, timeout=60).tracked_files(".", untracked=True))
    except VcsError:  # not a repository, no git, or it took too long
        return None


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def outputs_fresh(pkg_dir: Path, packed_files: set[str], has_build_script: bool) -> bool:
    """True when every packed build output is at least as new as every source file."""
    sources = _git_sources(pkg_dir)
    if sources is None:
        return not has_build_script
    outputs = packed_files - sources
    if not outputs:
        return True
    source_times = [t for s in sources if (t := _mtime(pkg_dir / s)) is not None]
    output_times = [_mtime(pkg_dir / o) for o in outputs]
    if not source_times:
        return True
    if any(t is None for t in output_times):
        return False  # a packed file we cannot find on disk: be safe
    return min(t for t in output_times if t is not None) >= max(source_times)
