"""The response contract: raw JSON or exactly one fenced ```json block, validated by pydantic."""

from __future__ import annotations

import json

import pytest

from pkgbuilder.llm.contract import (
    CONTRACT_EXAMPLE,
    ContractError,
    extract_json_text,
    parse_model_response,
    reask_instruction,
)
from pkgbuilder.llm.prompts import CONTRACT_TEXT

VALID = {
    "files": [
        {"path": "src/a.ts", "operation": "update", "content": "export const a = 1;\n"},
        {"path": "src/old.ts", "operation": "delete"},
    ],
    "summary": "fixed a",
    "questions": ["why?"],
    "suggestions": [],
}


def test_raw_json_is_parsed() -> None:
    r = parse_model_response(json.dumps(VALID))
    assert [f.path for f in r.files] == ["src/a.ts", "src/old.ts"]
    assert r.files[1].operation == "delete" and r.files[1].content is None
    assert r.summary == "fixed a" and r.questions == ["why?"]


def test_raw_json_with_surrounding_whitespace() -> None:
    assert parse_model_response("\n\n  " + json.dumps(VALID) + "\n").summary == "fixed a"


def test_one_fenced_block_with_prose_around_it() -> None:
    text = f"I fixed it.\n\n```json\n{json.dumps(VALID, indent=2)}\n```\n\nHope this helps."
    assert parse_model_response(text).files[0].content == "export const a = 1;\n"


def test_fence_inside_file_content_is_not_a_second_block() -> None:
    # A README with a ```json example inside a JSON string: newlines are escaped there.
    payload = dict(VALID)
    payload["files"] = [
        {"path": "README.md", "operation": "create", "content": "```json\n{}\n```\n"}
    ]
    text = f"```json\n{json.dumps(payload)}\n```"
    assert parse_model_response(text).files[0].content == "```json\n{}\n```\n"


def test_two_fenced_blocks_are_rejected() -> None:
    block = f"```json\n{json.dumps(VALID)}\n```"
    with pytest.raises(ContractError, match="2 ```json blocks"):
        parse_model_response(f"{block}\nand also\n{block}")


@pytest.mark.parametrize(
    "text",
    ["", "I could not fix this.", "```python\nprint(1)\n```", "Here: " + json.dumps(VALID)],
)
def test_no_json_is_rejected(text: str) -> None:
    with pytest.raises(ContractError, match="no JSON object"):
        parse_model_response(text)


def test_invalid_json_names_the_position() -> None:
    with pytest.raises(ContractError, match=r"not valid JSON .*line 1 column"):
        parse_model_response('{"files": [}')


def test_top_level_must_be_an_object() -> None:
    with pytest.raises(ContractError, match="no JSON object"):
        parse_model_response("[1, 2]")
    with pytest.raises(ContractError, match="must be a JSON object, not list"):
        parse_model_response("```json\n[1, 2]\n```")


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"files": []}, "summary: Field required"),
        ({"summary": "x", "files": [{"path": "a", "operation": "move"}]}, "files[0].operation"),
        ({"summary": "x", "files": [{"path": "a", "operation": "create"}]}, "needs a 'content'"),
        ({"summary": "x", "files": [{"operation": "delete"}]}, "files[0].path: Field required"),
        ({"summary": "x", "files": "src/a.ts"}, "files: Input should be a valid list"),
        ({"summary": "x", "questions": [1]}, "questions[0]"),
    ],
)
def test_schema_errors_are_specific(payload: dict, fragment: str) -> None:
    with pytest.raises(ContractError) as e:
        parse_model_response(json.dumps(payload))
    assert fragment in str(e.value)


def test_missing_optional_lists_default_to_empty() -> None:
    r = parse_model_response('{"summary": "nothing to do"}')
    assert r.files == [] and r.questions == [] and r.suggestions == []


def test_extract_prefers_raw_json() -> None:
    assert extract_json_text('  {"a": 1}  ') == '{"a": 1}'


def test_reask_instruction_contains_error_and_the_exact_shape() -> None:
    text = reask_instruction(ContractError("Your answer is not valid JSON (x)."))
    assert text.startswith("Your answer is not valid JSON (x).")
    assert CONTRACT_EXAMPLE in text


def test_documented_example_is_itself_valid_contract() -> None:
    # The example shown to the model must parse (placeholders are strings).
    r = parse_model_response(CONTRACT_EXAMPLE)
    assert [f.operation for f in r.files] == ["update", "delete"]
    assert CONTRACT_EXAMPLE in CONTRACT_TEXT
