"""Coverage parsing from the files real runners write."""

from __future__ import annotations

import json
from pathlib import Path

from pkgbuilder.steps.coverage import parse_istanbul_summary, parse_lcov, read_coverage

LCOV = """TN:
SF:src/index.js
LF:10
LH:9
end_of_record
SF:src/index.test.js
LF:5
LH:5
end_of_record
SF:test/helpers.js
LF:4
LH:0
end_of_record
SF:src/util.js
LF:10
LH:7
end_of_record
"""


def test_lcov_excludes_test_files() -> None:
    res = parse_lcov(LCOV)
    assert res.lines_total == 20 and res.lines_covered == 16
    assert res.percent == 80.0


def test_lcov_including_tests() -> None:
    assert parse_lcov(LCOV, include_tests=True).lines_total == 29


def test_lcov_without_records_is_none() -> None:
    assert parse_lcov("TN:\n").percent is None


def test_istanbul_summary() -> None:
    text = json.dumps({"total": {"lines": {"total": 40, "covered": 35, "skipped": 0, "pct": 87.5}}})
    res = parse_istanbul_summary(text)
    assert res.percent == 87.5 and res.lines_total == 40


def test_istanbul_unknown_pct() -> None:
    text = json.dumps({"total": {"lines": {"total": 0, "covered": 0, "pct": "Unknown"}}})
    assert parse_istanbul_summary(text).percent == 100.0


def test_read_coverage_prefers_summary_and_skips_garbage(tmp_path: Path) -> None:
    cov = tmp_path / "coverage"
    cov.mkdir()
    (cov / "coverage-summary.json").write_text("{not json")
    (cov / "lcov.info").write_text(LCOV)
    res = read_coverage(tmp_path)
    assert res.percent == 80.0 and res.source == "coverage/lcov.info"


def test_read_coverage_none(tmp_path: Path) -> None:
    assert read_coverage(tmp_path).percent is None
