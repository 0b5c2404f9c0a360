"""Tokens-per-minute limiter: a fake clock for the rules, the real SDK + worker for a burst.

The burst test measures at the scripted server (arrival times, billed tokens): within any
window-long span the tokens the server saw never exceed the budget.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from pkgbuilder.activities.llm import LLMActivities
from pkgbuilder.config import BuildSettings
from pkgbuilder.llm.ratelimit import TokenRateLimiter, estimate_tokens
from pkgbuilder.llm.store import write_request
from pkgbuilder.models.llm import LLMCallInput, LLMCallResult, LLMMessage, LLMRequest, PromptBlock
from tests.support.fake_anthropic import FakeAnthropic, Reply
from tests.support.llm_workflows import CallLLMProbeInput, CallLLMProbeWorkflow


class FakeClock:
    """Time moves only when a coroutine sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def limiter(budget: int = 1000, window: float = 60.0) -> tuple[TokenRateLimiter, FakeClock]:
    clock = FakeClock()
    return TokenRateLimiter(budget, window, clock=clock, sleep=clock.sleep), clock


async def test_requests_within_budget_do_not_wait() -> None:
    rl, clock = limiter()
    for _ in range(4):
        rl.settle(await rl.acquire(250), 250)
    assert clock.sleeps == []
    assert rl.in_window() == 1000


async def test_request_over_budget_waits_for_the_window_to_pass() -> None:
    rl, clock = limiter()
    start = clock.now
    rl.settle(await rl.acquire(600), 600)
    await rl.acquire(500)
    # Admitted exactly when the first reservation left the window, not before.
    assert clock.now - start == pytest.approx(60.0, abs=1.0)
    assert clock.now - start >= 60.0


async def test_actual_usage_replaces_the_estimate() -> None:
    rl, clock = limiter()
    rl.settle(await rl.acquire(900), actual_tokens=100)
    await rl.acquire(800)
    assert clock.sleeps == []
    assert rl.in_window() == 900


async def test_in_flight_tokens_count_until_a_window_after_the_answer() -> None:
    rl, clock = limiter()
    first = await rl.acquire(700)
    waiter = asyncio.create_task(rl.acquire(700))
    await asyncio.sleep(0)
    clock.now += 100.0  # the first call takes 100 s; the waiter must still be waiting
    await asyncio.sleep(0)
    assert not waiter.done()
    answered_at = clock.now
    rl.settle(first, 650)
    await waiter
    assert clock.now >= answered_at + 60.0


async def test_single_request_larger_than_budget_runs_alone() -> None:
    rl, clock = limiter(budget=1000)
    big = await rl.acquire(5000)  # empty window: admitted instead of waiting forever
    assert clock.sleeps == []
    rl.settle(big, 4800)
    settled_at = clock.now
    await rl.acquire(10)  # nothing else fits until the big one left the window
    assert clock.now >= settled_at + 60.0


async def test_oversize_request_waits_for_an_empty_window() -> None:
    rl, clock = limiter(budget=1000)
    rl.settle(await rl.acquire(100), 100)
    t0 = clock.now
    await rl.acquire(5000)
    assert clock.now >= t0 + 60.0


async def test_waiters_are_served_in_order() -> None:
    rl = TokenRateLimiter(100, window_seconds=0.05, poll_seconds=0.005)
    rl.settle(await rl.acquire(100), 100)
    order: list[str] = []

    async def ask(name: str, tokens: int) -> None:
        r = await rl.acquire(tokens)
        order.append(name)
        rl.settle(r, tokens)

    big = asyncio.create_task(ask("big", 100))
    await asyncio.sleep(0)
    small = asyncio.create_task(ask("small", 1))
    await asyncio.gather(big, small)
    assert order == ["big", "small"]


async def test_cancelled_waiter_does_not_block_the_queue() -> None:
    rl = TokenRateLimiter(100, window_seconds=0.05, poll_seconds=0.005)
    rl.settle(await rl.acquire(100), 100)
    doomed = asyncio.create_task(rl.acquire(100))
    await asyncio.sleep(0.001)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    rl.settle(await asyncio.wait_for(rl.acquire(50), timeout=10), 50)


