"""Prompt assembly: LLMRequest <-> Messages API parameters, and the fix request.

The stable prefix of a request (system role, response contract, requirements/plan) carries
``cache_control: {"type": "ephemeral"}`` so repeated calls for the same package (fix
attempts, generation phases) read it from the prompt cache instead of paying for it again.
The API accepts at most four cache breakpoints; the last four marked blocks are kept.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from importlib import resources
from typing import Any

from pkgbuilder.llm.contract import CONTRACT_EXAMPLE
from pkgbuilder.llm.ratelimit import MESSAGE_OVERHEAD_TOKENS, estimate_tokens
from pkgbuilder.models.build import Failure
from pkgbuilder.models.llm import LLMMessage, LLMRequest, PromptBlock

MAX_CACHE_BREAKPOINTS = 4
CACHE_CONTROL = {"type": "ephemeral"}
BUILTIN_FIX_PROMPT = "builtin:generic-developer"

CONTRACT_TEXT = f"""# Answer format (mandatory)

Answer with one JSON object and nothing else, raw or inside a single ```json block:

{CONTRACT_EXAMPLE}

- "operation" is "create", "update" or "delete"; "content" is the complete new file text
  (required for create/update, omitted for delete).
- "path" is relative to the package directory; paths outside it, into node_modules/ or .git/
  are rejected and the whole answer is discarded.
- At most 50 files per answer. "questions" and "suggestions" are lists of strings."""


def builtin_fix_prompt() -> str:
    """The generic developer prompt shipped with pkgbuilder."""
    return resources.files("pkgbuilder.llm").joinpath("generic-developer.md").read_text("utf-8")


def _api_blocks(blocks: Sequence[PromptBlock], keep: set[int], start: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, b in enumerate(blocks, start):
        block: dict[str, Any] = {"type": "text", "text": b.text}
        if i in keep:
            block["cache_control"] = dict(CACHE_CONTROL)
        out.append(block)
    return out


def to_api_params(
    system: Sequence[PromptBlock], messages: Sequence[LLMMessage]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``system`` and ``messages`` arguments of ``messages.create`` with cache markers."""
    flat = [*system, *(b for m in messages for b in m.content)]
    marked = [i for i, b in enumerate(flat) if b.cache]
    keep = set(marked[-MAX_CACHE_BREAKPOINTS:])
    api_system = _api_blocks(system, keep, 0)
    api_messages = []
    offset = len(system)
    for m in messages:
        api_messages.append({"role": m.role, "content": _api_blocks(m.content, keep, offset)})
        offset += len(m.content)
    return api_system, api_messages


def estimate_input_tokens(system: Sequence[PromptBlock], messages: Sequence[LLMMessage]) -> int:
    """Conservative input-token estimate used for the rate-limit reservation."""
    blocks = [*system, *(b for m in messages for b in m.content)]
    return sum(estimate_tokens(b.text) + MESSAGE_OVERHEAD_TOKENS for b in blocks) + 16


def with_reask(
    messages: Sequence[LLMMessage], bad_answer: str, instruction: str
) -> list[LLMMessage]:
    """The conversation plus the rejected answer and the re-ask naming the error."""
    return [
        *messages,
        LLMMessage(role="assistant", content=[PromptBlock(text=bad_answer or "(empty answer)")]),
        LLMMessage(role="user", content=[PromptBlock(text=instruction)]),
    ]


def failure_types(failures: Sequence[Failure]) -> list[str]:
    """Distinct failure types, sorted (the prompt key joins them with '-')."""
    return sorted({str(f.type) for f in failures})


def render_failures(failures: Sequence[Failure]) -> str:
    parts = ["## Failures"]
    for i, f in enumerate(failures, 1):
        parts.append(f"### {i}. {f.type}: {f.message}")
        if f.command:
            parts.append(f"Command: `{shlex.join(f.command)}`")
        if f.output_tail:
            parts.append(f"<output-tail>\n{f.output_tail}\n</output-tail>")
    return "\n\n".join(parts)


def render_files(files: Sequence[tuple[str, str]], omitted: Sequence[str]) -> str:
    parts = ["## Package files (paths relative to the package directory)"]
    for path, text in files:
        parts.append(f'<file path="{path}">\n{text}\n</file>')
    if omitted:
        parts.append(
            "Not shown (size budget): "
            + ", ".join(omitted[:100])
            + (" ..." if len(omitted) > 100 else "")
        )
    return "\n\n".join(parts)


def build_fix_request(
    *,
    agent_prompt: str,
    package_name: str,
    attempt: int,
    max_attempts: int,
    failures: Sequence[Failure],
    plan_text: str | None,
    files: Sequence[tuple[str, str]],
    omitted: Sequence[str] = (),
    max_tokens: int,
    temperature: float,
    request_key: str,
) -> LLMRequest:
    """The request of one fix attempt: stable prefix first (cached), then what changes."""
    system = [PromptBlock(text=agent_prompt), PromptBlock(text=CONTRACT_TEXT, cache=True)]
    content: list[PromptBlock] = []
    if plan_text:
        content.append(
            PromptBlock(
                text=f"## Requirements and plan of {package_name}\n\n{plan_text}", cache=True
            )
        )
    content.append(PromptBlock(text=render_files(files, omitted)))
    content.append(PromptBlock(text=render_failures(failures)))
    types = ", ".join(failure_types(failures))
    content.append(
        PromptBlock(
            text=(
                f"## Task\n\nPackage {package_name}, fix attempt {attempt} of {max_attempts} "
                f"for: {types}. Fix the failures above so that the build, tests, coverage "
                "and quality checks pass, then answer with the JSON object of the answer "
                "format (complete files only)."
            )
        )
    )
    return LLMRequest(
        purpose="fix",
        system=system,
        messages=[LLMMessage(role="user", content=content)],
        max_tokens=max_tokens,
        temperature=temperature,
        request_key=request_key,
    )
