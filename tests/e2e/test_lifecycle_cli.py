"""`pkgbuilder generation …` as a user types it: exit codes, one-sentence errors, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pkgbuilder.cli.app import app
from tests.conftest import REPO_ROOT, copy_workspace, git
from tests.support.lifecycle import branches, head_branch, tags, worktree_paths

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "generation-monorepo"


@pytest.fixture
def repo(tmp_path: Path, pkgbuilder_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Nothing answers here: stop/reset must not wait for a Temporal server to check runs.
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:9")
    return copy_workspace(FIXTURE, tmp_path / "repo")


def cli(repo: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["generation", *args, "--repo", str(repo)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def assert_one_sentence(code: int, out: str, err: str, fragment: str) -> None:
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    assert fragment in err, err
    message = err.strip().removeprefix("error: ")
    assert "\n" not in message and message.endswith("."), message


def test_start_list_stop_through_the_cli(repo: Path) -> None:
    code, out, err = cli(repo, "start", "--regenerate", "@gen/alpha")
    assert code == 0, err
    name = out.strip()
    assert head_branch(repo) == name
    assert git(repo, "rev-list", "--count", f"{name}-start..{name}").strip() == "1"
    assert not (repo / "packages/core/alpha").exists()
    assert f"[{name}] removed sources of @gen/alpha" in err  # tagged log lines
    code, out, _ = cli(repo, "list", "--json")
    listed = json.loads(out)
    assert [(g["name"], g["status"], g["commitsAhead"]) for g in listed] == [(name, "active", 1)]

    code, out, err = cli(repo, "stop")
    assert code == 0, err
    assert head_branch(repo) == "main"
    assert branches(repo, "generation-*") == []
    assert {f"{name}-finished", f"{name}-merged"} <= set(tags(repo))
    assert worktree_paths(repo) == [str(repo)]


def test_regenerate_accepts_short_names_and_paths(repo: Path) -> None:
    code, _, err = cli(repo, "start", "--regenerate", "packages/core/alpha/")
    assert code == 0, err
    assert not (repo / "packages/core/alpha").exists()


def test_wrong_branch_dirty_tree_and_unknown_inputs_are_one_sentence(repo: Path) -> None:
    git(repo, "switch", "-q", "-c", "feature")
    assert_one_sentence(*cli(repo, "start"), "You are on branch 'feature'; switch to 'main'")
    git(repo, "switch", "-q", "main")
    (repo / "README.md").write_text("dirty\n")
    assert_one_sentence(*cli(repo, "start"), "uncommitted change(s) (e.g. README.md)")
    (repo / "README.md").unlink()
    assert_one_sentence(
        *cli(repo, "start", "--regenerate", "@gen/alhpa"),
        "--regenerate names @gen/alhpa, which is not a package",
    )
    assert_one_sentence(*cli(repo, "start", "--base", "trunk"), "base branch 'trunk'")
    assert_one_sentence(*cli(repo, "stop"), "No generation is active")
    assert_one_sentence(
        *cli(repo, "switch", "generation-2030-01-01-00-00-00"),
        "no active generation named 'generation-2030-01-01-00-00-00'",
    )
    assert_one_sentence(*cli(repo, "switch", "feature"), "'feature' is not a generation name")
    assert_one_sentence(
        *cli(repo, "resume", "generation-2030-01-01-00-00-00"), "no active generation named"
    )
    assert tags(repo) == [] and branches(repo, "generation-*") == []


def test_ambiguous_generation_asks_for_a_name(repo: Path) -> None:
    first = cli(repo, "start")[1].strip()
    git(repo, "switch", "-q", "main")
    second = cli(repo, "start")[1].strip()
    git(repo, "switch", "-q", "main")
    assert first != second
    assert_one_sentence(*cli(repo, "stop"), "2 generations are active")
    assert_one_sentence(*cli(repo, "run"), "choose one with --generation NAME")
    code, _, err = cli(repo, "stop", second)
    assert code == 0, err
    assert branches(repo, "generation-*") == [first]


def test_switch_and_reset_through_the_cli(repo: Path) -> None:
    first = cli(repo, "start")[1].strip()
    git(repo, "switch", "-q", "main")
    second = cli(repo, "start")[1].strip()
    (repo / "draft.md").write_text("draft\n")
    code, _, err = cli(repo, "switch", first)
    assert code == 0, err
    assert head_branch(repo) == first
    assert git(repo, "log", "-1", "--format=%s", second).strip() == (
        f"wip: work in progress on {second}"
    )
    main_before = git(repo, "rev-parse", "main").strip()
    code, out, err = cli(repo, "reset")
    assert code == 0, err
    assert head_branch(repo) == "main"
    assert int(git(repo, "rev-list", "--count", f"{main_before}..main")) <= 1
    assert sorted(tags(repo)) == sorted([f"{first}-abandoned", f"{second}-abandoned"])
    assert branches(repo, "generation-*") == []
    code, out, _ = cli(repo, "list", "--json")
    assert json.loads(out) == []
    code, out, _ = cli(repo, "list", "--all", "--json")
    assert {g["status"] for g in json.loads(out)} == {"abandoned"}
