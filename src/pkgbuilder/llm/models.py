"""Which Claude models the installed SDK calls deprecated (pure; used by the CLI, which warns
before anything starts, and by the LLM activity, which warns in its result).

The table lives in a *private* module of the SDK (``anthropic/_data/deprecated_models.py``)
whose contents change with every SDK release and whose shape may change too. So the check is
advisory: it reads the table as a literal (with ``ast``, without importing the SDK, which costs
about 1.3 s at CLI start-up), and when the file is missing or is not the expected
``DEPRECATED_MODELS = {str: str}`` literal it logs one line and warns about nothing. It never
raises and never fails a build. Tests inject their own table (``table=``) or their own SDK
directory (``sdk_dirs=``); none depends on what the installed SDK lists today."""

from __future__ import annotations

import ast
import functools
import importlib.util
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from pkgbuilder.config import LLMSettings

log = logging.getLogger(__name__)

TABLE_FILE = Path("_data") / "deprecated_models.py"
TABLE_NAME = "DEPRECATED_MODELS"


def sdk_package_dirs() -> list[Path]:
    """Where the installed ``anthropic`` package lives (found without importing it)."""
    try:
        spec = importlib.util.find_spec("anthropic")
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(p) for p in spec.submodule_search_locations]


def read_table(sdk_dirs: Iterable[Path]) -> dict[str, str] | None:
    """The ``DEPRECATED_MODELS`` literal of the first SDK dir that has one, else None."""
    for location in sdk_dirs:
        try:
            tree = ast.parse((location / TABLE_FILE).read_text(encoding="utf-8"))
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
            if isinstance(target, ast.Name) and target.id == TABLE_NAME:
                return _string_dict(value)
    return None


def _string_dict(node: ast.expr) -> dict[str, str] | None:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return dict(value)
    return None


def load_table(sdk_dirs: Iterable[Path] | None = None) -> dict[str, str]:
    """Model name -> end-of-life date; ``{}`` (and one log line) when it cannot be read."""
    dirs = list(sdk_package_dirs() if sdk_dirs is None else sdk_dirs)
    table = read_table(dirs)
    if table is None:
        where = ", ".join(str(d / TABLE_FILE) for d in dirs) or "no anthropic package found"
        log.info("model deprecation check skipped: no %s table in the SDK (%s)", TABLE_NAME, where)
        return {}
    return table


@functools.cache
def deprecated_models() -> dict[str, str]:
    """The installed SDK's table, read once per process."""
    return load_table()


def deprecation_warning(model: str, table: Mapping[str, str] | None = None) -> str | None:
    """A warning when ``model`` is deprecated (per ``table``, default the SDK's), else None."""
    eol = (deprecated_models() if table is None else table).get(model)
    if eol is None:
        return None
    return (
        f"model '{model}' is deprecated and reaches end-of-life on {eol}; set llm.model "
        f"(or PKGBUILDER_MODEL) to a current model such as '{LLMSettings().model}'"
    )


def deprecated_model_warnings(
    settings: LLMSettings, table: Mapping[str, str] | None = None
) -> list[str]:
    """Warnings for the configured default model and every per-purpose model."""
    models = dict.fromkeys([settings.model, *settings.models.values()])
    return [w for m in models if (w := deprecation_warning(m, table))]
