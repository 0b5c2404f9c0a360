"""TurnBasedGenerationWorkflow end to end: real dev server, real git, real npm/node; only the
model's words are scripted (tests/support/generation_script.py)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from pkgbuilder.config import LLMSettings
from pkgbuilder.models.session import GenerationResult
from pkgbuilder.runtime.worker import running_workers
from pkgbuilder.session.phases.definitions import PHASE_ORDER, GenerationPhase, spec
from pkgbuilder.session.state import SessionStatus, read_state, state_path
from pkgbuilder.workflows.session import TurnBasedGenerationWorkflow
from tests.support.generation_env import (
    GenEnv,
    gen_settings,
    git,
    make_workspace,
    new_session_id,
    phase_commits,
    scripted_server,
)
from tests.support.generation_script import PACKAGE_NAME, PACKAGE_PATH, REVIEW_FINDING, final

P = GenerationPhase
pytestmark = pytest.mark.slow


@dataclass
class FullRun:
    env: GenEnv
    session_id: str
    result: GenerationResult


@pytest_asyncio.fixture(scope="module")
async def full_run(
    client: Client, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FullRun]:
    """One complete 15-phase session, shared by the assertions below."""
    base = tmp_path_factory.mktemp("full-run")
    repo = make_workspace(base / "repo")
    tq = f"tq-gen-full-{new_session_id()}"
    with scripted_server({"PKGBUILDER_HOME": str(base / "home")}) as server:
        env = GenEnv(
            repo=repo,
            settings=gen_settings(tq),
            server=server,
            home=base / "home",
            responder=server.default,
        )  # type: ignore[arg-type]
        session = new_session_id()
        async with running_workers(client, env.settings):
            result = await client.execute_workflow(
                TurnBasedGenerationWorkflow.run,
                env.input(session),
                id=f"turn-based-{session}",
                task_queue=tq,
            )
        yield FullRun(env=env, session_id=session, result=result)


async def test_full_run_completes_validates_and_merges(full_run: FullRun) -> None:
    r = full_run.result
    assert r.status is SessionStatus.COMPLETED, r
    assert [s.phase for s in r.steps] == list(PHASE_ORDER)
    assert r.validation is not None and r.validation.passed
    assert r.validation.fix_attempts == 1  # the off-by-one CORE wrote was really caught
    assert r.validation.coverage_percent is not None and r.validation.coverage_percent >= 90
    assert r.merged and r.merge_commit
    repo = full_run.env.repo
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    parents = git(repo, "rev-list", "--parents", "-n", "1", r.merge_commit).split()
    assert len(parents) == 3  # --no-ff: a real merge commit


async def test_merged_package_really_builds_and_passes_its_tests(full_run: FullRun) -> None:
    pkg = full_run.env.repo / PACKAGE_PATH
    assert (pkg / "src" / "validator.js").read_text() == final("src/validator.js")
    for argv in (["node", "scripts/build.js"], ["node", "scripts/test.js"]):
        proc = subprocess.run(argv, cwd=pkg, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\bfail 0\b", proc.stdout) and re.search(r"\bpass 7\b", proc.stdout)


def _expected_message(phase: GenerationPhase, files: list[str], step: int) -> str:
    return (
        f"feat({phase.value.lower()}): complete {phase.value} phase for {PACKAGE_NAME}\n\n"
        f"Files modified: {', '.join(files) if files else 'none'}\n\n"
        f"[Turn-based generation step {step}]"
    )


async def test_one_commit_per_phase_with_the_exact_message(full_run: FullRun) -> None:
    repo, r = full_run.env.repo, full_run.result
    ctx = read_state(state_path(full_run.env.state_dir, full_run.session_id))
    commits = phase_commits(repo, ctx.base_commit, ctx.branch)
    phase_commits_ = [(sha, msg) for sha, msg in commits if msg.startswith("feat(")]
    fixes = [(sha, msg) for sha, msg in commits if msg.startswith("fix(")]
    assert len(phase_commits_) + len(fixes) == len(commits)
    # 14 phase commits on the branch (MERGE's is the merge commit on main), in order.
    assert len(phase_commits_) == 14
    for (sha, msg), step in zip(phase_commits_, ctx.completed_steps, strict=False):
        assert sha == step.commit
        assert msg == _expected_message(step.phase, step.files, step.step_number)
        touched = sorted(
            p.removeprefix(PACKAGE_PATH + "/")
            for p in git(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", sha).split()
        )
        if step.phase is not P.BUILD_VALIDATION:  # its changes are in its fix commit
            assert touched == step.files, step.phase
    # The BUILD_VALIDATION fix attempt is its own commit, listing what it changed.
    assert len(fixes) == 1
    assert fixes[0][1].startswith(f"fix({PACKAGE_NAME}): BUILD_VALIDATION attempt 1 for test")
    assert "Files modified: src/validator.js" in fixes[0][1]
    merge_msg = git(repo, "log", "-1", "--format=%B", r.merge_commit or "").strip()
    assert merge_msg.startswith(f"feat(merge): complete MERGE phase for {PACKAGE_NAME}")
    assert merge_msg.endswith("[Turn-based generation step 15]")
    # Only the package's files were committed (never `git add -A`).
    changed = git(repo, "diff", "--name-only", f"{ctx.base_commit}..main").split()
    assert changed and all(p.startswith(PACKAGE_PATH + "/") for p in changed)


async def test_later_phases_are_shown_what_earlier_phases_wrote(full_run: FullRun) -> None:
    by_phase = full_run.env.requests_by_phase()
    core_validator = by_phase[P.CRITICAL_FIXES][0].all_text()
    # CORE_IMPLEMENTATION's validator (with its bug) is in ENTRY_POINT's and TESTING's prompts.
    for later in (P.ENTRY_POINT, P.TESTING):
        text = by_phase[later][0].all_text()
        assert '<file path="src/validator.js">' in text
        assert "sizeOf(value) <= schema.min" in text
    # ERROR_HANDLING's errors.js reaches TESTING; the tree lists every file so far.
    testing = by_phase[P.TESTING][0].all_text()
    assert "class SchemaError extends DataValidatorError" in testing
    assert "src/utils.js" in testing
    # CRITICAL_FIXES works from INTEGRATION_REVIEW's real answer and file.
    assert REVIEW_FINDING in core_validator
    assert '<file path="docs/integration-review.md">' in core_validator
    # BUILD_VALIDATION's request carries the real failing test output.
    bv = by_phase[P.BUILD_VALIDATION][0].all_text()
    assert "min and max are inclusive" in bv and "fix attempt 1 of 3" in bv
    # Completed steps' summaries are shown to later phases.
    polish = by_phase[P.FINAL_POLISH][0].all_text()
    assert "1. PLANNING: Wrote the architecture blueprint." in polish


def assert_temperature(body: dict, phase: GenerationPhase, expected: float) -> None:
    """The server receives the phase's temperature (``llm.sendTemperature``, on by default)."""
    assert LLMSettings().send_temperature
    assert body["temperature"] == expected, phase


