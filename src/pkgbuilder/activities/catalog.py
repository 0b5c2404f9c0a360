"""Every activity the workers host, grouped by task queue.

Each feature adds its activities here. Activities are plain functions or bound methods of
small classes holding per-worker resources (rate limiter, settings).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pkgbuilder.config import BuildSettings


def build_activities(settings: BuildSettings) -> list[Callable[..., Any]]:
    """Activities of the main task queue (shell, git, files, reports, registry, queue)."""
    from pkgbuilder.activities import build as build_acts
    from pkgbuilder.activities import cache as cache_acts
    from pkgbuilder.activities import fix as fix_acts
    from pkgbuilder.activities import lifecycle as lifecycle_acts
    from pkgbuilder.activities import publish as publish_acts
    from pkgbuilder.activities import queue as queue_acts
    from pkgbuilder.activities import reports as report_acts
    from pkgbuilder.activities import session as generation_acts
    from pkgbuilder.activities import workspace as workspace_acts

    return [
        *workspace_acts.ACTIVITIES,
        *build_acts.ACTIVITIES,
        *cache_acts.ACTIVITIES,
        *fix_acts.ACTIVITIES,
        *generation_acts.ACTIVITIES,
        *lifecycle_acts.ACTIVITIES,
        *report_acts.ACTIVITIES,
        *publish_acts.ACTIVITIES,
        *queue_acts.ACTIVITIES,
    ]


def llm_activities(settings: BuildSettings) -> list[Callable[..., Any]]:
    """Activities of the LLM task queue (paid model calls).

    One ``LLMActivities`` instance per worker: its token-rate limiter is the worker's budget.
    """
    from pkgbuilder.activities.llm import LLMActivities

    return [LLMActivities(settings).call_llm]