def test_budget_holds_across_threads() -> None:
    """Two event loops in two threads share one limiter (a thread-pool worker)."""
    budget, window = 300, 0.2
    rl = TokenRateLimiter(budget, window_seconds=window, poll_seconds=0.01)
    spans: list[tuple[float, float, int]] = []
    lock = threading.Lock()

    async def burst() -> None:
        for _ in range(4):
            r = await rl.acquire(100)
            admitted = time.monotonic()
            await asyncio.sleep(0.01)
            rl.settle(r, 100)
            with lock:
                spans.append((admitted, time.monotonic(), 100))

    threads = [threading.Thread(target=asyncio.run, args=(burst(),)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(spans) == 8
    # At every admission, tokens counted (admitted .. answered + window) stay within budget.
    for admitted, _, _ in spans:
        live = sum(n for a, s, n in spans if a <= admitted < s + window)
        assert live <= budget


def test_estimate_is_conservative() -> None:
    text = "export function add(a: number, b: number): number { return a + b; }\n" * 20
    # The fake server (like Claude) counts about 4 characters per token.
    assert estimate_tokens(text) >= len(text) / 4


# --- a burst through the real worker and SDK, measured at the server -----------------


def _request_file(home: Path, i: int) -> tuple[str, str]:
    request = LLMRequest(
        purpose="fix",
        system=[PromptBlock(text="You fix packages. " * 5)],
        messages=[
            LLMMessage(role="user", content=[PromptBlock(text=f"request {i}: " + "x" * 150)])
        ],
        max_tokens=60,
        request_key=f"burst-{i}",
    )
    path, sha = write_request(home, request)
    return str(path), sha


@pytest.mark.slow
async def test_burst_never_exceeds_budget_at_the_server(
    client: Client,
    task_queue: str,
    fake_anthropic: FakeAnthropic,
    pkgbuilder_home: Path,
) -> None:
    budget, window = 400, 1.0
    settings = BuildSettings.model_validate(
        {
            "llm": {"tokensPerMinute": budget, "rateWindowSeconds": window},
            "temporal": {"llmTaskQueue": task_queue},
        }
    )
    fake_anthropic.default = Reply.contract(summary="ok")
    requests = [_request_file(pkgbuilder_home, i) for i in range(9)]
    acts = LLMActivities(settings)
    async with Worker(
        client, task_queue=task_queue, workflows=[CallLLMProbeWorkflow], activities=[acts.call_llm]
    ):
        results = await asyncio.gather(
            *(
                client.execute_workflow(
                    CallLLMProbeWorkflow.run,
                    CallLLMProbeInput(
                        call=LLMCallInput(request_path=p, request_sha256=s, llm=settings.llm),
                        config=settings,
                    ),
                    id=f"burst-{uuid.uuid4()}",
                    task_queue=task_queue,
                    result_type=LLMCallResult,
                )
                for p, s in requests
            )
        )
    assert all(r.model_calls == 1 for r in results)
    seen = sorted(fake_anthropic.requests, key=lambda r: r.received_at)
    assert len(seen) == 9 and all(r.status == 200 for r in seen)
    # The burst really needed the limiter: sent at once it would have broken the budget.
    assert sum(q.billed_tokens for q in seen) > 1.5 * budget
    assert seen[-1].received_at - seen[0].received_at >= window
    for r in seen:
        in_window = sum(
            q.billed_tokens for q in seen if r.received_at - window < q.received_at <= r.received_at
        )
        assert in_window <= budget, f"{in_window} tokens within one window"
    # The billed usage reached the result (input + output from the server).
    assert sum(x.usage.total for x in results) == sum(q.billed_tokens for q in seen)


def test_each_llm_worker_gets_its_own_budget() -> None:
    from pkgbuilder.activities.catalog import llm_activities

    settings = BuildSettings.model_validate({"llm": {"tokensPerMinute": 1234}})
    first, second = llm_activities(settings), llm_activities(settings)
    assert [a.__name__ for a in first] == ["call_llm"]
    limiter = first[0].__self__.limiter  # type: ignore[attr-defined]
    assert (limiter.budget, limiter.window) == (1234, 60.0)
    assert limiter is not second[0].__self__.limiter  # type: ignore[attr-defined]
