"""Relative imports that reach into another workspace package without a declared edge.

``import x from '../../other/esm'`` builds after ``other`` under ``npm run build
--workspaces`` only because of declaration order; nothing in a package.json says so. This
scan finds such imports statically (relative specifiers in ``import``/``export``/``require``
/``import()`` of JS/TS sources, tests and build output excluded) so the user can declare
the edge (``pkgbuilder.dependsOn``
or ``graph.dependsOn``). It cannot see a build that reads files by computed paths, from
config files or through tools: see docs/workspaces.md for that limit. Pure: reads files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from pkgbuilder.models.build import PackageNode
from pkgbuilder.workspace.graph import transitive_dependencies

SOURCE_SUFFIXES = (".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx")
# Build output and tests: a test importing a sibling's sources is common and runs after
# every build anyway; what orders builds is what the build itself reads.
SKIP_DIRS = {
    "node_modules",
    "dist",
    "build",
    "coverage",
    "lib-cov",
    "out",
    "__tests__",
    "__mocks__",
    "__fixtures__",
    "test",
    "tests",
    "fixtures",
    "e2e",
}
_TEST_FILE = re.compile(r"\.(?:test|spec)\.[cm]?[jt]sx?$")
MAX_FILE_BYTES = 512 * 1024
MAX_FILES_PER_PACKAGE = 2000
_SPECIFIER = re.compile(
    r"""(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*|\bexport\s*\*\s*from\s*)"""
    r"""['"](\.\.?/[^'"\n]+)['"]"""
)


def _sources(package_dir: Path) -> list[Path]:
    found: list[Path] = []
    for current, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if (
                name.endswith(SOURCE_SUFFIXES)
                and not name.endswith(".d.ts")
                and not _TEST_FILE.search(name)
            ):
                found.append(Path(current) / name)
                if len(found) >= MAX_FILES_PER_PACKAGE:
                    return found
    return found


def _owner(rel: str, dirs: list[tuple[str, str]]) -> str | None:
    """The package (deepest directory) that contains ``rel``."""
    best: tuple[int, str] | None = None
    for name, pkg_dir in dirs:
        inside = rel == pkg_dir or rel.startswith(pkg_dir + "/")
        if inside and (best is None or len(pkg_dir) > best[0]):
            best = (len(pkg_dir), name)
    return best[1] if best else None


def _normalise(path: PurePosixPath) -> str | None:
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if not parts:
                return None  # leaves the workspace
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def undeclared_sibling_imports(root: Path, nodes: list[PackageNode]) -> list[str]:
    """One sentence per (package, sibling) pair: a relative import from one workspace
    package into another that is not among its (transitive) dependencies."""
    dirs = [(n.name, n.path) for n in nodes if n.exists]
    warnings: list[str] = []
    for node in nodes:
        if not node.exists:
            continue
        needed = transitive_dependencies(nodes, node.name)
        seen: set[str] = set()
        for source in _sources(root / node.path):
            try:
                if source.stat().st_size > MAX_FILE_BYTES:
                    continue
                text = source.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            rel_dir = PurePosixPath(source.parent.relative_to(root).as_posix())
            for spec in _SPECIFIER.findall(text):
                target = _normalise(rel_dir / spec)
                other = _owner(target, dirs) if target is not None else None
                if other is None or other == node.name or other in needed or other in seen:
                    continue
                seen.add(other)
                shown = source.relative_to(root).as_posix()
                warnings.append(
                    f"{node.name} imports '{spec}' ({shown}) from {other} without depending "
                    f"on it: declare it (pkgbuilder.dependsOn in its package.json, or "
                    f"[graph.dependsOn]) or its build order is left to chance."
                )
    return warnings
