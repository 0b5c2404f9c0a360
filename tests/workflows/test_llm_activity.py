"""``call_llm`` through a real Temporal worker and the real SDK against the scripted server.

Every failure class of the Messages API is scripted; Temporal's retry policy (from
``llm_activity_options``) decides what is retried. Only the model's words are fake.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError

from pkgbuilder.activities.llm import retry_after_seconds
from pkgbuilder.llm.pricing import cost_usd, price_for
from pkgbuilder.llm.store import read_response, write_request
from pkgbuilder.models.llm import LLMCallInput
from tests.support.fake_anthropic import (
    TEST_API_KEY,
    FakeAnthropic,
    Reply,
    contract_answer,
)
from tests.support.llm_harness import Harness, make_request, make_settings
from tests.support.llm_workflows import CallLLMProbeInput, CallLLMProbeWorkflow

pytestmark = pytest.mark.slow


async def test_answer_usage_cost_and_cache_markers(
    harness: Harness,
    fake_anthropic: FakeAnthropic,
    task_queue: str,
) -> None:
    settings = make_settings(task_queue)
    answer = contract_answer(
        [{"path": "src/add.ts", "operation": "update", "content": "export const add = 1;"}],
        summary="fixed add",
        fenced=True,
    )
    fake_anthropic.script(Reply.answer(answer), Reply.contract(summary="second"))
    first = await harness.call(settings, make_request())
    second = await harness.call(settings, make_request())

    assert (first.summary, first.file_count, first.model) == ("fixed add", 1, "claude-sonnet-5-5")
    assert first.model_calls == 1 and not first.reused
    sent = fake_anthropic.requests[0]
    assert sent.key_matched
    body = sent.body
    assert body["model"] == "claude-sonnet-5-5"
    assert body["max_tokens"] == 1000
    # sent even though anthropic 2.x's signature has no sampling parameters (extra_body)
    assert body["temperature"] == 0.2 and first.warnings == []
    assert "request_key" not in json.dumps(body)
    # Stable prefix (system role + contract, plan) is marked for caching; the rest is not.
    assert [b.get("cache_control") for b in body["system"]] == [None, {"type": "ephemeral"}]
    assert [b.get("cache_control") for b in body["messages"][0]["content"]] == [
        {"type": "ephemeral"},
        None,
    ]
    # Usage as billed by the server, cost from the price table.
    assert first.usage.input_tokens == sent.input_tokens > 0
    assert first.usage.output_tokens == sent.output_tokens > 0
    assert first.usage.cache_creation_input_tokens == sent.cache_creation_input_tokens > 0
    assert first.usage.cache_read_input_tokens == 0
    assert first.cost_usd == cost_usd(first.usage, price_for("claude-sonnet-5-5")) > 0
    # The second call with the same prefix reads it from the cache (and costs less).
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == 0
    stored = read_response(Path(first.response_path))
    assert stored.response.files[0].path == "src/add.ts"
    assert stored.usage == first.usage and stored.raw_text == answer


async def test_response_file_is_reused_without_paying_twice(
    harness: Harness,
    fake_anthropic: FakeAnthropic,
    task_queue: str,
) -> None:
    settings = make_settings(task_queue)
    request = make_request(key="same")
    fake_anthropic.default = Reply.contract(summary="once")
    first = await harness.call(settings, request)
    again = await harness.call(settings, request)
    assert len(fake_anthropic.requests) == 1
    assert again.reused and again.model_calls == 0
    assert (again.response_path, again.summary, again.usage) == (
        first.response_path,
        "once",
        first.usage,
    )


async def test_429_honours_retry_after(
    harness: Harness,
    fake_anthropic: FakeAnthropic,
    task_queue: str,
) -> None:
    fake_anthropic.script(Reply.rate_limited(retry_after=1.5), Reply.contract(summary="ok"))
    result = await harness.call(make_settings(task_queue), make_request())
    assert result.summary == "ok"
    first, second = fake_anthropic.requests
    assert (first.status, second.status) == (429, 200)
    # The backoff would have retried after 0.05 s; the server asked for 1.5 s.
    assert second.received_at - first.received_at >= 1.5


@pytest.mark.parametrize("failure", [Reply.overloaded, Reply.server_error, Reply.malformed_body])
async def test_transient_failures_are_retried(
    harness: Harness,
    fake_anthropic: FakeAnthropic,
    task_queue: str,
    failure: Any,
) -> None:
    fake_anthropic.script(failure(), failure(), Reply.contract(summary="ok"))
    result = await harness.call(make_settings(task_queue), make_request())
    assert result.summary == "ok"
    assert len(fake_anthropic.requests) == 3


async def test_attempts_are_capped(
    harness: Harness,
    fake_anthropic: FakeAnthropic,
    task_queue: str,
) -> None:
    fake_anthropic.default = Reply.server_error()
    err = await harness.failure(make_settings(task_queue, maxAttempts=3), make_request())
    assert err.type == "ServerError"
    assert len(fake_anthropic.requests) == 3


async def test_hanging_server_times_out_and_is_retried(
    harness: Harness,
    fake_anthropic: FakeAnthropic,
    task_queue: str,
) -> None:
    fake_anthropic.script(Reply.hang(30), Reply.contract(summary="after hang"))
    result = await harness.call(make_settings(task_queue, requestTimeoutSeconds=1), make_request())
    assert result.summary == "after hang"
    assert len(fake_anthropic.requests) == 2


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (Reply.bad_request("messages: text content blocks must be non-empty"), 400),
        (Reply.error(404, "not_found_error", "model: claude-nope"), 404),
        (
            Reply.error(
                429, "rate_limit_error", "spend", error_code="enforced_spend_limit_reached"
            ),
            429,
        ),
    ],
)
async def test_client_errors_are_not_retried(
    harness: Harness,
    fake_anthropic: FakeAnthropic,
    task_queue: str,
    reply: Reply,
    status: int,
) -> None:
    fake_anthropic.script(reply)
    err = await harness.failure(make_settings(task_queue), make_request())
    assert err.non_retryable
    assert err.type == ("SpendLimitReached" if status == 429 else "ModelRequestRejected")
    assert str(status) in err.message and reply.error_message in err.message
    assert len(fake_anthropic.requests) == 1


async def test_wrong_api_key_is_a_clear_non_retryable_failure(
    harness: Harness,
    fake_anthropic: FakeAnthropic,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-wrong")
    err = await harness.failure(make_settings(task_queue), make_request())
    assert err.type == "ModelRequestRejected" and "401" in err.message
    assert "check ANTHROPIC_API_KEY" in err.message
    assert "sk-ant-wrong" not in err.message
    assert [r.key_matched for r in fake_anthropic.requests] == [False]


async def test_malformed_answer_is_reasked_once(
    harness: Harness,
    fake_anthropic: FakeAnthropic,
    task_queue: str,
) -> None:
    fake_anthropic.script(
        Reply.answer("Sure! I changed src/add.ts to return a + b."), Reply.contract(summary="ok")
    )
    result = await harness.call(make_settings(task_queue), make_request())
    assert result.summary == "ok" and result.model_calls == 2
    first, second = fake_anthropic.requests
    reask = second.body["messages"]
    assert reask[:1] == first.body["messages"]
    assert reask[1]["role"] == "assistant"
    assert reask[1]["content"][0]["text"].startswith("Sure! I changed")
    assert reask[2]["role"] == "user" and "no JSON object" in reask[2]["content"][0]["text"]
    assert result.usage.output_tokens == first.output_tokens + second.output_tokens
    assert any("re-asked" in w for w in result.warnings)


async def test_second_malformed_answer_fails_without_retry(
    harness: Harness,
    fake_anthropic: FakeAnthropic,
    task_queue: str,
) -> None:
    fake_anthropic.script(Reply.answer('{"files": ['), Reply.answer('{"summary": 3}'))
    err = await harness.failure(make_settings(task_queue), make_request())
    assert err.type == "InvalidModelResponse" and err.non_retryable
    assert "summary: Input should be a valid string" in err.message
    assert len(fake_anthropic.requests) == 2
    # Tokens already paid for travel in the failure details (for the report).
    details = err.details[0]
    assert details["usage"]["outputTokens"] == sum(r.output_tokens for r in fake_anthropic.requests)
    assert details["costUsd"] > 0


async def test_truncated_answer_is_retried_with_a_larger_budget(
    harness: Harness,
    fake_anthropic: FakeAnthropic,
    task_queue: str,
) -> None:
    fake_anthropic.script(Reply.truncated(), Reply.truncated(), Reply.contract(summary="fits"))
    result = await harness.call(
        make_settings(task_queue, maxOutputTokensCap=4000), make_request(max_tokens=1000)
    )
    assert result.summary == "fits" and result.model_calls == 3
    assert [r.body["max_tokens"] for r in fake_anthropic.requests] == [1000, 2000, 4000]
    assert result.usage.output_tokens >= 3000  # both truncated answers were paid for


async def test_truncation_at_the_cap_fails_with_token_limit_exceeded(
    harness: Harness,
    fake_anthropic: FakeAnthropic,
    task_queue: str,
) -> None:
    fake_anthropic.default = Reply.truncated()
    request = make_request(max_tokens=1000)
    err = await harness.failure(make_settings(task_queue, maxOutputTokensCap=1500), request)
    assert err.type == "TokenLimitExceeded" and err.non_retryable
    assert "token limit exceeded" in err.message
    assert [r.body["max_tokens"] for r in fake_anthropic.requests] == [1000, 1500]
    assert list((harness.home / "llm" / "responses").glob("*.json")) == []  # never applied


async def test_missing_api_key_fails_clearly_without_a_call(
    harness: Harness,
    fake_anthropic: FakeAnthropic,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    err = await harness.failure(make_settings(task_queue), make_request())
    assert err.type == "MissingApiKey" and err.non_retryable
    assert "ANTHROPIC_API_KEY" in err.message and "CLAUDE_API_KEY" in err.message
    assert fake_anthropic.requests == []


async def test_claude_alias_variables(
    harness: Harness,
    fake_anthropic: FakeAnthropic,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.delenv("ANTHROPIC_BASE_URL")
    monkeypatch.setenv("CLAUDE_API_KEY", fake_anthropic.api_key)
    monkeypatch.setenv("CLAUDE_API_BASE_URL", fake_anthropic.url)
    fake_anthropic.script(Reply.contract(summary="alias"))
    assert (await harness.call(make_settings(task_queue), make_request())).summary == "alias"
    assert fake_anthropic.requests[0].key_matched


async def test_model_choice_and_deprecation_warning(
    harness: Harness,
    fake_anthropic: FakeAnthropic,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The worker runs in this process: inject the deprecation table (not the SDK's of today).
    from pkgbuilder.llm import models as llm_models

    monkeypatch.setattr(
        llm_models, "deprecated_models", lambda: {"claude-old-test-1": "March 1st, 2031"}
    )
    fake_anthropic.default = Reply.contract()
    per_purpose = make_settings(task_queue, models={"fix": "claude-haiku-5-5"})
    assert (await harness.call(per_purpose, make_request())).model == "claude-haiku-5-5"
    explicit = make_request(model="claude-opus-5-5")
    assert (await harness.call(per_purpose, explicit)).model == "claude-opus-5-5"
    old = make_settings(task_queue, model="claude-old-test-1")
    result = await harness.call(old, make_request())
    assert [r.body["model"] for r in fake_anthropic.requests] == [
        "claude-haiku-5-5",
        "claude-opus-5-5",
        "claude-old-test-1",
    ]
    assert any(
        "deprecated" in w and "March 1st, 2031" in w and "claude-sonnet-5-5" in w
        for w in result.warnings
    )


async def test_tampered_request_file_is_rejected(
    harness: Harness,
    fake_anthropic: FakeAnthropic,
    task_queue: str,
) -> None:
    settings = make_settings(task_queue)
    path, sha = write_request(harness.home, make_request())
    path.write_text(path.read_text().replace("tiny adder", "evil plan"))
    with pytest.raises(WorkflowFailureError) as e:
        await harness.client.execute_workflow(
            CallLLMProbeWorkflow.run,
            CallLLMProbeInput(
                call=LLMCallInput(request_path=str(path), request_sha256=sha, llm=settings.llm),
                config=settings,
            ),
            id=f"llm-{uuid.uuid4()}",
            task_queue=harness.task_queue,
        )
    assert isinstance(e.value.cause, ActivityError)
    assert isinstance(e.value.cause.cause, ApplicationError)
    assert e.value.cause.cause.type == "RequestFileInvalid"
    assert fake_anthropic.requests == []


async def test_no_secret_in_any_history(
    harness: Harness,
    fake_anthropic: FakeAnthropic,
    task_queue: str,
) -> None:
    settings = make_settings(task_queue)
    fake_anthropic.script(
        Reply.rate_limited(0.1),
        Reply.contract(summary="ok"),
        Reply.bad_request(),
        Reply.answer("x"),
    )
    await harness.call(settings, make_request())
    await harness.failure(settings, make_request())
    with contextlib.suppress(WorkflowFailureError):
        fake_anthropic.script(Reply.answer("y"))
        await harness.call(settings, make_request())
    assert len(harness.handles) == 3 and all(r.key_matched for r in fake_anthropic.requests)
    for handle in harness.handles:
        history = (await handle.fetch_history()).to_json()
        assert TEST_API_KEY not in history
        assert "SENTINEL" not in history


def test_retry_after_parsing() -> None:
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None
