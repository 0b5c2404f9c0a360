"""YAML parsing for the few files that are YAML (pnpm's lockfile, workspace and record files,
yarn Berry's ``.yarnrc.yml``). The parser loads on first use, so that a command on an npm
workspace never imports it (``tests/unit/test_start_weight.py``); libyaml's loader is used
where it is installed (about ten times faster on lockfiles)."""

from __future__ import annotations

from typing import Any


class YamlError(ValueError):
    """Malformed YAML; ``line`` (1-based) where the parser noticed, when it says."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def load_yaml(text: str) -> Any:
    """``text`` parsed with the safe loader (plain data only).

    Raises:
        YamlError: ``text`` is not valid YAML.
    """
    import yaml

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise YamlError(str(e), mark.line + 1 if mark is not None else None) from None
