"""Which Claude models the installed SDK calls deprecated (pure; used by the CLI, which warns
before anything starts, and by the LLM activity, which warns in its result)."""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.util
from pathlib import Path

from pkgbuilder.config import LLMSettings


@functools.cache
def deprecated_models() -> dict[str, str]:
    """Model name -> end-of-life date, from the installed SDK's own table.

    The table is read from the SDK's ``_data/deprecated_models.py`` as a literal, without
    importing ``anthropic`` (about 1.3 s): the CLI checks the configured models before
    anything starts and should not pay for the whole SDK. Falls back to importing it when
    the file is not where SDK 2.x keeps it."""
    table = _static_table()
    if table is not None:
        return table
    table = {}
    with contextlib.suppress(ImportError):
        from anthropic.resources.messages.messages import DEPRECATED_MODELS as from_messages

        table.update(from_messages)
    with contextlib.suppress(ImportError):
        from anthropic._data import DEPRECATED_MODELS as from_data

        table.update(from_data)
    return table


def _static_table() -> dict[str, str] | None:
    try:
        spec = importlib.util.find_spec("anthropic")  # locates the package, imports nothing
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "_data" / "deprecated_models.py"
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            continue
        for node in tree.body:
            target: ast.expr
            if isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            else:
                continue
            if isinstance(target, ast.Name) and target.id == "DEPRECATED_MODELS":
                return _string_dict(value)
    return None


def _string_dict(node: ast.expr) -> dict[str, str] | None:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return None
    if isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return dict(value)
    return None


def deprecation_warning(model: str) -> str | None:
    """A clear warning when ``model`` is deprecated, else None."""
    eol = deprecated_models().get(model)
    if eol is None:
        return None
    return (
        f"model '{model}' is deprecated and reaches end-of-life on {eol}; set llm.model "
        f"(or PKGBUILDER_MODEL) to a current model such as '{LLMSettings().model}'"
    )


def deprecated_model_warnings(settings: LLMSettings) -> list[str]:
    """Warnings for the configured default model and every per-purpose model."""
    models = dict.fromkeys([settings.model, *settings.models.values()])
    return [w for m in models if (w := deprecation_warning(m))]
