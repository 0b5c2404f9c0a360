"""The response contract: parse a model answer into a validated :class:`ModelResponse`.

The model answers with one JSON object, either raw or inside exactly one fenced
```` ```json ```` block. Anything else is a :class:`ContractError` whose message is written
for the model: it is appended to the single re-ask.
"""

from __future__ import annotations

import json
import re

from pydantic import ValidationError

from pkgbuilder.models.llm import ModelResponse

# A fence must start a line; inside a JSON string newlines are escaped, so a "```json" in a
# file's content never looks like a fence.
_FENCE = re.compile(r"^[ \t]*```[ \t]*json[ \t]*\r?\n(.*?)^[ \t]*```[ \t]*$", re.M | re.S | re.I)

CONTRACT_EXAMPLE = """{
  "files": [
    {"path": "src/index.ts", "operation": "update", "content": "<the whole new file>"},
    {"path": "src/old.ts", "operation": "delete"}
  ],
  "summary": "What you changed and why, in one or two sentences.",
  "questions": [],
  "suggestions": []
}"""


class ContractError(ValueError):
    """The answer does not follow the response contract (message is shown to the model)."""


def extract_json_text(text: str) -> str:
    """The JSON part of an answer: the whole text when it is raw JSON, else the one fenced block.

    Raises:
        ContractError: no JSON object, or more than one ```json block.
    """
    stripped = text.strip()
    if stripped.startswith("{"):
        return stripped
    blocks = _FENCE.findall(text)
    if len(blocks) == 1:
        return str(blocks[0]).strip()
    if len(blocks) > 1:
        raise ContractError(
            f"Your answer contains {len(blocks)} ```json blocks; put everything into exactly "
            "one JSON object (raw, or in a single ```json block)."
        )
    raise ContractError(
        "Your answer contains no JSON object: answer with only the JSON object of the "
        "response contract (raw, or in a single ```json block)."
    )


def _describe(e: ValidationError, limit: int = 8) -> str:
    parts = []
    for err in e.errors()[:limit]:
        loc = ""
        for p in err["loc"]:
            loc += f"[{p}]" if isinstance(p, int) else (f".{p}" if loc else str(p))
        parts.append(f"{loc or '(top level)'}: {err['msg']}")
    more = len(e.errors()) - limit
    if more > 0:
        parts.append(f"... and {more} more")
    return "; ".join(parts)


def parse_model_response(text: str) -> ModelResponse:
    """Parse and validate an answer.

    Raises:
        ContractError: not JSON, wrong shape or wrong types; the message names the problem.
    """
    body = extract_json_text(text)
    try:
        data = json.loads(body)
    except json.JSONDecodeError as e:
        raise ContractError(
            f"Your answer is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})."
        ) from e
    if not isinstance(data, dict):
        raise ContractError(f"Your answer must be a JSON object, not {type(data).__name__}.")
    try:
        return ModelResponse.model_validate(data)
    except ValidationError as e:
        raise ContractError(f"Your JSON does not match the contract: {_describe(e)}.") from e


def reask_instruction(error: ContractError) -> str:
    """The user turn appended for the single re-ask after a contract failure."""
    return (
        f"{error}\n\nAnswer again with only the JSON object of the response contract, "
        f"exactly in this shape:\n{CONTRACT_EXAMPLE}"
    )
