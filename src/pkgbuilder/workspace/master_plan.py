"""The master plan (the seed's "audit report"): a markdown file listing the packages of a
suite with their category, dependencies and optional path.

Format (see docs/workspaces.md)::

    ## Packages

    - @acme/backoff (validator)
    - @acme/retry-policy (core) — depends on: @acme/backoff
    - @acme/http-client (utility) — depends on: @acme/retry-policy — path: libs/http-client

Only top-level bullets inside a heading named "Packages" are read; prose, deeper headings
(e.g. ``### Layer 0``), indented bullets and code blocks are ignored. Pure module, no I/O
beyond reading the file.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from pydantic import Field

from pkgbuilder.models.common import Category, Model
from pkgbuilder.workspace.graph import WorkspaceError

_CATEGORY_WORDS: dict[str, Category] = {c.value: c for c in Category} | {
    "validators": Category.VALIDATOR,
    "utilities": Category.UTILITY,
    "services": Category.SERVICE,
    "suites": Category.SUITE,
}
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^ ?[-*+]\s+(.*\S)\s*$")
_SEPARATOR = re.compile(r"\s+(?:\u2014|\u2013|--|-)\s+")
_HEAD = re.compile(r"^`?(?P<name>[^\s`()]+)`?\s*\(\s*(?P<category>[^()]*?)\s*\)$")
_CLAUSE = re.compile(r"^(?P<key>depends on|dependencies|deps|path)\s*:\s*(?P<value>.*)$", re.I)
_NO_DEPS = {"", "none", "-", "\u2014", "\u2013", "n/a"}
# npm's rules for new package names: lower case, url-safe, optional scope.
_PACKAGE_NAME = re.compile(r"^(?:@[a-z0-9~-][a-z0-9._~-]*/)?[a-z0-9~-][a-z0-9._~-]*$")
_FORMAT_HINT = "'- @scope/name (category) — depends on: @scope/dep'"


def parse_category(word: str) -> Category | None:
    """``"core"``/``"utilities"`` -> Category; None when the word is no category."""
    return _CATEGORY_WORDS.get(word.strip().lower())


def is_valid_package_name(name: str) -> bool:
    """Whether ``name`` is an npm package name (``@scope/name`` or ``name``, lower case)."""
    return len(name) <= 214 and bool(_PACKAGE_NAME.match(name))


def unscoped(name: str) -> str:
    """``@acme/retry-policy`` -> ``retry-policy``."""
    return name.rsplit("/", 1)[-1]


def confined_relative_path(text: str) -> str | None:
    """A normalised posix path inside the workspace, or None when ``text`` is absolute or
    climbs out of it with ``..`` (plans may be model-written: treat paths as hostile)."""
    if not text or "\\" in text or text.startswith(("/", "~")):
        return None
    parts = [p for p in PurePosixPath(text).parts if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


class PlannedPackage(Model):
    """One package as the master plan declares it."""

    name: str
    category: Category
    dependencies: list[str] = Field(default_factory=list)
    path: str | None = None  # relative to the workspace root; None = default location
    line: int = 0  # 1-based line in the plan, for error messages


class MasterPlan(Model):
    path: str
    packages: list[PlannedPackage]


def parse_master_plan(path: Path) -> MasterPlan:
    """Read and validate a master plan.

    Raises:
        WorkspaceError: the file is missing or unreadable, has no "Packages" section or no
            package in it, or a bullet is malformed (message names file and line).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise WorkspaceError(f"Master plan {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise WorkspaceError(f"Master plan {path} cannot be read: {e}.") from None
    return parse_master_plan_text(text, str(path))


def parse_master_plan_text(text: str, source: str = "master plan") -> MasterPlan:
    """Parse master plan markdown; ``source`` names the file in error messages."""
    packages: list[PlannedPackage] = []
    seen: dict[str, int] = {}
    found_section = False
    section_level: int | None = None
    in_fence = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        heading = _HEADING.match(line)
        if heading:
            level = len(heading.group(1))
            if heading.group(2).strip().lower() == "packages":
                found_section, section_level = True, level
            elif section_level is not None and level <= section_level:
                section_level = None
            continue
        bullet = _BULLET.match(line)
        if section_level is None or bullet is None:
            continue
        planned = _parse_bullet(bullet.group(1), number, source)
        if planned.name in seen:
            raise WorkspaceError(
                f"{source} lists {planned.name} twice (lines {seen[planned.name]} and {number})."
            )
        seen[planned.name] = number
        packages.append(planned)
    if not found_section:
        raise WorkspaceError(
            f"{source} has no '## Packages' section: list each package under it as {_FORMAT_HINT}."
        )
    if not packages:
        raise WorkspaceError(
            f"{source} lists no packages: add bullets like {_FORMAT_HINT} under '## Packages'."
        )
    return MasterPlan(path=source, packages=packages)


def _parse_bullet(body: str, number: int, source: str) -> PlannedPackage:
    where = f"{source} line {number}"
    head, *clauses = _SEPARATOR.split(body)
    match = _HEAD.match(head.strip())
    if match is None:
        raise WorkspaceError(f"{where}: expected {_FORMAT_HINT}, got '{body}'.")
    name = match.group("name")
    if not is_valid_package_name(name):
        raise WorkspaceError(f"{where}: '{name}' is not a valid npm package name.")
    category = parse_category(match.group("category"))
    if category is None:
        allowed = ", ".join(c.value for c in Category)
        raise WorkspaceError(
            f"{where}: unknown category '{match.group('category')}' for {name} "
            f"(use one of {allowed})."
        )
    dependencies: list[str] = []
    path: str | None = None
    for clause in clauses:
        parsed = _CLAUSE.match(clause.strip())
        if parsed is None:
            raise WorkspaceError(
                f"{where}: unknown clause '{clause.strip()}' (expected 'depends on:' or 'path:')."
            )
        value = parsed.group("value").strip()
        if parsed.group("key").lower() == "path":
            path = confined_relative_path(value.strip("`"))
            if path is None:
                raise WorkspaceError(
                    f"{where}: path '{value}' of {name} must be a relative path inside the "
                    "workspace."
                )
            continue
        for dep in _split_deps(value):
            if not is_valid_package_name(dep):
                raise WorkspaceError(
                    f"{where}: dependency '{dep}' of {name} is not a valid npm package name."
                )
            if dep not in dependencies:
                dependencies.append(dep)
    return PlannedPackage(
        name=name, category=category, dependencies=dependencies, path=path, line=number
    )


def _split_deps(value: str) -> list[str]:
    if value.strip().lower() in _NO_DEPS:
        return []
    return [d.strip().strip("`") for d in re.split(r"[,\s]+", value) if d.strip().strip("`")]