async def test_default_budgets_temperatures_and_cached_prefix(full_run: FullRun) -> None:
    by_phase = full_run.env.requests_by_phase()
    files = full_run.env.request_files_by_phase()
    assert set(by_phase) == set(PHASE_ORDER) - {P.MERGE}
    prefixes = set()
    for phase, reqs in by_phase.items():
        assert len(reqs) == 1, phase
        body = reqs[0].body
        assert body["max_tokens"] == spec(phase).max_tokens, phase
        assert [r.temperature for r in files[phase]] == [spec(phase).temperature], phase
        assert_temperature(body, phase, spec(phase).temperature)
        first = body["messages"][0]["content"][0]
        assert first.get("cache_control") == {"type": "ephemeral"}
        prefixes.add(first["text"])
    assert len(prefixes) == 1  # role + requirements + plan: identical, so cacheable
    assert "Target coverage: 90%" in prefixes.pop()


async def test_tokens_and_cost_per_phase_in_state_file(full_run: FullRun) -> None:
    data = json.loads(state_path(full_run.env.state_dir, full_run.session_id).read_text())
    assert data["status"] == "completed" and data["failureRecovery"] is None
    assert data["currentPhase"] is None
    steps = data["completedSteps"]
    assert [s["phase"] for s in steps] == [p.value for p in PHASE_ORDER]
    model_steps = [s for s in steps if s["phase"] != "MERGE"]
    for s in model_steps:
        assert s["usage"]["outputTokens"] > 0 and s["costUsd"] > 0, s["phase"]
        assert s["modelCalls"] == 1
        assert re.fullmatch(r"[0-9a-f]{40}", s["commit"])
        assert s["timestamp"] > 1_600_000_000_000
    # Every phase after the first reads the cached prefix instead of paying for it again.
    assert all(s["usage"]["cacheReadInputTokens"] > 0 for s in model_steps[1:])
    total_out = sum(s["usage"]["outputTokens"] for s in steps)
    assert data["totalUsage"]["outputTokens"] == total_out
    assert abs(data["totalCostUsd"] - sum(s["costUsd"] for s in steps)) < 1e-5
    assert data["lastSuccessfulCommit"] == steps[-1]["commit"]
    # The workflow's result carries the same per-phase figures.
    by = {s.phase: s for s in full_run.result.steps}
    assert by[P.CORE_IMPLEMENTATION].usage.output_tokens == model_steps[3]["usage"]["outputTokens"]
    assert full_run.result.total_cost_usd == data["totalCostUsd"]


