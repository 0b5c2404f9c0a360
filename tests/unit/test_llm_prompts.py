"""Prompt assembly (cache markers), the price table and the request store."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from pkgbuilder.config import LLMSettings, load_settings
from pkgbuilder.llm.models import deprecated_model_warnings, deprecation_warning, load_table
from pkgbuilder.llm.pricing import Price, cost_usd, is_priced, price_for
from pkgbuilder.llm.prompts import MAX_CACHE_BREAKPOINTS, to_api_params, with_reask
from pkgbuilder.llm.store import StoreError, read_request, response_path_for, write_request
from pkgbuilder.models.build import TokenUsage
from pkgbuilder.models.llm import LLMMessage, LLMRequest, PromptBlock


def test_cache_markers_follow_the_blocks() -> None:
    system = [PromptBlock(text="role"), PromptBlock(text="contract", cache=True)]
    messages = [
        LLMMessage(
            role="user",
            content=[PromptBlock(text="plan", cache=True), PromptBlock(text="failures")],
        )
    ]
    api_system, api_messages = to_api_params(system, messages)
    assert api_system == [
        {"type": "text", "text": "role"},
        {"type": "text", "text": "contract", "cache_control": {"type": "ephemeral"}},
    ]
    assert api_messages == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "plan", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "failures"},
            ],
        }
    ]


def test_at_most_four_cache_breakpoints_the_last_ones_kept() -> None:
    system = [PromptBlock(text=f"s{i}", cache=True) for i in range(6)]
    api_system, _ = to_api_params(system, [])
    marked = [b["text"] for b in api_system if "cache_control" in b]
    assert marked == ["s2", "s3", "s4", "s5"] and len(marked) == MAX_CACHE_BREAKPOINTS


def test_reask_appends_answer_and_error() -> None:
    msgs = [LLMMessage(role="user", content=[PromptBlock(text="q")])]
    out = with_reask(msgs, "", "bad JSON")
    assert [m.role for m in out] == ["user", "assistant", "user"]
    assert out[1].content[0].text == "(empty answer)" and out[2].content[0].text == "bad JSON"


def test_prices_by_family_prefix_and_config() -> None:
    assert price_for("claude-sonnet-5-5") == Price(3.0, 15.0, 3.75, 0.30)
    assert price_for("claude-opus-5-5").output == 25.0
    assert price_for("claude-haiku-4-5-20251001").input == 1.0
    assert price_for("claude-opus-4-1-20250805").input == 15.0  # older, pricier Opus
    configured = {"claude-sonnet-5": {"input": 2.0, "cacheRead": 0.2}}
    p = price_for("claude-sonnet-5-5", configured)  # longest prefix, missing keys from default
    assert (p.input, p.output, p.cache_write, p.cache_read) == (2.0, 15.0, 3.75, 0.2)
    assert not is_priced("gpt-something") and is_priced("gpt-something", {"gpt": {"input": 1}})
    with pytest.raises(ValueError, match="unknown price key"):
        price_for("claude-sonnet-5-5", {"claude": {"inptu": 1.0}})


def test_cost_counts_every_token_kind() -> None:
    usage = TokenUsage(
        input_tokens=1_000_000,
        output_tokens=100_000,
        cache_creation_input_tokens=200_000,
        cache_read_input_tokens=2_000_000,
    )
    assert cost_usd(usage, Price(3.0, 15.0, 3.75, 0.30)) == pytest.approx(3.0 + 1.5 + 0.75 + 0.6)


def test_price_table_from_toml(tmp_path: Path) -> None:
    (tmp_path / "pkgbuilder.toml").write_text(
        '[llm]\nmodel = "claude-opus-5-5"\n[llm.prices."claude-opus-5-5"]\n'
        "input = 4.0\ncache_write = 5.0\n"
    )
    settings = load_settings(tmp_path, env={})
    assert price_for(settings.llm.model, settings.llm.prices) == Price(4.0, 25.0, 5.0, 0.50)


OLD_MODEL = "claude-test-old-1"
TABLE = {OLD_MODEL: "March 1st, 2031"}


def fake_sdk(root: Path, source: str | None) -> Path:
    """A directory shaped like the SDK package, with ``source`` as its private table module."""
    (root / "_data").mkdir(parents=True)
    if source is not None:
        (root / "_data" / "deprecated_models.py").write_text(source)
    return root


def test_deprecation_table_is_read_from_the_sdk_file(tmp_path: Path) -> None:
    sdk = fake_sdk(
        tmp_path / "anthropic",
        f"from typing import Dict\n\nDEPRECATED_MODELS: Dict[str, str] = {TABLE!r}\n",
    )
    table = load_table([sdk])
    assert table == TABLE
    warning = deprecation_warning(OLD_MODEL, table)
    assert warning and "end-of-life on March 1st, 2031" in warning
    assert LLMSettings().model in warning  # names the current default as the way out
    assert deprecation_warning(LLMSettings().model, table) is None


@pytest.mark.parametrize(
    "source",
    [
        None,  # the private module is gone
        "DEPRECATED_MODELS = build_table()\n",  # no longer a literal
        "DEPRECATED_MODELS = [('a', 'b')]\n",  # another shape
        "DEPRECATED_MODELS = {'a': 1}\n",  # values are not dates
        "MODELS_EOL = {'a': 'b'}\n",  # renamed
        "def broken(:\n",  # not Python
    ],
)
def test_deprecation_check_degrades_to_no_warning(
    tmp_path: Path, source: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    sdk = fake_sdk(tmp_path / "anthropic", source)
    with caplog.at_level(logging.INFO, logger="pkgbuilder.llm.models"):
        table = load_table([sdk])
    assert table == {}
    assert deprecated_model_warnings(LLMSettings(model=OLD_MODEL), table) == []
    lines = [r for r in caplog.records if r.name == "pkgbuilder.llm.models"]
    assert len(lines) == 1 and "deprecation check skipped" in lines[0].getMessage()


def test_request_store_roundtrip_and_integrity(tmp_path: Path) -> None:
    request = LLMRequest(
        purpose="fix", messages=[LLMMessage(role="user", content=[PromptBlock(text="hello")])]
    )
    path, sha = write_request(tmp_path, request)
    assert path == tmp_path / "llm" / "requests" / f"{sha}.json"
    assert write_request(tmp_path, request) == (path, sha)  # same content, same file
    assert read_request(path, sha) == request
    assert response_path_for(path, sha) == tmp_path / "llm" / "responses" / f"{sha}.json"
    with pytest.raises(StoreError, match="expected"):
        read_request(path, "0" * 64)
    with pytest.raises(StoreError, match="share PKGBUILDER_HOME"):
        read_request(tmp_path / "missing.json", sha)


def test_every_configured_model_is_checked() -> None:
    settings = LLMSettings(model="claude-sonnet-5-5", models={"fix": OLD_MODEL, "plan": OLD_MODEL})
    warnings = deprecated_model_warnings(settings, TABLE)
    assert len(warnings) == 1 and OLD_MODEL in warnings[0]
    assert "March 1st, 2031" in warnings[0]


def test_the_deprecation_table_is_read_without_importing_the_sdk() -> None:
    """The CLI checks models before anything starts; importing anthropic costs ~1.3 s."""
    code = (
        "import sys, json\n"
        "from pkgbuilder.llm.models import deprecated_models\n"
        "table = deprecated_models()\n"
        "print(json.dumps({'loaded': 'anthropic' in sys.modules, 'table': table}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(proc.stdout)
    assert result["loaded"] is False
    try:  # the static read agrees with the SDK's own import, whatever the SDK lists today
        from anthropic._data import DEPRECATED_MODELS
    except ImportError:  # the private module is gone: the check degrades to no table
        assert result["table"] == {}
    else:
        assert result["table"] == dict(DEPRECATED_MODELS)
