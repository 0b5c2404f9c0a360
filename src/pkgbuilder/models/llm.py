"""Models of the Claude layer: prompt blocks, requests, the response contract, activity I/O.

Large things (whole files in prompts, model answers) never travel through workflow history:
requests and responses live in files under ``$PKGBUILDER_HOME/llm/`` and activities pass
paths + SHA-256 hashes plus small summaries.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pkgbuilder.config import BuildSettings, LLMSettings
from pkgbuilder.models.build import Failure, FixAttempt, TokenUsage
from pkgbuilder.models.common import Model

# Activity names, so workflows can schedule them without importing the SDK-heavy modules.
CALL_LLM_ACTIVITY = "call_llm"
PREPARE_FIX_REQUEST_ACTIVITY = "prepare_fix_request"
APPLY_FIX_RESPONSE_ACTIVITY = "apply_fix_response"


class PromptBlock(Model):
    """One text block of a system prompt or message; ``cache`` marks a cache breakpoint."""

    text: str
    cache: bool = False


class LLMMessage(Model):
    role: Literal["user", "assistant"]
    content: list[PromptBlock]


class LLMRequest(Model):
    """Everything needed for one model call, written to a request file by a main-queue activity.

    ``request_key`` is never sent to the model; it is part of the file's hash so that two
    attempts with identical prompts are distinct requests (each gets its own answer).
    """

    purpose: str  # "fix", "generation", ... selects settings.llm.models[purpose]
    model: str | None = None  # explicit override; else settings.llm.model_for(purpose)
    system: list[PromptBlock] = Field(default_factory=list)
    messages: list[LLMMessage]
    max_tokens: int = Field(default=8000, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    request_key: str = ""


class FileOperation(Model):
    """One file change proposed by the model (path relative to the package directory)."""

    path: str
    operation: Literal["create", "update", "delete"]
    content: str | None = None

    @model_validator(mode="after")
    def _content_matches_operation(self) -> FileOperation:
        if self.operation in ("create", "update") and self.content is None:
            raise ValueError(f"'{self.operation}' of '{self.path}' needs a 'content' string")
        return self


class ModelResponse(Model):
    """The response contract: what the model must answer (raw JSON or one fenced block)."""

    files: list[FileOperation] = Field(default_factory=list)
    summary: str
    questions: list[str] = Field(default_factory=list)
    suggestions: list[str] = Field(default_factory=list)


class LLMCallInput(Model):
    """Input of ``call_llm``: a request file written by a main-queue activity."""

    request_path: str
    request_sha256: str
    llm: LLMSettings = Field(default_factory=LLMSettings)


class LLMCallResult(Model):
    """Small result of ``call_llm``; the validated answer is in ``response_path``."""

    response_path: str
    request_sha256: str
    summary: str
    file_count: int
    usage: TokenUsage = Field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    model: str
    stop_reason: str | None = None
    model_calls: int = 0  # paid calls made inside this activity (re-ask, larger budget)
    warnings: list[str] = Field(default_factory=list)
    reused: bool = False  # the response file already existed (activity retried after a crash)


class StoredResponse(Model):
    """Content of ``$PKGBUILDER_HOME/llm/responses/<request-sha>.json``."""

    request_sha256: str
    model: str
    response: ModelResponse
    raw_text: str = ""
    usage: TokenUsage = Field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    stop_reason: str | None = None
    model_calls: int = 0
    warnings: list[str] = Field(default_factory=list)


class PrepareFixInput(Model):
    """Input of ``prepare_fix_request`` (secret-free; paths relative to the workspace root)."""

    workspace_root: str
    package_name: str
    package_path: str
    plan_path: str | None = None
    failures: list[Failure]
    attempt: int = Field(ge=1)
    build_id: str = ""
    config: BuildSettings


class PrepareFixResult(Model):
    request_path: str
    request_sha256: str
    agent_prompt_used: str
    failure_types: list[str]
    files_included: list[str] = Field(default_factory=list)
    files_omitted: list[str] = Field(default_factory=list)


class ApplyFixInput(Model):
    workspace_root: str
    package_name: str
    package_path: str
    response_path: str
    attempt: int = Field(ge=1)
    failure_types: list[str]
    config: BuildSettings


class ApplyFixResult(Model):
    files_changed: list[str] = Field(default_factory=list)
    commit: str | None = None
    already_applied: bool = False  # a retried activity found its own commit
    note: str | None = None  # e.g. "workspace is not a git repository; not committed"
    summary: str = ""
    # package.json scripts the answer added, removed or rewrote (they run sandboxed next).
    scripts_changed: list[str] = Field(default_factory=list)


class FixAttemptInput(Model):
    """Input of ``workflows.fix_loop.run_fix_attempt`` (one attempt of the fix loop)."""

    build_id: str = ""
    workspace_root: str
    package_name: str
    package_path: str
    plan_path: str | None = None
    failures: list[Failure]
    attempt: int = Field(ge=1)
    config: BuildSettings


class FixAttemptOutcome(Model):
    attempt: FixAttempt
    # True when another attempt cannot help (no API key, request rejected, spend limit).
    stop_loop: bool = False
