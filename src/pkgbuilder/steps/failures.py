"""Classify failed steps into the typed failures the fix loop consumes."""

from __future__ import annotations

import re

from pkgbuilder.models.build import Failure, FailureType

_TS_ERROR = re.compile(r"error TS\d{3,5}:")
_TS_ERROR_COUNT = re.compile(r"Found (\d+) errors?")


def typescript_error_count(output: str) -> int:
    m = _TS_ERROR_COUNT.search(output)
    if m:
        return int(m.group(1))
    return len(_TS_ERROR.findall(output))


def classify_script_failure(script: str, output: str) -> FailureType:
    """Which failure type a failed script run is, from its name and output."""
    name = script.lower()
    if name in ("typecheck", "type-check", "tsc", "types", "check-types"):
        return FailureType.TYPESCRIPT
    if "lint" in name or name in ("eslint", "format:check", "prettier:check"):
        return FailureType.LINT
    if name.startswith("test"):
        return FailureType.TEST
    if _TS_ERROR.search(output):
        return FailureType.TYPESCRIPT
    return FailureType.BUILD


def failure_for(
    script: str,
    argv: list[str],
    output_tail: str,
    exit_code: int | None,
    timeout_seconds: float | None = None,
) -> Failure:
    kind = classify_script_failure(script, output_tail)
    what = f"'{script}'" if script else " ".join(argv)
    if timeout_seconds is not None:
        status = f"timed out after {timeout_seconds:g} s"
    else:
        status = "timed out" if exit_code is None else f"exited with code {exit_code}"
    return Failure(
        type=kind,
        message=f"{what} {status}",
        command=argv,
        output_tail=output_tail[-8000:],
    )


def coverage_failure(percent: float | None, threshold: float) -> Failure:
    shown = "no coverage report" if percent is None else f"{percent:.2f}%"
    return Failure(
        type=FailureType.COVERAGE,
        message=f"coverage {shown} is below the {threshold:.0f}% threshold",
    )


def coverage_failures(
    percent: float | None,
    threshold: float,
    tests_ran: bool,
    enabled: bool,
    require_report: bool,
) -> list[Failure]:
    """The coverage check of the quality step (pure: also evaluated inside workflows)."""
    if not enabled or not tests_ran:
        return []
    if percent is not None and percent < threshold:
        return [coverage_failure(percent, threshold)]
    if percent is None and require_report:
        return [coverage_failure(None, threshold)]
    return []
