"""Build-cache activities: thin adapters over ``pkgbuilder.cache.engine``.

The remote cache's token and signing key are read here, from this worker's environment;
they are never part of an input, a result, a report or a log line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pkgbuilder.activities.heartbeat import heartbeating_thread
from pkgbuilder.cache import engine
from pkgbuilder.errors import ErrorType, UserError
from pkgbuilder.models.cache import (
    ResolveCacheInput,
    ResolveCacheResult,
)
from pkgbuilder.workspace.discovery import discover_workspace


@activity.defn
def resolve_cache(inp: ResolveCacheInput) -> ResolveCacheResult:
    """Hash the packages and restore every hit (many packages in one activity). With no
    ``packages`` (a standalone package build) the workspace is discovered here."""
    if not inp.packages:
        try:
            graph = discover_workspace(
                Path(inp.workspace_root), depends_on=inp.settings.graph.depends_on
            )
        except UserError as e:
            raise ApplicationError(str(e), type=ErrorType.WorkspaceError, non_retryable=True) from e
        inp = inp.model_copy(update={"packages": graph.packages})
    with heartbeating_thread():
        return engine.resolve(inp)


ACTIVITIES: list[Callable[..., Any]] = [resolve_cache]
