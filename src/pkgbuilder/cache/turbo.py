"""What pkgbuilder honours of a repository's ``turbo.json`` (turbo 2 ``tasks``, turbo 1
``pipeline``): per task ``outputs``, ``inputs``, ``env`` and ``dependsOn`` (``build`` and
``test`` tasks, and ``<package>#<task>`` overrides), plus ``globalDependencies`` and
``globalEnv``. Everything else in the file is ignored."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TurboTask:
    outputs: list[str] | None = None
    inputs: list[str] | None = None
    env: list[str] = field(default_factory=list)
    depends_on: list[str] | None = None


@dataclass(frozen=True)
class TurboConfig:
    tasks: dict[str, TurboTask] = field(default_factory=dict)
    global_dependencies: list[str] = field(default_factory=list)
    global_env: list[str] = field(default_factory=list)
    present: bool = False

    def task(self, package: str, name: str) -> TurboTask | None:
        return self.tasks.get(f"{package}#{name}") or self.tasks.get(name)


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return None


def parse_turbo(data: bytes | None) -> TurboConfig:
    """Parse turbo.json (JSON with comments is tolerated line by line)."""
    if data is None:
        return TurboConfig()
    text = data.decode("utf-8", "replace")
    try:
        raw = json.loads(text)
    except ValueError:
        stripped = "\n".join(
            line for line in text.splitlines() if not line.lstrip().startswith("//")
        )
        try:
            raw = json.loads(stripped)
        except ValueError:
            return TurboConfig(present=True)
    if not isinstance(raw, dict):
        return TurboConfig(present=True)
    tasks_raw = raw.get("tasks") or raw.get("pipeline") or {}
    tasks: dict[str, TurboTask] = {}
    if isinstance(tasks_raw, dict):
        for name, spec in tasks_raw.items():
            if not isinstance(spec, dict):
                continue
            tasks[name] = TurboTask(
                outputs=_strings(spec.get("outputs")),
                inputs=_strings(spec.get("inputs")),
                env=_strings(spec.get("env")) or [],
                depends_on=_strings(spec.get("dependsOn")),
            )
    return TurboConfig(
        tasks=tasks,
        global_dependencies=_strings(raw.get("globalDependencies")) or [],
        global_env=_strings(raw.get("globalEnv")) or [],
        present=True,
    )
