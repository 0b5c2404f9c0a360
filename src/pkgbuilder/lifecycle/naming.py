"""Names of generations, their tags, task branches and worktrees, and the log line format."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from pkgbuilder.models.common import name_slug

PREFIX = "generation-"
TIME_FORMAT = "%Y-%m-%d-%H-%M-%S"
GENERATION_RE = re.compile(r"^generation-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}$")
TAG_SUFFIXES = ("start", "finished", "merged", "abandoned")
# Task branches are flat (`task/<generation>-<slug>`): git cannot hold both a branch
# `generation-X` and branches under `generation-X/`.
TASK_PREFIX = "task/"
# Glob of every generation branch / tag for `git for-each-ref`.
BRANCH_GLOB = "generation-*"


def generation_name(when: datetime) -> str:
    """``generation-YYYY-MM-DD-HH-MM-SS`` (UTC, so names sort and agree across machines)."""
    return PREFIX + when.astimezone(UTC).strftime(TIME_FORMAT)


def generation_time(name: str) -> datetime:
    """The UTC time encoded in a generation name."""
    return datetime.strptime(name.removeprefix(PREFIX), TIME_FORMAT).replace(tzinfo=UTC)


def is_generation(name: str) -> bool:
    return bool(GENERATION_RE.match(name))


def tag_name(generation: str, suffix: str) -> str:
    if suffix not in TAG_SUFFIXES:
        raise ValueError(f"unknown tag suffix {suffix!r}")
    return f"{generation}-{suffix}"


def split_tag(tag: str) -> tuple[str, str] | None:
    """``generation-…-start`` -> (``generation-…``, ``start``); None for other tags."""
    generation, _, suffix = tag.rpartition("-")
    if suffix in TAG_SUFFIXES and is_generation(generation):
        return generation, suffix
    return None


def task_branch(generation: str, package: str) -> str:
    return task_branch_of_slug(generation, name_slug(package))


def task_branch_of_slug(generation: str, slug: str) -> str:
    return f"{TASK_PREFIX}{generation}-{slug}"


def task_branch_glob(generation: str) -> str:
    return f"{TASK_PREFIX}{generation}-*"


def worktree_path(home: Path, generation: str, package: str) -> Path:
    return worktree_path_of_slug(home, generation, name_slug(package))


def worktree_path_of_slug(home: Path, generation: str, slug: str) -> Path:
    return home / "worktrees" / f"{generation}-{slug}"


def log_line(generation: str | None, message: str, when: datetime | None = None) -> str:
    """``[timestamp] [generation-name] message``; the generation part is left out when none
    is active (the seed's ``logf``)."""
    stamp = (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"[{stamp}] [{generation}] {message}" if generation else f"[{stamp}] {message}"