async def test_phase_selection_and_overrides_are_honoured(
    client: Client, tmp_path: Path, task_queue: str
) -> None:
    repo = make_workspace(tmp_path / "repo")
    tbg = {
        "phasesToExecute": ["PLANNING", "FOUNDATION", "TYPES", "MERGE"],
        "phasesToSkip": ["foundation"],
        "tokenBudgets": {"TYPES": 4500},
        "temperatures": {"PLANNING": 0.5},
    }
    with scripted_server({"PKGBUILDER_HOME": str(tmp_path / "home")}) as server:
        env = GenEnv(
            repo=repo,
            settings=gen_settings(task_queue, tbg),
            server=server,
            home=tmp_path / "home",
            responder=server.default,
        )  # type: ignore[arg-type]
        session = new_session_id()
        async with running_workers(client, env.settings):
            result = await client.execute_workflow(
                TurnBasedGenerationWorkflow.run,
                env.input(session),
                id=f"turn-based-{session}",
                task_queue=task_queue,
            )
        by_phase = env.requests_by_phase()
        files = env.request_files_by_phase()
    assert result.status is SessionStatus.COMPLETED
    assert [(s.phase, s.step_number) for s in result.steps] == [
        (P.PLANNING, 1),
        (P.TYPES, 2),
        (P.MERGE, 3),
    ]
    assert set(by_phase) == {P.PLANNING, P.TYPES}
    assert by_phase[P.PLANNING][0].body["max_tokens"] == 5000
    assert by_phase[P.TYPES][0].body["max_tokens"] == 4500
    assert files[P.PLANNING][0].temperature == 0.5 and files[P.TYPES][0].temperature == 0.2
    assert_temperature(by_phase[P.PLANNING][0].body, P.PLANNING, 0.5)
    assert_temperature(by_phase[P.TYPES][0].body, P.TYPES, 0.2)
    # MERGE without BUILD_VALIDATION does not merge and says how to.
    assert not result.merged
    assert result.merge_instructions is not None
    assert "BUILD_VALIDATION did not run" in result.merge_instructions
    assert f"git merge --no-ff {result.branch}" in result.merge_instructions
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == result.branch
    ctx = read_state(state_path(env.state_dir, session))
    msgs = [m for _, m in phase_commits(repo, ctx.base_commit, ctx.branch)]
    assert [m.splitlines()[0] for m in msgs] == [
        f"feat(planning): complete PLANNING phase for {PACKAGE_NAME}",
        f"feat(types): complete TYPES phase for {PACKAGE_NAME}",
    ]
    assert msgs[1].endswith("[Turn-based generation step 2]")


