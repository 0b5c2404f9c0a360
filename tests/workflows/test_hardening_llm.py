"""Hardening: a misbehaving Messages API (issue 15 items 8, 13 and 15), through a real
worker, the real SDK and the scripted server."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.fake_anthropic import FakeAnthropic, Reply, contract_answer
from tests.support.llm_harness import Harness, make_request, make_settings


def _tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


async def test_oversized_answer_is_refused_and_not_stored(
    harness: Harness, fake_anthropic: FakeAnthropic, task_queue: str, pkgbuilder_home: Path
) -> None:
    huge = contract_answer(summary="x" * (6 * 1024 * 1024))
    fake_anthropic.default = Reply.answer(huge)
    err = await harness.failure(make_settings(task_queue, maxAttempts=5), make_request())
    assert err.type == "BadApiResponse" and "larger than" in err.message
    assert len(fake_anthropic.requests) == 3  # capped, not maxAttempts
    assert not list(pkgbuilder_home.rglob("responses/*.json"))
    assert _tree_bytes(pkgbuilder_home) < 256 * 1024


async def test_html_200_is_a_clear_bad_response_with_capped_retries(
    harness: Harness, fake_anthropic: FakeAnthropic, task_queue: str
) -> None:
    fake_anthropic.default = Reply(
        raw_body=b"<html><body>Please log in</body></html>", content_type="text/html; charset=utf-8"
    )
    err = await harness.failure(make_settings(task_queue, maxAttempts=15), make_request())
    assert err.type == "BadApiResponse" and "text/html" in err.message
    assert "gave up after 3 attempts" in err.message and err.non_retryable
    assert len(fake_anthropic.requests) == 3


async def test_trickled_answer_is_cut_at_the_request_timeout(
    harness: Harness, fake_anthropic: FakeAnthropic, task_queue: str
) -> None:
    fake_anthropic.default = Reply(text=contract_answer(summary="slow"), trickle=0.3)
    start = time.monotonic()
    err = await harness.failure(
        make_settings(task_queue, maxAttempts=2, requestTimeoutSeconds=1.5), make_request()
    )
    elapsed = time.monotonic() - start
    assert err.type == "Timeout" and "1.5 s" in err.message
    assert len(fake_anthropic.requests) == 2
    assert elapsed < 8, elapsed  # two attempts of 1.5 s (+ backoff), not minutes each
