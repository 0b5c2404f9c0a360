"""What a Turborepo ``turbo.json`` adds to the package graph (pure: reads files only).

- Explicit cross-package task edges: ``"@x/app#build": {"dependsOn": ["@x/codegen#build"]}``
  in the root ``turbo.json`` (``tasks`` or the older ``pipeline``), or ``"build":
  {"dependsOn": ["@x/codegen#build"]}`` in a package's own ``turbo.json``, make ``@x/app``
  build after ``@x/codegen``.
- ``"test": {"dependsOn": ["^test"]}`` on the generic test task: a package's tests wait for
  its dependencies' tests, so dependents need their dependencies' tests to pass.

``^build`` edges are the package.json edges pkgbuilder already follows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TurboHints:
    edges: dict[str, set[str]] = field(default_factory=dict)  # package → packages it needs
    tests_gate: bool = False  # the generic test task depends on ^test


def _tasks(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    tasks = data.get("tasks", data.get("pipeline"))
    return tasks if isinstance(tasks, dict) else {}


def _depends_on(task: Any) -> list[str]:
    deps = task.get("dependsOn") if isinstance(task, dict) else None
    return [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else []


def read_turbo(root: Path, packages: dict[str, str]) -> TurboHints:
    """Hints from ``turbo.json`` files; ``packages`` maps package name → relative dir.
    Names turbo.json mentions that are not workspace packages are ignored."""
    hints = TurboHints()

    def add(package: str, deps: list[str]) -> None:
        for dep in deps:
            other, sep, _task = dep.partition("#")
            if sep and other in packages and other != package:
                hints.edges.setdefault(package, set()).add(other)

    for key, task in _tasks(root / "turbo.json").items():
        package, sep, _task = key.partition("#")
        if sep and package in packages:
            add(package, _depends_on(task))
        elif not sep and key == "test" and "^test" in _depends_on(task):
            hints.tests_gate = True
    for package, rel in packages.items():
        for task in _tasks(root / rel / "turbo.json").values():
            add(package, _depends_on(task))
    return hints
