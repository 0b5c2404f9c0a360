"""Publish activities: ``check_published`` (PLAN) and ``publish_package`` (end of a package
build), thin adapters over :mod:`pkgbuilder.publishing.publish`.

A :class:`~pkgbuilder.publishing.pack.PublishError` becomes an ``ApplicationError`` of the
``ErrorType`` its class is named after: ``MissingTool`` and ``PackFailed`` non-retryable,
``RegistryUnavailable`` retryable (Temporal's PUBLISH_RETRY caps the attempts).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pkgbuilder.errors import ErrorType
from pkgbuilder.models.publish import (
    PublishCheckInput,
    PublishCheckResult,
    PublishPackageInput,
    PublishPackageResult,
)
from pkgbuilder.publishing import publish
from pkgbuilder.publishing.pack import PublishError

T = TypeVar("T")


def _heartbeat(detail: str) -> None:
    with contextlib.suppress(RuntimeError):  # outside an activity (unit tests)
        activity.heartbeat(detail)


def _attempt() -> publish.Attempt:
    try:
        info = activity.info()
    except RuntimeError:
        return publish.Attempt(heartbeat=_heartbeat)
    return publish.Attempt(info.attempt, info.scheduled_time, _heartbeat)


def error_type(e: PublishError) -> ErrorType:
    """The ``ErrorType`` a publish error is raised as: the one its class is named after."""
    return ErrorType(type(e).__name__)


async def _mapped(step: Awaitable[T]) -> T:
    try:
        return await step
    except PublishError as e:
        raise ApplicationError(str(e), type=error_type(e), non_retryable=not e.retryable) from e


@activity.defn
async def check_published(inp: PublishCheckInput) -> PublishCheckResult:
    """PLAN: which packages are already published with identical content (to be skipped)."""
    return await _mapped(publish.check_published(inp, _attempt()))


@activity.defn
async def publish_package(inp: PublishPackageInput) -> PublishPackageResult:
    """Pack → ask the registry → publish (or skip, or refuse). Idempotent under retries."""
    return await _mapped(publish.publish_package(inp, _attempt()))


ACTIVITIES: list[Callable[..., Any]] = [check_published, publish_package]
