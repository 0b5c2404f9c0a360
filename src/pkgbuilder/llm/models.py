"""Which Claude models the installed SDK calls deprecated (pure; used by the CLI, which warns
before anything starts, and by the LLM activity, which warns in its result)."""

from __future__ import annotations

import contextlib

from pkgbuilder.config import LLMSettings


def deprecated_models() -> dict[str, str]:
    """Model name -> end-of-life date, from the installed SDK's own tables."""
    table: dict[str, str] = {}
    with contextlib.suppress(ImportError):
        from anthropic.resources.messages.messages import DEPRECATED_MODELS as from_messages

        table.update(from_messages)
    with contextlib.suppress(ImportError):
        from anthropic._data import DEPRECATED_MODELS as from_data

        table.update(from_data)
    return table


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