async def _retried_activities(handle: WorkflowHandle) -> set[str]:
    """Activity types whose last attempt was not the first (from the workflow history)."""
    scheduled: dict[int, str] = {}
    retried: set[str] = set()
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attrs.activity_type.name
        elif event.HasField("activity_task_started_event_attributes"):
            attrs2 = event.activity_task_started_event_attributes
            if attrs2.attempt > 1:
                retried.add(scheduled[attrs2.scheduled_event_id])
    return retried


HOOK = """#!/bin/sh
# Blocks the worker right after the TYPES phase's commit was written (once).
if git log -1 --format=%s | grep -q "complete TYPES phase" && [ ! -e "{marker}" ]; then
  touch "{marker}"
  sleep 300
fi
"""


async def test_worker_killed_mid_phase_applies_nothing_twice(
    temporal_env: WorkflowEnvironment, client: Client, tmp_path: Path, task_queue: str
) -> None:
    repo = make_workspace(tmp_path / "repo")
    marker = tmp_path / "types-committed"
    hook = repo / ".git" / "hooks" / "post-commit"
    hook.write_text(HOOK.format(marker=marker))
    hook.chmod(0o755)
    tbg = {"phasesToExecute": ["PLANNING", "FOUNDATION", "TYPES", "CORE_IMPLEMENTATION"]}
    settings = gen_settings(task_queue, tbg, heartbeat_seconds=3)
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(settings.model_dump_json())
    home = tmp_path / "home"
    with scripted_server({"PKGBUILDER_HOME": str(home)}) as server:
        env = GenEnv(
            repo=repo, settings=settings, server=server, home=home, responder=server.default
        )  # type: ignore[arg-type]
        session = new_session_id()
        handle = await client.start_workflow(
            TurnBasedGenerationWorkflow.run,
            env.input(session),
            id=f"turn-based-{session}",
            task_queue=task_queue,
        )
        proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).parents[1] / "support" / "generation_worker.py"),
                temporal_env.client.service_client.config.target_host,
                str(settings_file),
            ],
            start_new_session=True,
            env=dict(os.environ),
            stdout=subprocess.DEVNULL,
        )
        try:
            for _ in range(600):  # the hook fires once TYPES is committed (≤ 60 s)
                if marker.exists() or proc.poll() is not None:
                    break
                await asyncio.sleep(0.1)
            assert marker.exists(), "the worker never committed TYPES"
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # the worker, its git and the hook
            proc.wait()
        async with running_workers(client, settings):
            result = await handle.result()
        by_phase = env.requests_by_phase()
        retried = await _retried_activities(handle)
    assert result.status is SessionStatus.COMPLETED
    # The apply+commit of TYPES was cut off after its commit and ran again on the new worker.
    assert "apply_generation_phase" in retried
    ctx = read_state(state_path(env.state_dir, session))
    commits = phase_commits(repo, ctx.base_commit, ctx.branch)
    subjects = [m.splitlines()[0] for _, m in commits]
    assert subjects == [
        f"feat({p.lower()}): complete {p} phase for {PACKAGE_NAME}"
        for p in ("PLANNING", "FOUNDATION", "TYPES", "CORE_IMPLEMENTATION")
    ]
    types_step = ctx.step_of(P.TYPES)
    assert types_step is not None and types_step.commit == commits[2][0]
    assert types_step.files == ["src/types.js"]
    # The model was asked once per phase: the restarted worker found TYPES' commit.
    assert {p: len(r) for p, r in by_phase.items()} == {
        P.PLANNING: 1,
        P.FOUNDATION: 1,
        P.TYPES: 1,
        P.CORE_IMPLEMENTATION: 1,
    }
    assert git(repo, "status", "--porcelain", "--", PACKAGE_PATH).strip() == ""


async def test_no_secret_in_the_history_or_the_state_file(
    full_run: FullRun, client: Client
) -> None:
    handle = client.get_workflow_handle(f"turn-based-{full_run.session_id}")
    history = (await handle.fetch_history()).to_json()
    state = state_path(full_run.env.state_dir, full_run.session_id).read_text()
    key = full_run.env.server.api_key
    assert key not in history and key not in state
    assert "ANTHROPIC_API_KEY" not in history
