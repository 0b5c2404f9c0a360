"""Cost of model calls from a configurable price table (USD per million tokens).

The built-in table holds list prices per model family (Sonnet, Opus, Haiku) at the time of
writing; a model is priced by exact name, then by the longest configured prefix, then by its
family. ``llm.prices`` in the configuration overrides or extends the table, e.g.::

    [llm.prices."claude-sonnet-5-5"]
    input = 3.0
    output = 15.0
    cache_write = 3.75
    cache_read = 0.30
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pkgbuilder.models.build import TokenUsage


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_write: float
    cache_read: float


# Cache writes cost 1.25x input (5-minute cache), cache reads 0.1x input.
FAMILY_PRICES: dict[str, Price] = {
    "sonnet": Price(input=3.0, output=15.0, cache_write=3.75, cache_read=0.30),
    "opus": Price(input=5.0, output=25.0, cache_write=6.25, cache_read=0.50),
    "haiku": Price(input=1.0, output=5.0, cache_write=1.25, cache_read=0.10),
}
# Older models priced differently from their family.
DEFAULT_PRICES: dict[str, Price] = {
    "claude-opus-4-1": Price(15.0, 75.0, 18.75, 1.50),
    "claude-opus-4-0": Price(15.0, 75.0, 18.75, 1.50),
    "claude-opus-4-2025": Price(15.0, 75.0, 18.75, 1.50),
    "claude-3-5-haiku": Price(0.80, 4.0, 1.0, 0.08),
    "claude-3-haiku": Price(0.25, 1.25, 0.30, 0.03),
}
FALLBACK_FAMILY = "sonnet"

_KEYS = {
    "input": "input",
    "output": "output",
    "cache_write": "cache_write",
    "cacheWrite": "cache_write",
    "cache_creation": "cache_write",
    "cache_read": "cache_read",
    "cacheRead": "cache_read",
}


def _price_from_config(entry: Mapping[str, float], base: Price) -> Price:
    values = {
        "input": base.input,
        "output": base.output,
        "cache_write": base.cache_write,
        "cache_read": base.cache_read,
    }
    for key, value in entry.items():
        if key not in _KEYS:
            raise ValueError(
                f"unknown price key '{key}' (use input, output, cache_write, cache_read)"
            )
        values[_KEYS[key]] = float(value)
    return Price(**values)


def family_of(model: str) -> str | None:
    for family in FAMILY_PRICES:
        if family in model:
            return family
    return None


def price_for(model: str, overrides: Mapping[str, Mapping[str, float]] | None = None) -> Price:
    """Price of ``model``: configured entries win, then the built-in table, then the family.

    A configured entry may give only some keys; the rest come from the built-in price.
    """
    builtin = None
    for prefix in sorted(DEFAULT_PRICES, key=len, reverse=True):
        if model.startswith(prefix):
            builtin = DEFAULT_PRICES[prefix]
            break
    if builtin is None:
        builtin = FAMILY_PRICES[family_of(model) or FALLBACK_FAMILY]
    overrides = overrides or {}
    if model in overrides:
        return _price_from_config(overrides[model], builtin)
    for prefix in sorted(overrides, key=len, reverse=True):
        if model.startswith(prefix):
            return _price_from_config(overrides[prefix], builtin)
    return builtin


def is_priced(model: str, overrides: Mapping[str, Mapping[str, float]] | None = None) -> bool:
    """False when the price is only a guess (unknown family and no configured entry)."""
    if overrides and any(model.startswith(p) for p in overrides):
        return True
    return family_of(model) is not None or any(model.startswith(p) for p in DEFAULT_PRICES)


def cost_usd(usage: TokenUsage, price: Price) -> float:
    """Cost of ``usage`` in USD, rounded to a millionth of a dollar."""
    total = (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_creation_input_tokens * price.cache_write
        + usage.cache_read_input_tokens * price.cache_read
    ) / 1_000_000
    return round(total, 6)
