"""Workspace discovery activity (INITIALIZE)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pkgbuilder.errors import ErrorType, UserError
from pkgbuilder.models.build import WorkspaceGraph
from pkgbuilder.models.reports import DiscoverInput
from pkgbuilder.workspace.discovery import discover_workspace


@activity.defn
def discover_workspace_activity(inp: DiscoverInput) -> WorkspaceGraph:
    """Discover packages and the dependency graph; user errors are non-retryable."""
    try:
        return discover_workspace(
            Path(inp.workspace_root),
            Path(inp.plan_path) if inp.plan_path else None,
            only=inp.only or None,
            depends_on=inp.depends_on,
        )
    except UserError as e:
        raise ApplicationError(str(e), type=ErrorType.WorkspaceError, non_retryable=True) from e


ACTIVITIES: list[Callable[..., Any]] = [discover_workspace_activity]
