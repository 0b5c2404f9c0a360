"""Read real coverage reports: istanbul ``coverage-summary.json`` and lcov ``lcov.info``.

The original parsed coverage from console output with a regex that never matched; pkgbuilder
reads the machine-readable files test runners write (istanbul/nyc/c8/jest/vitest json-summary,
node:test and c8 lcov).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pkgbuilder.models.common import Model

_TEST_FILE = re.compile(
    r"(^|/)(test|tests|__tests__|spec)/|\.(test|spec)\.[cm]?[jt]sx?$|(^|/)node_modules/"
)


class CoverageResult(Model):
    percent: float | None  # line coverage, None when no report exists
    source: str | None = None  # file the figure was read from
    lines_covered: int = 0
    lines_total: int = 0


def parse_istanbul_summary(text: str) -> CoverageResult:
    data = json.loads(text)
    lines = data["total"]["lines"]
    total = int(lines.get("total", 0))
    covered = int(lines.get("covered", 0))
    pct = lines.get("pct")
    if not isinstance(pct, (int, float)):  # istanbul writes "Unknown" for 0 lines
        pct = 100.0 if total == 0 else 100.0 * covered / total
    return CoverageResult(percent=round(float(pct), 2), lines_covered=covered, lines_total=total)


def parse_lcov(text: str, include_tests: bool = False) -> CoverageResult:
    """Line coverage over all source records (test files themselves excluded by default)."""
    found = hit = 0
    current: str | None = None
    rec_found = rec_hit = 0
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("SF:"):
            current = line[3:].replace("\\", "/")
            rec_found = rec_hit = 0
        elif line.startswith("LF:"):
            rec_found = int(line[3:] or 0)
        elif line.startswith("LH:"):
            rec_hit = int(line[3:] or 0)
        elif line == "end_of_record":
            if current is not None and (include_tests or not _TEST_FILE.search(current)):
                found += rec_found
                hit += rec_hit
            current = None
    if found == 0:
        return CoverageResult(percent=None, lines_covered=0, lines_total=0)
    return CoverageResult(
        percent=round(100.0 * hit / found, 2), lines_covered=hit, lines_total=found
    )


COVERAGE_FILES = ("coverage/coverage-summary.json", "coverage/lcov.info")


def read_coverage(package_dir: Path) -> CoverageResult:
    """The package's coverage from the first report file found; percent None if none."""
    for rel in COVERAGE_FILES:
        path = package_dir / rel
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
            result = parse_istanbul_summary(text) if rel.endswith(".json") else parse_lcov(text)
        except (ValueError, KeyError, TypeError):
            continue
        if result.percent is not None:
            return result.model_copy(update={"source": rel})
    return CoverageResult(percent=None)
