"""Configuration resolution: file < environment < flags; secrets never read into models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pkgbuilder.config import ConfigError, load_settings
from pkgbuilder.models.common import Category


def test_defaults() -> None:
    s = load_settings(env={})
    assert s.max_concurrent_builds == 4
    assert s.temporal.task_queue == "package-builder"
    assert s.temporal.address == "localhost:7233"
    assert s.testing.threshold_for(Category.CORE) == 90
    assert s.testing.threshold_for(Category.UI) == 80


def test_toml_env_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "pkgbuilder.toml").write_text(
        'registry = "http://r.example/"\nmax_concurrent_builds = 2\n'
        "[testing]\nmin_coverage_percent = 70\n"
        '[quality.commands]\ncore = [["npm", "run", "lint"]]\n'
    )
    s = load_settings(tmp_path, env={"TEMPORAL_TASK_QUEUE": "q1"},
                      overrides={"maxConcurrentBuilds": 8})
    assert s.registry == "http://r.example/"
    assert s.max_concurrent_builds == 8
    assert s.temporal.task_queue == "q1"
    assert s.testing.threshold_for(Category.CORE) == 70
    assert s.quality.commands["core"] == [["npm", "run", "lint"]]


def test_seed_build_env_json_and_secret_is_ignored(tmp_path: Path) -> None:
    cfg = tmp_path / "production" / "configs"
    cfg.mkdir(parents=True)
    (cfg / "build-env.json").write_text(json.dumps({
        "npmRegistry": "https://registry.npmjs.org/",
        "npmToken": "npm_SENTINEL_SECRET",
        "maxConcurrentBuilds": 3,
        "temporal": {"address": "h:1", "namespace": "n", "taskQueue": "tq"},
        "testing": {"enableCoverage": True, "minCoveragePercent": 80, "failOnError": True},
        "publishing": {"dryRun": True, "requireTests": True,
                       "requireCleanWorkingDirectory": True},
    }))
    warnings: list[str] = []
    s = load_settings(tmp_path, env={}, warnings=warnings)
    assert s.registry == "https://registry.npmjs.org/"
    assert s.temporal.task_queue == "tq" and s.temporal.address == "h:1"
    assert s.publishing.dry_run and s.publishing.require_clean_working_directory
    assert "SENTINEL" not in s.model_dump_json()
    assert any("npmToken" in w for w in warnings)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("max_concurrent_builds = 0", "maxConcurrentBuilds"),
        ("[publishing]\naccess = 'secret'", "publishing.access"),
        ("not toml at all [", "not valid"),
    ],
)
def test_invalid_config_is_one_sentence(tmp_path: Path, content: str, fragment: str) -> None:
    (tmp_path / "pkgbuilder.toml").write_text(content)
    with pytest.raises(ConfigError) as e:
        load_settings(tmp_path, env={})
    assert fragment in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_explicit_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path, config_file=tmp_path / "nope.toml", env={})


@pytest.mark.parametrize("key", ["npmToken", "_authToken", "apiKey", "api_key", "password",
                                 "clientSecret", "token"])
def test_secret_looking_keys_are_dropped_anywhere(tmp_path: Path, key: str) -> None:
    (tmp_path / "pkgbuilder.toml").write_text(
        f'[orchestrator]\n{key} = "SENTINEL"\nconcurrency = 2\n'
        f'[turnBasedGeneration]\nenabled = true\n[turnBasedGeneration.tokenBudgets]\nTYPES = 10\n'
    )
    warnings: list[str] = []
    s = load_settings(tmp_path, env={}, warnings=warnings)
    assert "SENTINEL" not in s.model_dump_json()
    assert s.orchestrator.get("concurrency") == 2
    assert s.turn_based_generation["tokenBudgets"] == {"TYPES": 10}
    assert len(warnings) == 1 and key in warnings[0]
