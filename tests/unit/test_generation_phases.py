"""Pure parts of turn-based generation: the phases as data, their configuration and schedule,
the plan parser, the state file, what a phase sees and its prompt."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from pkgbuilder.config import BuildSettings, ConfigError, load_settings
from pkgbuilder.models.build import Failure, FailureType
from pkgbuilder.models.common import Category
from pkgbuilder.models.llm import ModelResponse
from pkgbuilder.session.phases.config import TurnBasedGenerationConfig, schedule, turn_based_config
from pkgbuilder.session.phases.context import gather_files, glob_match, package_files, render_tree
from pkgbuilder.session.phases.definitions import PHASE_ORDER, GenerationPhase, spec
from pkgbuilder.session.phases.prompts import PackageBrief, build_phase_request, required_files
from pkgbuilder.session.plan import PlanError, parse_plan
from pkgbuilder.session.state import (
    CompletedStep,
    GenerationContext,
    StateFileError,
    check_session_id,
    list_states,
    read_state,
    state_dir,
    state_path,
    write_state,
)
from tests.support.generation_script import PLAN

P = GenerationPhase

SEED_TABLE = {
    P.PLANNING: (5000, 0.3),
    P.FOUNDATION: (3000, 0.2),
    P.TYPES: (4000, 0.2),
    P.CORE_IMPLEMENTATION: (8000, 0.3),
    P.ENTRY_POINT: (2000, 0.2),
    P.UTILITIES: (4000, 0.3),
    P.ERROR_HANDLING: (3000, 0.3),
    P.TESTING: (6000, 0.3),
    P.DOCUMENTATION: (3000, 0.4),
    P.EXAMPLES: (4000, 0.4),
    P.INTEGRATION_REVIEW: (4000, 0.3),
    P.CRITICAL_FIXES: (5000, 0.3),
    P.BUILD_VALIDATION: (4000, 0.3),
    P.FINAL_POLISH: (3000, 0.3),
}


# ---- phases and schedule ---------------------------------------------------------------------


def test_the_fifteen_phases_have_the_seed_budgets_and_temperatures() -> None:
    assert len(PHASE_ORDER) == 15 and PHASE_ORDER[-1] is P.MERGE
    for phase, (budget, temp) in SEED_TABLE.items():
        assert (spec(phase).max_tokens, spec(phase).temperature) == (budget, temp), phase
        assert spec(phase).calls_model and spec(phase).instructions
    assert not spec(P.MERGE).calls_model


def test_phase_names_parse_in_every_spelling() -> None:
    for raw in (
        "CORE_IMPLEMENTATION",
        "core_implementation",
        "core-implementation",
        "COREImplementation",
    ):
        assert P.parse(raw) is P.CORE_IMPLEMENTATION
    with pytest.raises(ValueError, match="unknown generation phase 'CORE'"):
        P.parse("CORE")


def test_default_schedule_numbers_all_fifteen_steps() -> None:
    steps = schedule(TurnBasedGenerationConfig(), Category.CORE)
    assert [s.phase for s in steps] == list(PHASE_ORDER)
    assert [s.step_number for s in steps] == list(range(1, 16))


def test_utility_packages_skip_examples_and_review_by_default() -> None:
    steps = schedule(TurnBasedGenerationConfig(), Category.UTILITY)
    phases = [s.phase for s in steps]
    assert P.EXAMPLES not in phases and P.INTEGRATION_REVIEW not in phases
    assert len(steps) == 13 and steps[-1].step_number == 13
    explicit = TurnBasedGenerationConfig(phases_to_execute=["EXAMPLES", "MERGE"])
    assert [s.phase for s in schedule(explicit, Category.UTILITY)] == [P.EXAMPLES, P.MERGE]


def test_selection_and_overrides() -> None:
    cfg = TurnBasedGenerationConfig.model_validate(
        {
            "phasesToExecute": "planning,foundation,types",
            "phasesToSkip": ["FOUNDATION"],
            "tokenBudgets": {"TYPES": 4500},
            "temperatures": {"planning": 0.5},
        }
    )
    steps = schedule(cfg, Category.CORE)
    assert [(s.phase, s.step_number, s.max_tokens, s.temperature) for s in steps] == [
        (P.PLANNING, 1, 5000, 0.5),
        (P.TYPES, 2, 4500, 0.2),
    ]


def test_config_section_from_toml_survives_key_camel_casing(tmp_path: Path) -> None:
    (tmp_path / "pkgbuilder.toml").write_text(
        "[turnBasedGeneration]\nenabled = true\nphasesToSkip = ['EXAMPLES']\n"
        "[turnBasedGeneration.tokenBudgets]\nCORE_IMPLEMENTATION = 10000\n"
        "[turnBasedGeneration.temperatures]\nBUILD_VALIDATION = 0.1\n"
    )
    cfg = turn_based_config(load_settings(tmp_path, env={}))
    assert cfg.enabled and cfg.phases_to_skip == [P.EXAMPLES]
    assert cfg.token_budgets == {P.CORE_IMPLEMENTATION: 10000}
    assert cfg.temperatures == {P.BUILD_VALIDATION: 0.1}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"tokenBudgets": {"TYPES": 0}}, "tokenBudgets.TYPES must be between 1 and 64000"),
        ({"temperatures": {"TYPES": 1.5}}, "temperatures.TYPES must be between 0 and 1"),
        ({"phasesToSkip": ["NOPE"]}, "unknown generation phase 'NOPE'"),
    ],
)
def test_invalid_config_is_one_sentence(tmp_path: Path, section: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):  # at load, before any workflow starts
        load_settings(None, env={}, overrides={"turnBasedGeneration": section})
    with pytest.raises(ConfigError, match=message):  # and where the feature runs
        turn_based_config(BuildSettings(turn_based_generation=section))


def test_an_empty_selection_is_refused() -> None:
    cfg = TurnBasedGenerationConfig(phases_to_execute=["TYPES"], phases_to_skip=["TYPES"])
    with pytest.raises(ConfigError, match="selects no phase"):
        schedule(cfg, Category.CORE)


# ---- plan -----------------------------------------------------------------------------------


def test_the_shipped_example_plan_parses() -> None:
    plan = parse_plan(PLAN.read_text(), "data-validator.md")
    assert plan.package_name == "@acme/data-validator"
    assert plan.implementation_files == [
        "src/validator.js",
        "src/schema-parser.js",
        "src/error-formatter.js",
    ]
    assert plan.dependencies == [] and plan.coverage_target == 90.0
    assert len(plan.core_interfaces) == 4 and plan.purpose.startswith("Validate")


def test_a_plan_missing_sections_names_them() -> None:
    text = "# Package: x\n\n## Purpose\nDo it.\n\n## Implementation Files\n- src/a.ts\n"
    with pytest.raises(PlanError) as e:
        parse_plan(text, "plans/x.md")
    msg = str(e.value)
    assert (
        "plans/x.md is missing the sections '## Core Interfaces', '## Dependencies', "
        "'## Testing Strategy'"
        in msg
        and "docs/generation.md" in msg
    )


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ("", "lists no file"),
        ("- ../escape.ts", "must be a path relative to the package directory"),
        ("- /etc/passwd", "must be a path relative"),
    ],
)
def test_bad_implementation_files(files: str, message: str) -> None:
    text = (
        f"## Purpose\nx\n## Core Interfaces\n- A\n## Implementation Files\n{files}\n"
        "## Dependencies\n- none\n## Testing Strategy\n- unit\n"
    )
    with pytest.raises(PlanError, match=message):
        parse_plan(text)


def test_sections_inside_code_fences_do_not_count() -> None:
    text = (
        "## Purpose\nx\n```\n## Core Interfaces\n```\n## Implementation Files\n- a.js\n"
        "## Dependencies\n## Testing Strategy\n"
    )
    with pytest.raises(PlanError, match="'## Core Interfaces'"):
        parse_plan(text)


# ---- state file -----------------------------------------------------------------------------


def _context(session: str = "gen-1732198765432") -> GenerationContext:
    steps = schedule(TurnBasedGenerationConfig(), Category.CORE)
    return GenerationContext(
        session_id=session,
        workflow_id=f"turn-based-{session}",
        package_name="@a/b",
        package_path="packages/core/b",
        plan_path="plans/b.md",
        category=Category.CORE,
        workspace_root="/ws",
        branch="feat/package-generation-1732198765432",
        base_branch="main",
        phases=steps,
        completed_steps=[
            CompletedStep(
                phase=P.PLANNING,
                step_number=1,
                description="d",
                files=["docs/architecture.md"],
                commit="a" * 40,
                timestamp=1732198765432,
            )
        ],
    )


def test_state_file_round_trip_uses_the_operator_guide_field_names(tmp_path: Path) -> None:
    ctx = _context()
    path = state_path(tmp_path, ctx.session_id)
    write_state(path, ctx)
    data = json.loads(path.read_text())
    for key in (
        "sessionId",
        "packageName",
        "packagePath",
        "planPath",
        "category",
        "branch",
        "currentPhase",
        "currentStepNumber",
        "completedSteps",
        "lastSuccessfulCommit",
        "failureRecovery",
        "totalUsage",
        "totalCostUsd",
        "workflowId",
    ):
        assert key in data, key
    assert set(data["completedSteps"][0]) >= {
        "phase",
        "stepNumber",
        "description",
        "files",
        "commit",
        "timestamp",
        "usage",
        "costUsd",
    }
    assert read_state(path) == ctx
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not valid JSON"),
        ('{"sessionId": "gen-1732198765432"}', "is invalid at 'workflowId'"),
        ("[]", "is invalid at '(top level)'"),
    ],
)
def test_corrupt_state_files_are_refused_in_one_sentence(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "gen-1732198765432.json"
    path.write_text(content)
    with pytest.raises(StateFileError, match=re.escape(message)):
        read_state(path)


def test_state_file_of_another_session_and_bad_ids_are_refused(tmp_path: Path) -> None:
    write_state(tmp_path / "gen-1111111111111.json", _context())
    with pytest.raises(StateFileError, match="belongs to session gen-1732198765432"):
        read_state(tmp_path / "gen-1111111111111.json")
    for bad in ("../gen-1", "gen-12", "gen-1732198765432/../../x", "x"):
        with pytest.raises(StateFileError, match="is not a session id"):
            check_session_id(bad)
    with pytest.raises(StateFileError, match="not found"):
        read_state(tmp_path / "gen-2222222222222.json")


def test_state_dir_honours_generation_state_dir(tmp_path: Path) -> None:
    assert state_dir(tmp_path, env={}) == (tmp_path / ".generation-state").resolve()
    assert state_dir(tmp_path, "cfg/gen", env={}) == (tmp_path / "cfg/gen").resolve()
    assert (
        state_dir(tmp_path, "cfg/gen", env={"GENERATION_STATE_DIR": "var/gen"})
        == (tmp_path / "var/gen").resolve()
    )
    assert state_dir(tmp_path, env={"GENERATION_STATE_DIR": "/abs/gen"}) == Path("/abs/gen")
    settings = load_settings(
        None, env={"GENERATION_STATE_DIR": "x/y", "ENABLE_TURN_BASED_GENERATION": "true"}
    )
    cfg = turn_based_config(settings)
    assert cfg.enabled and cfg.state_dir == "x/y"


def test_list_states_newest_first_and_reports_bad_files(tmp_path: Path) -> None:
    for s in ("gen-1732198765432", "gen-1832198765432", "gen-999999999999"):
        write_state(state_path(tmp_path, s), _context(s))
    (tmp_path / "gen-1000000000000.json").write_text("nope")
    good, bad = list_states(tmp_path)
    assert [c.session_id for c in good] == [
        "gen-1832198765432",
        "gen-1732198765432",
        "gen-999999999999",
    ]
    assert len(bad) == 1 and "not valid JSON" in bad[0][1]


# ---- what a phase sees ---------------------------------------------------------------------


def test_glob_match() -> None:
    assert glob_match("src/a/b.ts", "src/**")
    assert glob_match("src/types.ts", "src/types.*")
    assert not glob_match("src/types/index.ts", "src/types.*")
    assert glob_match("src/types/index.ts", "src/types/**")
    assert glob_match("src/x/y.test.ts", "src/**/*.test.*")
    assert glob_match("package.json", "package.json") and not glob_match(
        "a/package.json", "package.json"
    )


def test_gather_files_in_priority_order_within_budget(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "src").mkdir(parents=True)
    (pkg / "node_modules" / "x").mkdir(parents=True)
    (pkg / "dist").mkdir()
    (pkg / "package.json").write_text("{}")
    (pkg / "src" / "a.js").write_text("a" * 100)
    (pkg / "src" / "big.js").write_text("b" * 5000)
    (pkg / "src" / "bin.dat").write_bytes(b"\0\1")
    (pkg / "node_modules" / "x" / "i.js").write_text("vendored")
    (pkg / "dist" / "a.js").write_text("built")
    outside = tmp_path / "secret.txt"
    outside.write_text("TOP SECRET")
    os.symlink(outside, pkg / "src" / "link.js")
    assert package_files(pkg) == ["package.json", "src/a.js", "src/big.js", "src/bin.dat"]
    files, omitted = gather_files(pkg, ("package.json", "src/**"), budget_chars=1000)
    assert [f for f, _ in files] == ["package.json", "src/a.js"]
    assert omitted == ["src/big.js", "src/bin.dat"]
    assert "TOP SECRET" not in render_tree(package_files(pkg)) + str(files)


# ---- prompts --------------------------------------------------------------------------------


def _brief() -> PackageBrief:
    return PackageBrief(
        package_name="@a/b",
        package_path="packages/core/b",
        category=Category.CORE,
        coverage_target=90,
        plan_path="plans/b.md",
        plan_text=PLAN.read_text(),
    )


def test_phase_requests_share_a_cached_prefix_and_carry_phase_inputs() -> None:
    steps = {s.phase: s for s in schedule(TurnBasedGenerationConfig(), Category.CORE)}
    review = ModelResponse(summary="1 finding", suggestions=["export isValid"])
    failures = [
        Failure(
            type=FailureType.TEST,
            message="'test' exited with code 1",
            output_tail="not ok 2 - min and max are inclusive",
        )
    ]
    reqs = {}
    for phase, extra in (
        (P.TYPES, {}),
        (P.CRITICAL_FIXES, {"review": review}),
        (P.BUILD_VALIDATION, {"failures": failures, "attempt": 2, "max_attempts": 3}),
    ):
        reqs[phase] = build_phase_request(
            brief=_brief(),
            step=steps[phase],
            total_steps=15,
            completed=[],
            tree="## tree",
            files=[("src/a.js", "export const a = 1;")],
            omitted=["src/big.js"],
            requirements=required_files(phase, ["src/a.js"]),
            request_key=f"k-{phase}",
            **extra,
        )
    firsts = {r.messages[0].content[0].text for r in reqs.values()}
    assert len(firsts) == 1 and all(r.messages[0].content[0].cache for r in reqs.values())
    assert all(r.system[-1].cache for r in reqs.values())
    types = "\n".join(b.text for b in reqs[P.TYPES].messages[0].content)
    assert "## Phase 3 of 15: TYPES" in types and "`src/types.*` or `src/types/**`" in types
    assert '<file path="src/a.js">' in types and "src/big.js" in types
    fixes = "\n".join(b.text for b in reqs[P.CRITICAL_FIXES].messages[0].content)
    assert "1. export isValid" in fixes
    bv = "\n".join(b.text for b in reqs[P.BUILD_VALIDATION].messages[0].content)
    assert "fix attempt 2 of 3" in bv and "min and max are inclusive" in bv
    assert (reqs[P.TYPES].max_tokens, reqs[P.TYPES].temperature) == (4000, 0.2)
    core = [r.any_of for r in required_files(P.CORE_IMPLEMENTATION, ["src/v.js"])]
    assert core == [("src/v.js",)]
