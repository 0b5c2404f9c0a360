"""The LLM activity harness: a worker hosting the real ``call_llm`` and a probe workflow."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Worker

from pkgbuilder.activities.llm import LLMActivities
from pkgbuilder.config import BuildSettings
from pkgbuilder.llm.store import write_request
from pkgbuilder.models.llm import LLMCallInput, LLMCallResult, LLMMessage, LLMRequest, PromptBlock
from tests.support.llm_workflows import CallLLMProbeInput, CallLLMProbeWorkflow

pytestmark = pytest.mark.slow


def make_settings(task_queue: str, **llm: Any) -> BuildSettings:
    fast = {
        "retryInitialIntervalSeconds": 0.05,
        "retryMaxIntervalSeconds": 0.2,
        "requestTimeoutSeconds": 5,
        "tokensPerMinute": 1_000_000,
    }
    return BuildSettings.model_validate(
        {"llm": {**fast, **llm}, "temporal": {"llmTaskQueue": task_queue}}
    )


def make_request(key: str | None = None, **kw: Any) -> LLMRequest:
    base: dict[str, Any] = {
        "purpose": "fix",
        "system": [
            PromptBlock(text="You are a careful TypeScript engineer. " * 20),
            PromptBlock(text="Answer with the JSON contract. " * 10, cache=True),
        ],
        "messages": [
            LLMMessage(
                role="user",
                content=[
                    PromptBlock(text="## Plan\nBuild a tiny adder. " * 10, cache=True),
                    PromptBlock(text="## Failures\nexpected 3, got 4"),
                ],
            )
        ],
        "max_tokens": 1000,
        "temperature": 0.2,
        "request_key": key or str(uuid.uuid4()),
    }
    return LLMRequest(**{**base, **kw})


class Harness:
    """Runs ``CallLLMProbeWorkflow`` on a worker hosting the real ``call_llm``."""

    def __init__(self, client: Client, task_queue: str, home: Path) -> None:
        self.client, self.task_queue, self.home = client, task_queue, home
        self.handles: list[WorkflowHandle[Any, Any]] = []

    async def call(self, settings: BuildSettings, request: LLMRequest) -> LLMCallResult:
        path, sha = write_request(self.home, request)
        handle = await self.client.start_workflow(
            CallLLMProbeWorkflow.run,
            CallLLMProbeInput(
                call=LLMCallInput(request_path=str(path), request_sha256=sha, llm=settings.llm),
                config=settings,
            ),
            id=f"llm-{uuid.uuid4()}",
            task_queue=self.task_queue,
            result_type=LLMCallResult,
        )
        self.handles.append(handle)
        return await handle.result()

    async def failure(self, settings: BuildSettings, request: LLMRequest) -> ApplicationError:
        with pytest.raises(WorkflowFailureError) as e:
            await self.call(settings, request)
        assert isinstance(e.value.cause, ActivityError)
        cause = e.value.cause.cause
        assert isinstance(cause, ApplicationError)
        return cause


@pytest.fixture
async def harness(client: Client, task_queue: str, pkgbuilder_home: Path) -> AsyncIterator[Harness]:
    # The worker's own settings only size its rate limiter; calls carry theirs.
    acts = LLMActivities(make_settings(task_queue))
    async with Worker(
        client, task_queue=task_queue, workflows=[CallLLMProbeWorkflow], activities=[acts.call_llm]
    ):
        yield Harness(client, task_queue, pkgbuilder_home)
