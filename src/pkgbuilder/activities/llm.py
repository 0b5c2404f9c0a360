"""The LLM activity: one validated model answer per request file, on the LLM task queue.

``call_llm`` reads a request file written by a main-queue activity, waits for the worker's
token budget, calls the Messages API through the real ``anthropic`` SDK (its own retries
off: Temporal owns retries), validates the answer against the response contract and writes
it to ``responses/<request-sha>.json``. A retried activity that finds that file returns it
without calling (and paying for) the model again.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import inspect
import os
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import anthropic
import pydantic
from anthropic.resources.messages.messages import AsyncMessages
from anthropic.types import Message
from temporalio import activity
from temporalio.exceptions import ApplicationError

from pkgbuilder.activities.heartbeat import heartbeating
from pkgbuilder.config import BuildSettings, LLMSettings
from pkgbuilder.errors import ErrorType
from pkgbuilder.llm import contract, pricing, prompts
from pkgbuilder.llm.keys import API_KEY_VARS
from pkgbuilder.llm.models import deprecation_warning
from pkgbuilder.llm.ratelimit import TokenRateLimiter
from pkgbuilder.llm.store import (
    StoreError,
    read_request,
    read_response,
    response_path_for,
    write_response,
)
from pkgbuilder.models.build import TokenUsage
from pkgbuilder.models.llm import (
    CALL_LLM_ACTIVITY,
    LLMCallInput,
    LLMCallResult,
    LLMMessage,
    LLMRequest,
    ModelResponse,
    StoredResponse,
)

BASE_URL_VARS = ("ANTHROPIC_BASE_URL", "CLAUDE_API_BASE_URL")
# Status codes worth retrying (as the SDK's own retry logic does): timeouts, conflicts,
# rate limits, server errors and 529 overloaded.
RETRYABLE_STATUS = frozenset({408, 409, 429})
SPEND_LIMIT_CODES = frozenset({"contract_spend_limit_reached", "enforced_spend_limit_reached"})
# A model answer is a few hundred KiB at most (128k output tokens); a bigger body is a broken
# or hostile server. It is refused while it is read, so nothing that big is kept or stored.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
# A 200 that is not a Messages-API answer (an HTML login page from a proxy, ...) is tried
# this many times in all, then the call fails for good: retrying rarely changes a proxy.
BAD_RESPONSE_MAX_ATTEMPTS = 3


class BadResponse(Exception):
    """The API answered 200 with something that is not a model answer."""


# Recent SDKs (2.x) dropped sampling parameters from messages.create's signature. The phases
# still carry a temperature each (the seed's design), so it is sent in the request body
# (extra_body) unless llm.sendTemperature is false, e.g. for a model that rejects it.
SDK_TAKES_TEMPERATURE = "temperature" in inspect.signature(AsyncMessages.create).parameters


def read_api_key(env: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    return next((env[v] for v in API_KEY_VARS if env.get(v)), None)


def read_base_url(env: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    return next((env[v] for v in BASE_URL_VARS if env.get(v)), None)


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """``retry-after-ms`` or ``retry-after`` (seconds or HTTP date) of a response."""
    if not headers:
        return None
    if ms := headers.get("retry-after-ms"):
        with contextlib.suppress(ValueError):
            return max(float(ms) / 1000, 0.0)
    value = headers.get("retry-after")
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return max(float(value), 0.0)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(when.timestamp() - time.time(), 0.0)
    return None


def api_error_to_application_error(
    exc: anthropic.APIError, settings: LLMSettings, usage: dict[str, Any]
) -> ApplicationError:
    """Map an SDK error to a Temporal error: transient ones retry, the rest fail clearly."""
    if isinstance(exc, anthropic.APITimeoutError):
        return ApplicationError(
            f"model call timed out: {exc.message}", usage, type=ErrorType.Timeout
        )
    if isinstance(exc, anthropic.APIConnectionError):
        return ApplicationError(
            f"cannot reach the model API: {exc.message}", usage, type=ErrorType.ConnectionError
        )
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        detail = exc.api_message or exc.message
        where = f" (request-id {exc.request_id})" if exc.request_id else ""
        if status == 429 and exc.error_code in SPEND_LIMIT_CODES:
            return ApplicationError(
                f"the API spend limit is reached (429 {exc.error_code}): {detail}{where}; raise "
                "the limit in the Anthropic console, retrying will not help",
                usage,
                type=ErrorType.SpendLimitReached,
                non_retryable=True,
            )
        if status in RETRYABLE_STATUS or status >= 500:
            delay = retry_after_seconds(exc.response.headers)
            return ApplicationError(
                f"model API answered {status} ({exc.type or 'error'}): {detail}{where}",
                usage,
                type=ErrorType.RateLimited
                if status == 429
                else "Overloaded"
                if status == 529
                else "ServerError",
                next_retry_delay=(
                    timedelta(seconds=min(delay, settings.max_retry_after_seconds))
                    if delay is not None
                    else None
                ),
            )
        hint = {
            401: "check ANTHROPIC_API_KEY",
            403: "the API key lacks permission for this model or feature",
            404: "check the model name (llm.model / llm.models)",
            413: "the request is too large; lower the context budget",
        }.get(status, "the request was rejected as invalid")
        return ApplicationError(
            f"model API rejected the request with {status} ({exc.type or 'error'}): "
            f"{detail}{where}; {hint}; retrying will not help",
            usage,
            type=ErrorType.ModelRequestRejected,
            non_retryable=True,
        )
    # APIResponseValidationError and friends: an unreadable answer is usually transient.
    return ApplicationError(
        f"unreadable answer from the model API: {exc}", usage, type=ErrorType.BadApiResponse
    )


async def create_message_bounded(
    client: anthropic.AsyncAnthropic,
    kwargs: dict[str, Any],
    deadline_seconds: float,
    max_bytes: int = MAX_ANSWER_BYTES,
) -> Message:
    """``messages.create`` with a total deadline (a server trickling bytes cannot stretch one
    call past ``deadline_seconds``) and a bounded body (refused while it is read).

    Raises:
        anthropic.APIError: as ``messages.create`` (status errors, connection errors).
        TimeoutError: the whole call took longer than ``deadline_seconds``.
        BadResponse: a 200 whose body is too big, not JSON or not a message.
    """

    async def call() -> Message:
        async with client.messages.with_streaming_response.create(**kwargs) as resp:
            kind = resp.headers.get("content-type", "")
            if "json" not in kind.lower():
                raise BadResponse(
                    f"the API answered 200 with {kind or 'no content type'}, "
                    "not JSON (a proxy or captive portal in the way?)"
                )
            body = bytearray()
            async for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise BadResponse(f"the answer is larger than {max_bytes} bytes; refused")
        try:
            return Message.model_validate_json(bytes(body))
        except pydantic.ValidationError as e:
            raise BadResponse(
                f"the answer is not a Messages-API message: {e.errors()[0]['msg']}"
            ) from None

    try:
        return await asyncio.wait_for(call(), deadline_seconds)
    except TimeoutError:
        raise TimeoutError(
            f"no complete answer within {deadline_seconds:g} s (llm.requestTimeoutSeconds)"
        ) from None


def _bad_response_error(e: BadResponse, usage: dict[str, Any]) -> ApplicationError:
    attempt = activity.info().attempt
    final = attempt >= BAD_RESPONSE_MAX_ATTEMPTS
    return ApplicationError(
        f"unreadable answer from the model API: {e}"
        + (f" (gave up after {attempt} attempts)" if final else ""),
        usage,
        type=ErrorType.BadApiResponse,
        non_retryable=final,
    )


def _usage_of(message: Any) -> TokenUsage:
    u = message.usage
    return TokenUsage(
        input_tokens=u.input_tokens or 0,
        output_tokens=u.output_tokens or 0,
        cache_creation_input_tokens=u.cache_creation_input_tokens or 0,
        cache_read_input_tokens=u.cache_read_input_tokens or 0,
    )


def _text_of(message: Any) -> str:
    return "".join(b.text for b in message.content if getattr(b, "type", None) == "text")


class LLMActivities:
    """LLM activities bound to one worker's resources (its token-rate limiter)."""

    def __init__(self, settings: BuildSettings, limiter: TokenRateLimiter | None = None) -> None:
        self.settings = settings
        self.limiter = limiter or TokenRateLimiter(
            settings.llm.tokens_per_minute, settings.llm.rate_window_seconds
        )

    @activity.defn(name=CALL_LLM_ACTIVITY)
    async def call_llm(self, inp: LLMCallInput) -> LLMCallResult:
        """Answer one request file with a validated :class:`ModelResponse` (see module doc)."""
        request_path = Path(inp.request_path)
        response_path = response_path_for(request_path, inp.request_sha256)
        if response_path.is_file():
            with contextlib.suppress(StoreError):
                stored = read_response(response_path)
                if stored.request_sha256 == inp.request_sha256:
                    return _result(response_path, stored, reused=True)
        try:
            request = read_request(request_path, inp.request_sha256)
        except (StoreError, ValueError) as e:
            raise ApplicationError(
                str(e), type=ErrorType.RequestFileInvalid, non_retryable=True
            ) from e
        api_key = read_api_key()
        if not api_key:
            raise ApplicationError(
                "no API key: set ANTHROPIC_API_KEY (or CLAUDE_API_KEY) in the environment of "
                "the LLM worker",
                type=ErrorType.MissingApiKey,
                non_retryable=True,
            )
        settings = inp.llm
        model = request.model or settings.model_for(request.purpose)
        warnings = [w] if (w := deprecation_warning(model)) else []
        for w in warnings:
            activity.logger.warning(w)
        if request.temperature is not None and not settings.send_temperature:
            warnings.append(
                f"temperature {request.temperature} not sent (llm.sendTemperature is false)"
            )
        price = pricing.price_for(model, settings.prices)
        if not pricing.is_priced(model, settings.prices):
            warnings.append(f"no price known for model '{model}'; cost uses Sonnet prices")
        client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=read_base_url(),
            max_retries=0,
            timeout=settings.request_timeout_seconds,
        )
        try:
            async with heartbeating("calling model"):
                stored = await self._converse(
                    client, request, model, settings, price, inp.request_sha256
                )
        finally:
            await client.close()
        stored.warnings = warnings + stored.warnings
        write_response(response_path, stored)
        return _result(response_path, stored, reused=False)

    async def _converse(
        self,
        client: anthropic.AsyncAnthropic,
        request: LLMRequest,
        model: str,
        settings: LLMSettings,
        price: pricing.Price,
        sha: str,
    ) -> StoredResponse:
        """Call until a valid answer: larger budget after truncation, one re-ask on bad JSON."""
        messages: list[LLMMessage] = list(request.messages)
        max_tokens: int = request.max_tokens
        cap = max(settings.max_output_tokens_cap, request.max_tokens)
        usage, calls, reasked, notes = TokenUsage(), 0, False, []
        while True:
            system, api_messages = prompts.to_api_params(request.system, messages)
            estimate = prompts.estimate_input_tokens(request.system, messages) + max_tokens
            reservation = await self.limiter.acquire(estimate)
            actual: int | None = None
            try:
                kwargs: dict[str, Any] = {
                    "model": model,
                    "system": system,
                    "messages": api_messages,
                    "max_tokens": max_tokens,
                    "timeout": settings.request_timeout_seconds,
                }
                if request.temperature is not None and settings.send_temperature:
                    if SDK_TAKES_TEMPERATURE:
                        kwargs["temperature"] = request.temperature
                    else:
                        kwargs["extra_body"] = {"temperature": request.temperature}
                message = await create_message_bounded(
                    client, kwargs, settings.request_timeout_seconds
                )
                call_usage = _usage_of(message)
                actual = call_usage.total
            except anthropic.APIError as e:
                raise api_error_to_application_error(e, settings, _details(usage, price)) from e
            except TimeoutError as e:
                raise ApplicationError(
                    f"model call timed out: {e}", _details(usage, price), type=ErrorType.Timeout
                ) from e
            except BadResponse as e:
                raise _bad_response_error(e, _details(usage, price)) from e
            finally:
                # Without an answer the estimate stays counted (conservative).
                self.limiter.settle(reservation, actual)
            calls += 1
            usage = usage + call_usage
            text = _text_of(message)
            if message.stop_reason == "max_tokens":
                if max_tokens >= cap:
                    raise ApplicationError(
                        f"token limit exceeded: the answer did not fit into {max_tokens} output "
                        f"tokens (llm.maxOutputTokensCap = {settings.max_output_tokens_cap})",
                        _details(usage, price),
                        type=ErrorType.TokenLimitExceeded,
                        non_retryable=True,
                    )
                notes.append(f"answer truncated at {max_tokens} tokens; retried with more")
                max_tokens = min(max_tokens * 2, cap)
                continue
            try:
                response: ModelResponse = contract.parse_model_response(text)
            except contract.ContractError as e:
                if reasked:
                    raise ApplicationError(
                        f"the model's answer broke the response contract twice: {e}",
                        _details(usage, price),
                        type=ErrorType.InvalidModelResponse,
                        non_retryable=True,
                    ) from e
                reasked = True
                notes.append(f"answer re-asked once: {e}")
                messages = prompts.with_reask(messages, text, contract.reask_instruction(e))
                continue
            return StoredResponse(
                request_sha256=sha,
                model=model,
                response=response,
                raw_text=text,
                usage=usage,
                cost_usd=pricing.cost_usd(usage, price),
                stop_reason=message.stop_reason,
                model_calls=calls,
                warnings=notes,
            )


def _details(usage: TokenUsage, price: pricing.Price) -> dict[str, Any]:
    """Failure details: tokens already paid for, so accounting survives a failed call."""
    return {"usage": usage.to_json_dict(), "costUsd": pricing.cost_usd(usage, price)}


def _result(path: Path, stored: StoredResponse, reused: bool) -> LLMCallResult:
    return LLMCallResult(
        response_path=str(path),
        request_sha256=stored.request_sha256,
        summary=stored.response.summary[:2000],
        file_count=len(stored.response.files),
        usage=stored.usage,
        cost_usd=stored.cost_usd,
        model=stored.model,
        stop_reason=stored.stop_reason,
        model_calls=0 if reused else stored.model_calls,
        warnings=stored.warnings,
        reused=reused,
    )
