"""A scripted Messages-API server for tests: the real ``anthropic`` SDK talks to it over HTTP.

Only the model's words (and the API's failures) are scripted; everything between the
activity and the socket is real. Each POST /v1/messages takes the next scripted
:class:`Reply` (or ``default`` when the script is empty) and is recorded with its body,
headers (the API key's *value* is never recorded, only whether it matched), arrival time
and the token counts the server billed.

The fake tokenizer counts 4 characters per token; prompt caching is simulated: the text up
to the last ``cache_control`` block is written to the cache on first sight (billed as
``cache_creation_input_tokens``) and read from it afterwards (``cache_read_input_tokens``).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

TEST_API_KEY = "sk-ant-test-SENTINEL-4f9a1c"  # grep for it in histories: it must never appear
CHARS_PER_TOKEN = 4


def fake_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def contract_answer(
    files: list[dict[str, Any]] | None = None, summary: str = "done", fenced: bool = False
) -> str:
    """A response-contract JSON answer (raw, or in one ```json block)."""
    text = json.dumps(
        {"files": files or [], "summary": summary, "questions": [], "suggestions": []}, indent=2
    )
    return f"Here is the fix.\n\n```json\n{text}\n```\n" if fenced else text


@dataclass
class Reply:
    """One scripted answer of the server."""

    status: int = 200
    text: str | None = None  # model answer (status 200)
    stop_reason: str = "end_turn"
    headers: dict[str, str] = field(default_factory=dict)
    error_type: str = ""
    error_message: str = ""
    error_code: str | None = None
    raw_body: bytes | None = None  # sent verbatim (malformed bodies)
    delay: float = 0.0  # seconds to sleep before answering (a hanging server)
    output_tokens: int | None = None
    content_type: str = "application/json"
    trickle: float = 0.0  # send the body one byte every this many seconds

    @classmethod
    def answer(cls, text: str, **kw: Any) -> Reply:
        return cls(text=text, **kw)

    @classmethod
    def contract(
        cls, files: list[dict[str, Any]] | None = None, summary: str = "done", fenced: bool = False
    ) -> Reply:
        return cls(text=contract_answer(files, summary, fenced))

    @classmethod
    def truncated(cls, partial: str = '{"files": [{"path": "src/a.ts", "content": "') -> Reply:
        """``stop_reason: max_tokens``: the answer was cut at the request's budget."""
        return cls(text=partial, stop_reason="max_tokens")

    @classmethod
    def error(cls, status: int, error_type: str, message: str, **kw: Any) -> Reply:
        return cls(status=status, error_type=error_type, error_message=message, **kw)

    @classmethod
    def rate_limited(cls, retry_after: float) -> Reply:
        return cls.error(
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
            headers={"retry-after": f"{retry_after}"},
        )

    @classmethod
    def overloaded(cls) -> Reply:
        return cls.error(529, "overloaded_error", "Overloaded")

    @classmethod
    def server_error(cls) -> Reply:
        return cls.error(500, "api_error", "Internal server error")

    @classmethod
    def bad_request(cls, message: str = "max_tokens: must be positive") -> Reply:
        return cls.error(400, "invalid_request_error", message)

    @classmethod
    def hang(cls, seconds: float, then: Reply | None = None) -> Reply:
        """Sleep longer than the client's timeout, then answer (the client is gone by then)."""
        base = then or cls.contract(summary="too late")
        base.delay = seconds
        return base

    @classmethod
    def malformed_body(cls) -> Reply:
        return cls(raw_body=b'{"id": "msg_1", "type": "message", "content": [')


@dataclass
class RecordedRequest:
    body: dict[str, Any]
    headers: dict[str, str]
    key_matched: bool
    received_at: float  # time.monotonic() of this process
    status: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    @property
    def billed_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_input_tokens
            + self.cache_read_input_tokens
        )

    def all_text(self) -> str:
        return "\n".join(t for _, t in _blocks(self.body))


def _blocks(body: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    system = body.get("system") or []
    if isinstance(system, str):
        system = [{"type": "text", "text": system}]
    for b in system:
        yield b, b.get("text", "")
    for m in body.get("messages", []):
        content = m.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        for b in content:
            yield b, b.get("text", "")


class FakeAnthropic:
    """The scripted server; use the ``fake_anthropic`` fixture or ``with FakeAnthropic():``."""

    def __init__(self, api_key: str = TEST_API_KEY) -> None:
        self.api_key = api_key
        self.default: Reply | Callable[[dict[str, Any]], Reply] | None = None
        self.requests: list[RecordedRequest] = []
        self._script: list[Reply] = []
        self._cache: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._script)

    def start(self) -> FakeAnthropic:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- request handling -------------------------------------------------------------

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._script:
                return self._script.pop(0)
        if callable(self.default):
            return self.default(body)
        if self.default is not None:
            return Reply(**{**self.default.__dict__, "headers": dict(self.default.headers)})
        return Reply.error(500, "api_error", "fake server: no reply scripted for this request")

    def _usage(self, body: dict[str, Any], text: str, reply: Reply) -> dict[str, int]:
        blocks = list(_blocks(body))
        last_cached = max(
            (i for i, (b, _) in enumerate(blocks) if b.get("cache_control")), default=-1
        )
        prefix = "".join(t for _, t in blocks[: last_cached + 1])
        rest = "".join(t for _, t in blocks[last_cached + 1 :])
        created = read = 0
        if prefix:
            key = hashlib.sha256(f"{body.get('model')}\0{prefix}".encode()).hexdigest()
            with self._lock:
                if key in self._cache:
                    read = fake_tokens(prefix)
                else:
                    self._cache.add(key)
                    created = fake_tokens(prefix)
        output = reply.output_tokens
        if output is None:
            output = fake_tokens(text)
        if reply.stop_reason == "max_tokens":
            output = int(body.get("max_tokens", output))
        return {
            "input_tokens": fake_tokens(rest),
            "output_tokens": min(output, int(body.get("max_tokens", output))),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
        }

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        received = time.monotonic()
        length = int(h.headers.get("content-length") or 0)
        raw = h.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {"_unparseable": raw.decode("utf-8", "replace")}
        headers = {
            k.lower(): v
            for k, v in h.headers.items()
            if k.lower() not in ("x-api-key", "authorization")
        }
        # Older SDKs send x-api-key, newer ones "Authorization: Bearer <key>".
        matched = self.api_key in (
            h.headers.get("x-api-key"),
            (h.headers.get("authorization") or "").removeprefix("Bearer "),
        )
        rec = RecordedRequest(body=body, headers=headers, key_matched=matched, received_at=received)
        with self._lock:
            self.requests.append(rec)
        if h.path.split("?")[0] != "/v1/messages":
            return self._send(
                h,
                rec,
                404,
                {
                    "type": "error",
                    "error": {"type": "not_found_error", "message": f"no route {h.path}"},
                },
            )
        if not matched:
            return self._send(
                h,
                rec,
                401,
                {
                    "type": "error",
                    "error": {"type": "authentication_error", "message": "invalid x-api-key"},
                },
            )
        try:
            reply = self._next_reply(body)
        except Exception as e:  # a broken script must fail the call now, not hang it
            reply = Reply.error(500, "api_error", f"fake server script raised {e!r}")
        if reply.delay and self._stop.wait(reply.delay):
            return
        if reply.raw_body is not None:
            return self._send(
                h,
                rec,
                reply.status,
                reply.raw_body,
                reply.headers,
                reply.content_type,
                reply.trickle,
                self._stop,
            )
        if reply.status != 200:
            err: dict[str, Any] = {"type": reply.error_type, "message": reply.error_message}
            if reply.error_code:
                err["details"] = {"error_code": reply.error_code}
            return self._send(h, rec, reply.status, {"type": "error", "error": err}, reply.headers)
        text = reply.text or ""
        usage = self._usage(body, text, reply)
        rec.input_tokens = usage["input_tokens"]
        rec.output_tokens = usage["output_tokens"]
        rec.cache_creation_input_tokens = usage["cache_creation_input_tokens"]
        rec.cache_read_input_tokens = usage["cache_read_input_tokens"]
        message = {
            "id": f"msg_fake_{len(self.requests)}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "unknown"),
            "content": [{"type": "text", "text": text}],
            "stop_reason": reply.stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }
        self._send(
            h, rec, 200, message, reply.headers, reply.content_type, reply.trickle, self._stop
        )

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler,
        rec: RecordedRequest,
        status: int,
        payload: dict[str, Any] | bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
        trickle: float = 0.0,
        stop: threading.Event | None = None,
    ) -> None:
        rec.status = status
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            h.send_response(status)
            h.send_header("content-type", content_type)
            h.send_header("content-length", str(len(data)))
            h.send_header("request-id", f"req_fake_{id(rec)}")
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            if trickle:
                for i in range(len(data)):
                    h.wfile.write(data[i : i + 1])
                    h.wfile.flush()
                    if stop is not None and stop.wait(trickle):
                        return
                return
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): nothing to deliver


@pytest.fixture
def fake_anthropic(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropic]:
    """A running fake server; ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL point at it."""
    server = FakeAnthropic().start()
    monkeypatch.setenv("ANTHROPIC_API_KEY", server.api_key)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.delenv("CLAUDE_API_KEY", raising=False)
    monkeypatch.delenv("CLAUDE_API_BASE_URL", raising=False)
    try:
        yield server
    finally:
        server.stop()
