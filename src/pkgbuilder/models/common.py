"""Base model classes and small shared types."""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Model(BaseModel):
    """Base for every boundary model: camelCase on the wire, snake_case in Python.

    Reports and ``--json`` output use the seed's camelCase field names (``by_alias=True``);
    Python code and Temporal payloads may use either spelling.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
    )

    def to_json_dict(self) -> dict:
        """JSON-ready dict with camelCase keys (the seed's report format)."""
        return self.model_dump(mode="json", by_alias=True)


class Category(StrEnum):
    """Package categories; the layer order comes from the seed's dependency layers."""

    VALIDATOR = "validator"
    CORE = "core"
    UTILITY = "utility"
    SERVICE = "service"
    UI = "ui"
    SUITE = "suite"

    @property
    def layer(self) -> int:
        return CATEGORY_LAYERS[self]


CATEGORY_LAYERS: dict[Category, int] = {
    Category.VALIDATOR: 0,
    Category.CORE: 1,
    Category.UTILITY: 2,
    Category.SERVICE: 3,
    Category.UI: 4,
    Category.SUITE: 5,
}

# Default minimum coverage per category (issue 2 / seed design doc).
DEFAULT_COVERAGE_THRESHOLDS: dict[Category, float] = {
    Category.VALIDATOR: 90.0,
    Category.CORE: 90.0,
    Category.UTILITY: 85.0,
    Category.SERVICE: 85.0,
    Category.UI: 80.0,
    Category.SUITE: 80.0,
}


class PackageManager(StrEnum):
    NPM = "npm"
    YARN = "yarn"
    PNPM = "pnpm"


def slugify(name: str) -> str:
    """``@acme/data-validator`` -> ``acme-data-validator`` (safe in ids, branches, files)."""
    out = []
    for ch in name.lower():
        out.append(ch if ch.isalnum() or ch in "._" else "-")
    slug = "".join(out).strip("-.")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return slug or "package"


def name_slug(name: str) -> str:
    """A readable slug plus a short hash of the exact name: ``@x/a-b`` ->
    ``x-a-b-1a2b3c4d`` and ``@x-a/b`` -> ``x-a-b-5e6f7a8b``. Use it wherever a package name
    becomes a workflow id, a branch or a path, so two names never share one."""
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{slugify(name)[:80]}-{digest}"


# Ids that become workflow ids and path components (build ids, ...).
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def check_safe_id(value: str, what: str = "build id") -> str:
    """``value`` when it is a safe id (letters, digits, ``.``, ``_``, ``-``; starts with a
    letter or digit; at most 200 characters; no ``..``).

    Raises:
        ValueError: one sentence naming the id and the rule.
    """
    if not SAFE_ID.match(value) or ".." in value:
        raise ValueError(
            f"{value!r} is not a valid {what}: use 1-200 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no '..' and no '/')."
        )
    return value
