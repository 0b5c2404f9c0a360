"""Fix-loop activities (main task queue): write a fix request, apply and commit the answer.

Thin adapters over :mod:`pkgbuilder.llm.fix`, which holds the rules (the prompt, the files
shown, the commit); here its errors become ``ApplicationError`` types the retry policy reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pkgbuilder import vcs
from pkgbuilder.config import pkgbuilder_home
from pkgbuilder.errors import ErrorType
from pkgbuilder.llm.fileops import FileOperationError
from pkgbuilder.llm.fix import FixInputError, apply_fix, write_fix_request
from pkgbuilder.llm.store import StoreError
from pkgbuilder.models.llm import (
    APPLY_FIX_RESPONSE_ACTIVITY,
    PREPARE_FIX_REQUEST_ACTIVITY,
    ApplyFixInput,
    ApplyFixResult,
    PrepareFixInput,
    PrepareFixResult,
)


def _invalid_input(e: FixInputError) -> ApplicationError:
    return ApplicationError(str(e), type=ErrorType.InvalidFixInput, non_retryable=True)


@activity.defn(name=PREPARE_FIX_REQUEST_ACTIVITY)
def prepare_fix_request(inp: PrepareFixInput) -> PrepareFixResult:
    """Write the request file of one fix attempt; returns its path, hash and the prompt used."""
    try:
        return write_fix_request(inp, pkgbuilder_home())
    except FixInputError as e:
        raise _invalid_input(e) from e


@activity.defn(name=APPLY_FIX_RESPONSE_ACTIVITY)
def apply_fix_response(inp: ApplyFixInput) -> ApplyFixResult:
    """Apply the answer's file operations (all or nothing) and commit exactly those paths."""
    try:
        return apply_fix(inp, heartbeat=activity.heartbeat)
    except FixInputError as e:
        raise _invalid_input(e) from e
    except StoreError as e:
        raise ApplicationError(
            str(e), type=ErrorType.ResponseFileInvalid, non_retryable=True
        ) from e
    except FileOperationError as e:
        raise ApplicationError(
            str(e),
            {"problems": e.problems[:20]},
            type=ErrorType.UnsafeFileOperation,
            non_retryable=True,
        ) from e
    except vcs.GitBusy as e:  # another build is committing in the same repository
        raise ApplicationError(str(e), type=ErrorType.GitBusy) from e
    except vcs.GitFailed as e:
        raise ApplicationError(str(e), type=ErrorType.GitCommitFailed, non_retryable=True) from e


ACTIVITIES: list[Callable[..., Any]] = [prepare_fix_request, apply_fix_response]
