"""The one check pipeline's rule (steps/pipeline.py) on a tiny real package with real node
scripts, no Temporal: missing build/test scripts, tests required for model-written code and
under publishing.requireTests, testing.failOnError=false, quality without commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pkgbuilder.config import BuildSettings, load_settings
from pkgbuilder.models.build import FailureType, PackageNode
from pkgbuilder.models.checks import CheckInput, CheckResult
from pkgbuilder.models.common import Category
from pkgbuilder.steps.pipeline import lint_score, run_checks

# A test script that writes an istanbul summary with the given line coverage.
COVERAGE_60 = (
    "node -e \"const fs=require('fs');fs.mkdirSync('coverage',{recursive:true});"
    "fs.writeFileSync('coverage/coverage-summary.json',JSON.stringify({total:{lines:"
    '{total:10,covered:6,pct:60}}}))"'
)


def package(tmp_path: Path, scripts: dict[str, str]) -> tuple[Path, PackageNode]:
    root = tmp_path / "ws"
    pkg = root / "packages" / "a"
    pkg.mkdir(parents=True)
    (root / "package.json").write_text(json.dumps({"private": True, "workspaces": ["packages/*"]}))
    (pkg / "package.json").write_text(
        json.dumps({"name": "@t/a", "version": "1.0.0", "scripts": scripts})
    )
    node = PackageNode(
        name="@t/a", path="packages/a", category=Category.UTILITY, scripts=sorted(scripts)
    )
    return root, node


def settings(**overrides: Any) -> BuildSettings:
    # allowUnsandboxed: these tests are about the rule, not the sandbox (test_hardening_sandbox)
    return load_settings(env={}, overrides={"fix": {"allowUnsandboxed": True}, **overrides})


async def check(
    tmp_path: Path, scripts: dict[str, str], s: BuildSettings | None = None, **flags: Any
) -> tuple[CheckResult, list[str]]:
    root, node = package(tmp_path, scripts)
    seen: list[str] = []
    inp = CheckInput(workspace_root=str(root), package=node, settings=s or settings(), **flags)
    return await run_checks(inp, progress=seen.append), seen


async def test_no_scripts_at_all_passes_a_hand_written_package(tmp_path: Path) -> None:
    result, seen = await check(tmp_path, {})
    assert result.ok and result.build_ok and seen == ["build", "test", "quality"]
    assert [(s.step, s.skipped, s.ok) for s in result.steps] == [
        ("build", True, True),
        ("test", True, True),
        ("quality", True, True),
    ]
    # nothing ran: no timestamps (no span in the report), no command
    assert all(s.started_at is None and not s.commands for s in result.steps)
    assert result.tests_passed is None


async def test_missing_test_script_fails_when_publishing_requires_tests(tmp_path: Path) -> None:
    publishing = settings(publishing={"enabled": True, "requireTests": True})
    result, _ = await check(tmp_path, {"build": "node -e 0"}, publishing)
    assert not result.ok and result.failed_step == "test"
    assert [f.type for f in result.failures] == [FailureType.TEST]
    assert "publishing.requireTests" in result.failures[0].message
    # requireTests without publishing enabled requires nothing
    off = settings(publishing={"enabled": False, "requireTests": True})
    assert (await check(tmp_path / "off", {"build": "node -e 0"}, off))[0].ok


async def test_missing_test_script_fails_a_model_written_package(tmp_path: Path) -> None:
    result, _ = await check(tmp_path, {"build": "node -e 0"}, model_written=True)
    assert not result.ok and result.failed_step == "test"
    assert "model-written package must have tests" in result.failures[0].message
    # a fix attempt on a hand-written package only confines it: no test requirement
    changed, _ = await check(tmp_path / "fixed", {"build": "node -e 0"}, model_changed=True)
    assert changed.ok


async def test_failing_build_stops_the_pipeline(tmp_path: Path) -> None:
    result, seen = await check(tmp_path, {"build": "node -e process.exit(4)", "test": "node -e 0"})
    assert not result.ok and not result.build_ok and result.failed_step == "build"
    assert seen == ["build"] and [s.step for s in result.steps] == ["build"]
    assert result.failures[0].type is FailureType.BUILD
    build = result.steps[0]
    assert build.started_at is not None and build.ended_at is not None
    assert build.started_at <= build.ended_at and build.worker


async def test_fail_on_error_false_tolerates_failing_tests_of_hand_written_code(
    tmp_path: Path,
) -> None:
    scripts = {"test": "node -e process.exit(1)"}
    tolerant = settings(testing={"failOnError": False})
    result, _ = await check(tmp_path, scripts, tolerant)
    assert result.ok and result.tests_passed is False
    assert [f.type for f in result.tolerated] == [FailureType.TEST]
    # the default fails them
    strict, _ = await check(tmp_path / "strict", scripts)
    assert not strict.ok and strict.failed_step == "test" and not strict.tolerated
    # model-written code is never tolerated
    generated, _ = await check(tmp_path / "gen", scripts, tolerant, model_written=True)
    assert not generated.ok and not generated.tolerated


async def test_quality_without_commands_is_only_the_coverage_check(tmp_path: Path) -> None:
    result, _ = await check(tmp_path, {"test": COVERAGE_60})
    quality = result.step("quality")
    assert quality is not None and quality.skipped and not quality.commands
    assert quality.started_at is None  # no process: no span
    assert result.coverage_percent == 60.0 and result.coverage_threshold == 85.0
    assert [f.type for f in result.failures] == [FailureType.COVERAGE]
    assert result.failed_step == "quality"
    low = settings(testing={"minCoveragePercent": 50})
    assert (await check(tmp_path / "low", {"test": COVERAGE_60}, low))[0].ok


async def test_configured_quality_commands_run_and_score_lint(tmp_path: Path) -> None:
    configured = settings(
        quality={"commands": {"*": [["node", "-e", "process.exit(2)", "lint"]]}},
        testing={"minCoveragePercent": 50},
    )
    result, _ = await check(tmp_path, {"test": COVERAGE_60}, configured)
    quality = result.step("quality")
    assert quality is not None and not quality.skipped and quality.started_at is not None
    assert quality.commands == [["node", "-e", "process.exit(2)", "lint"]]
    assert [f.type for f in result.failures] == [FailureType.LINT]
    assert result.lint_score == 0.0


async def test_a_step_budget_is_shared_by_its_hooks(tmp_path: Path) -> None:
    s = settings(timeouts={"testSeconds": 2})
    scripts = {
        "pretest": 'node -e "setTimeout(()=>{},1500)"',
        "test": 'node -e "setTimeout(()=>{},5000)"',
    }
    result, _ = await check(tmp_path, scripts, s)
    test = result.step("test")
    assert test is not None and not test.ok
    # the script got what the hook left of the 2 s budget (at least 1 s), not 2 s more
    assert test.duration_ms < 3900, test.duration_ms


@pytest.mark.parametrize(
    ("names", "failed", "score"),
    [([], 0, None), (["typecheck"], 0, None), (["lint", "lint:css"], 1, 50.0)],
)
def test_lint_score(names: list[str], failed: int, score: float | None) -> None:
    from pkgbuilder.models.build import Failure

    failures = [Failure(type=FailureType.LINT, message="x")] * failed
    assert lint_score(names, failures) == score


@pytest.mark.parametrize(
    ("pm", "lockfile", "update", "tail"),
    [
        ("npm", "package-lock.json", False, ["ci", "--no-audit", "--no-fund"]),
        ("npm", None, False, ["install", "--no-audit", "--no-fund"]),
        ("npm", "package-lock.json", True, ["install", "--no-audit", "--no-fund"]),
        ("pnpm", "pnpm-lock.yaml", False, ["install", "--frozen-lockfile"]),
        ("pnpm", "pnpm-lock.yaml", True, ["install", "--no-frozen-lockfile"]),
        ("pnpm", None, False, ["install"]),
        ("yarn", None, False, ["install"]),
        ("yarn", "yarn.lock", True, ["install"]),
    ],
)
def test_install_argv(
    tmp_path: Path, pm: str, lockfile: str | None, update: bool, tail: list[str]
) -> None:
    from pkgbuilder.models.common import PackageManager
    from pkgbuilder.workspace.pm.commands import install_argv

    if lockfile:
        (tmp_path / lockfile).write_text("")
    argv = install_argv(tmp_path, PackageManager(pm), update_lockfile=update)
    assert argv[-len(tail) :] == tail and pm in " ".join(argv[: -len(tail)])
