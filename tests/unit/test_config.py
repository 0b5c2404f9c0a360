"""Configuration resolution: file < environment < flags; secrets never read into models."""

from __future__ import annotations

import json
import os
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
    s = load_settings(
        tmp_path, env={"TEMPORAL_TASK_QUEUE": "q1"}, overrides={"maxConcurrentBuilds": 8}
    )
    assert s.registry == "http://r.example/"
    assert s.max_concurrent_builds == 8
    assert s.temporal.task_queue == "q1"
    assert s.testing.threshold_for(Category.CORE) == 70
    assert s.quality.commands["core"] == [["npm", "run", "lint"]]


def test_seed_build_env_json_and_secret_is_ignored(tmp_path: Path) -> None:
    cfg = tmp_path / "production" / "configs"
    cfg.mkdir(parents=True)
    (cfg / "build-env.json").write_text(
        json.dumps(
            {
                "npmRegistry": "https://registry.npmjs.org/",
                "npmToken": "npm_SENTINEL_SECRET",
                "maxConcurrentBuilds": 3,
                "temporal": {"address": "h:1", "namespace": "n", "taskQueue": "tq"},
                "testing": {"enableCoverage": True, "minCoveragePercent": 80, "failOnError": True},
                "publishing": {
                    "dryRun": True,
                    "requireTests": True,
                    "requireCleanWorkingDirectory": True,
                },
            }
        )
    )
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


@pytest.mark.parametrize(
    "key", ["npmToken", "_authToken", "apiKey", "api_key", "password", "clientSecret", "token"]
)
def test_secret_looking_keys_are_dropped_anywhere(tmp_path: Path, key: str) -> None:
    (tmp_path / "pkgbuilder.toml").write_text(
        f'[orchestrator]\n{key} = "SENTINEL"\nmaxConcurrent = 2\n'
        f"[turnBasedGeneration]\nenabled = true\n[turnBasedGeneration.tokenBudgets]\nTYPES = 10\n"
    )
    warnings: list[str] = []
    s = load_settings(tmp_path, env={}, warnings=warnings)
    assert "SENTINEL" not in s.model_dump_json()
    assert s.orchestrator.get("maxConcurrent") == 2
    assert s.turn_based_generation["tokenBudgets"] == {"TYPES": 10}
    assert len(warnings) == 1 and key in warnings[0]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("maxConcurentBuilds = 3\n", "'maxConcurentBuilds'; did you mean 'maxConcurrentBuilds'?"),
        ("[testin]\nenableCoverage = false\n", "section 'testin'; did you mean 'testing'?"),
        (
            "[testing]\nfail_on_eror = false\n",
            "'testing.failOnEror'; did you mean 'testing.failOnError'?",
        ),
        ("[orchestrator]\nmaxConcurent = 2\n", "did you mean 'orchestrator.maxConcurrent'?"),
        ("[turnBasedGeneration]\nenabeld = true\n", "did you mean 'turnBasedGeneration.enabled'?"),
        ("[timeouts]\nzzz = 1\n", "'timeouts.zzz'; valid keys here: buildSeconds, heartbeat"),
    ],
)
def test_unknown_keys_are_errors_with_the_closest_valid_key(
    tmp_path: Path, toml: str, message: str
) -> None:
    (tmp_path / "pkgbuilder.toml").write_text(toml)
    with pytest.raises(ConfigError) as e:
        load_settings(tmp_path, env={})
    assert message in str(e.value)
    assert str(tmp_path / "pkgbuilder.toml") in str(e.value)
    assert "\n" not in str(e.value)


def test_free_form_maps_and_seed_keys_are_not_checked(tmp_path: Path) -> None:
    (tmp_path / "pkgbuilder.toml").write_text(
        "[llm.models]\nanyPurpose = 'm'\n[llm.prices.my-model]\ninput = 1.0\n"
        "[testing.coverageThresholds]\ncore = 70\n"
        "[quality.commands]\ncore = [['npm', 'run', 'lint']]\n"
    )
    s = load_settings(tmp_path, env={})
    assert s.llm.models == {"anyPurpose": "m"}
    assert s.testing.coverage_thresholds[Category.CORE] == 70
    cfg = tmp_path / "production" / "configs"
    cfg.mkdir(parents=True)
    (tmp_path / "pkgbuilder.toml").unlink()
    seed = {"workspaceRoot": "/x", "maxConcurrentBuilds": 2}
    (cfg / "build-env.json").write_text(json.dumps(seed))
    assert load_settings(tmp_path, env={}).max_concurrent_builds == 2


@pytest.mark.parametrize(
    "toml",
    [
        "[timeouts]\nheartbeatSeconds = -1\n",
        "[timeouts]\nbuildSeconds = 0\n",
        "[verify]\ntimeoutSeconds = -5\n",
        "[publishing]\ntimeoutSeconds = 0\n",
        "[llm]\nrequestTimeoutSeconds = 0\n",
        "[llm]\nmaxAttempts = 0\n",
        "[fix]\nmaxAttempts = -1\n",
        "[orchestrator]\npollIntervalMinutes = 0\n",
        "[turnBasedGeneration.tokenBudgets]\nTYPES = -3\n",
    ],
)
def test_non_positive_timeouts_and_counts_are_rejected_at_load(tmp_path: Path, toml: str) -> None:
    (tmp_path / "pkgbuilder.toml").write_text(toml)
    with pytest.raises(ConfigError, match="Invalid configuration value at"):
        load_settings(tmp_path, env={})


def test_a_non_utf8_config_file_is_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "pkgbuilder.toml").write_bytes(b"maxConcurrentBuilds = 2\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"is not UTF-8 text \(byte 0xe9 at offset 29\)"):
        load_settings(tmp_path, env={})


def test_cli_reports_config_errors_in_one_line_with_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "package.json").write_text('{"name": "r", "private": true, "workspaces": []}')
    for content in (b"[testin]\nx = 1\n", b"[timeouts]\nheartbeatSeconds = -1\n", b"a = '\xff'\n"):
        (tmp_path / "pkgbuilder.toml").write_bytes(content)
        proc = subprocess.run(
            [sys.executable, "-m", "pkgbuilder.cli.app", "build", str(tmp_path), "--dry-run"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PKGBUILDER_HOME": str(tmp_path / "home")},
        )
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout
        assert len((proc.stderr + proc.stdout).strip().splitlines()) == 1
