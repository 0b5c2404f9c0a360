"""Parse a package plan in the operator guide's format.

```
# Package: @acme/data-validator
## Purpose
## Core Interfaces            (bullets)
## Implementation Files       (bullets: paths relative to the package)
## Dependencies               (bullets; "none" allowed)
## Testing Strategy           (bullets; "Target coverage: 90%" is read)
```
Other ``##`` sections are kept and shown to the model as part of the plan.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from pydantic import Field

from pkgbuilder.models.common import Model
from pkgbuilder.session.errors import SessionError

REQUIRED_SECTIONS = (
    "Purpose",
    "Core Interfaces",
    "Implementation Files",
    "Dependencies",
    "Testing Strategy",
)
MAX_PLAN_CHARS = 60_000

_TITLE = re.compile(r"^#\s+(?:Package:\s*)?(?P<name>\S.*?)\s*$")
_SECTION = re.compile(r"^##\s+(?P<title>.+?)\s*#*\s*$")
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(?P<item>.+?)\s*$")
_COVERAGE = re.compile(r"coverage[^0-9\n]{0,20}(?P<pct>\d{1,3}(?:\.\d+)?)\s*%", re.IGNORECASE)
_PATH_TOKEN = re.compile(r"`([^`]+)`|(\S+)")
_NONE = re.compile(r"^(none|n/a|no dependencies)\b|^-$", re.IGNORECASE)


class PlanError(SessionError):
    """The plan file cannot be used (one sentence naming the problem and the fix)."""


class PackagePlan(Model):
    """A parsed plan; ``text`` is the plan as written (shown to the model verbatim)."""

    package_name: str | None = None
    purpose: str
    core_interfaces: list[str]
    implementation_files: list[str]
    dependencies: list[str] = Field(default_factory=list)
    testing_strategy: list[str] = Field(default_factory=list)
    coverage_target: float | None = None
    other_sections: list[str] = Field(default_factory=list)
    text: str


def _bullets(lines: list[str]) -> list[str]:
    items = []
    for line in lines:
        m = _BULLET.match(line)
        if m:
            items.append(m.group("item"))
        elif line.strip() and items and line.startswith((" ", "\t")):
            items[-1] += " " + line.strip()  # continuation of a wrapped bullet
    return items


def _implementation_path(item: str, where: str) -> str:
    m = _PATH_TOKEN.search(item)
    token = (m.group(1) or m.group(2)) if m else item
    token = token.strip().rstrip(",;:")
    path = PurePosixPath(token)
    if (
        not token
        or token.startswith(("/", "\\"))
        or re.match(r"^[A-Za-z]:", token)
        or ".." in path.parts
        or "\0" in token
    ):
        raise PlanError(
            f"{where}: implementation file '{token}' must be a path relative to the package "
            "directory (no leading '/', no '..')."
        )
    return str(path)


def parse_plan(text: str, where: str = "plan") -> PackagePlan:
    """Parse ``text``; ``where`` names the file in error messages.

    Raises:
        PlanError: a required section is missing or empty, or a path is unsafe.
    """
    if len(text) > MAX_PLAN_CHARS:
        raise PlanError(f"{where} is larger than {MAX_PLAN_CHARS} characters; shorten it.")
    name: str | None = None
    sections: dict[str, list[str]] = {}
    titles: dict[str, str] = {}
    current: str | None = None
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        if not in_fence:
            sm = _SECTION.match(line)
            if sm:
                title = sm.group("title").strip()
                current = title.lower()
                titles[current] = title
                sections.setdefault(current, [])
                continue
            tm = _TITLE.match(line)
            if tm and name is None and current is None:
                name = tm.group("name")
                continue
        if current is not None:
            sections[current].append(line)
    missing = [s for s in REQUIRED_SECTIONS if s.lower() not in sections]
    if missing:
        listed = ", ".join(f"'## {s}'" for s in missing)
        raise PlanError(
            f"{where} is missing the section{'s' if len(missing) > 1 else ''} {listed}; "
            "see 'Plan format' in docs/generation.md."
        )
    purpose = "\n".join(sections["purpose"]).strip()
    if not purpose:
        raise PlanError(f"{where}: the '## Purpose' section is empty; say what the package does.")
    interfaces = _bullets(sections["core interfaces"])
    files = [_implementation_path(i, where) for i in _bullets(sections["implementation files"])]
    if not files:
        raise PlanError(
            f"{where}: '## Implementation Files' lists no file; add one '- src/<file>' bullet "
            "per source file."
        )
    deps = [d for d in _bullets(sections["dependencies"]) if not _NONE.match(d.strip())]
    testing = _bullets(sections["testing strategy"])
    strategy_text = "\n".join(sections["testing strategy"])
    cov = _COVERAGE.search(strategy_text)
    coverage = float(cov.group("pct")) if cov else None
    if coverage is not None and not 0 < coverage <= 100:
        raise PlanError(f"{where}: target coverage {coverage}% must be between 0 and 100.")
    required = {s.lower() for s in REQUIRED_SECTIONS}
    return PackagePlan(
        package_name=name,
        purpose=purpose,
        core_interfaces=interfaces,
        implementation_files=files,
        dependencies=deps,
        testing_strategy=testing,
        coverage_target=coverage,
        other_sections=[titles[k] for k in sections if k not in required],
        text=text.strip() + "\n",
    )
