"""``pkgbuilder start / resume / sessions / dashboard`` against a real dev server, real git
and the scripted Messages API: a phase fails for good, the failure is recorded, ``resume``
continues without asking the model again for the finished phases."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from pkgbuilder.cli.app import app
from pkgbuilder.config import load_settings
from pkgbuilder.runtime.worker import running_workers
from pkgbuilder.session.phases.definitions import GenerationPhase
from pkgbuilder.session.state import SessionStatus, read_state, state_path
from tests.support.fake_anthropic import Reply
from tests.support.generation_env import (
    GenEnv,
    git,
    make_workspace,
    new_session_id,
    phase_commits,
    scripted_server,
)
from tests.support.generation_script import PACKAGE_NAME, PACKAGE_PATH, PLAN_PATH

P = GenerationPhase
pytestmark = pytest.mark.slow

CONFIG = """
[llm]
tokensPerMinute = 10000000
maxAttempts = 2
retryInitialIntervalSeconds = 0.2

[timeouts]
heartbeatSeconds = 20

[turnBasedGeneration]
phasesToExecute = ["PLANNING", "FOUNDATION", "TYPES", "CORE_IMPLEMENTATION", "ENTRY_POINT"]
"""


@dataclass
class CliEnv:
    gen: GenEnv
    cli_env: dict[str, str]

    async def run(self, *args: str) -> tuple[int, str, str]:
        """Run the CLI in a thread (it runs its own event loop) with the test's environment."""
        runner = CliRunner()
        result = await asyncio.to_thread(
            runner.invoke, app, [*args, "--workspace", str(self.gen.repo)], env=self.cli_env
        )
        # Rich wraps long sentences at the terminal width; compare text with spaces joined.
        return result.exit_code, result.stdout, " ".join(result.stderr.split())


@pytest_asyncio.fixture(scope="module")
async def cli(
    temporal_env: WorkflowEnvironment, client: Client, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[CliEnv]:
    base = tmp_path_factory.mktemp("gen-cli")
    repo = make_workspace(base / "repo")
    (repo / "pkgbuilder.toml").write_text(CONFIG)
    git(repo, "add", "--", "pkgbuilder.toml")
    git(repo, "commit", "-q", "-m", "config")
    tq = f"tq-gen-cli-{new_session_id()}"
    env = {
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": tq,
        "PKGBUILDER_LLM_TASK_QUEUE": f"{tq}-llm",
        "PKGBUILDER_HOME": str(base / "home"),
        "GENERATION_STATE_DIR": ".generation-state",
    }
    with scripted_server(env) as server:
        settings = load_settings(repo)
        gen = GenEnv(
            repo=repo,
            settings=settings,
            server=server,
            home=base / "home",
            responder=server.default,
        )  # type: ignore[arg-type]
        async with running_workers(client, settings):
            yield CliEnv(gen=gen, cli_env=env)


@pytest_asyncio.fixture(scope="module")
async def failed_then_resumed(cli: CliEnv) -> AsyncIterator[dict]:
    """Start (TYPES answers 400 once: non-retryable) then resume; keep what each step saw."""
    cli.gen.responder.fail[P.TYPES] = [Reply.bad_request("messages: prompt is too long")]
    code1, out1, err1 = await cli.run(
        "start", "--name", PACKAGE_NAME, "--category", "core", "--plan", PLAN_PATH, "--json"
    )
    first = json.loads(out1)
    session = first["sessionId"]
    state_after_failure = read_state(state_path(cli.gen.state_dir, session))
    code_sessions, out_sessions, _ = await cli.run("sessions", "--json")
    code_dash, out_dash, _ = await cli.run("dashboard", session, "--once")
    seen = len(cli.gen.server.requests)
    # Procedure 4: a budget raised in the config applies to the resumed session.
    (cli.gen.repo / "pkgbuilder.toml").write_text(
        CONFIG + "\n[turnBasedGeneration.tokenBudgets]\nTYPES = 4100\n"
    )
    code2, out2, err2 = await cli.run("resume", session, "--json")
    yield {
        "code1": code1,
        "first": first,
        "err1": err1,
        "failed_state": state_after_failure,
        "sessions": (code_sessions, out_sessions),
        "dashboard": (code_dash, out_dash),
        "requests_before_resume": seen,
        "code2": code2,
        "second": json.loads(out2),
        "err2": err2,
        "session": session,
    }


async def test_start_prints_ids_and_records_the_failure(failed_then_resumed: dict) -> None:
    r = failed_then_resumed
    assert r["code1"] == 1, r["err1"]
    first = r["first"]
    assert first["status"] == "failed"
    assert first["sessionId"].startswith("gen-")
    assert first["workflowId"] == f"turn-based-{first['sessionId']}"
    assert f"session {first['sessionId']} workflow {first['workflowId']}" in r["err1"]
    fr = first["failureRecovery"]
    assert fr["failedStep"] == 3 and fr["phase"] == "TYPES" and fr["retryCount"] == 1
    assert "400" in fr["error"] and "retrying will not help" in fr["error"]
    assert f"pkgbuilder resume {first['sessionId']}" in r["err1"]
    assert [s["status"] for s in first["steps"]] == [
        "completed",
        "completed",
        "failed",
        "not-run",
        "not-run",
    ]
    ctx = r["failed_state"]
    assert ctx.status is SessionStatus.FAILED
    assert ctx.failure_recovery is not None and ctx.failure_recovery.failed_step == 3
    assert [s.phase for s in ctx.completed_steps] == [P.PLANNING, P.FOUNDATION]
    assert ctx.last_successful_commit == ctx.completed_steps[-1].commit


async def test_session_page_shows_every_phase(failed_then_resumed: dict, cli: CliEnv) -> None:
    """Every state checkpoint writes the session's page beside its state file; `pkgbuilder
    report gen-<id>` names it; it renders offline in Chromium (when installed)."""
    from pkgbuilder.reporting.html import is_self_contained
    from tests.support.browser import chromium_path, render

    r = failed_then_resumed
    code, out, err = await cli.run("report", r["session"])
    assert code == 0, err
    page = Path(out.strip())
    assert page == state_path(cli.gen.state_dir, r["session"]).with_suffix(".html")
    html = page.read_text(encoding="utf-8")
    assert is_self_contained(html) and f"Generation {r['session']}" in html
    steps = r["second"]["steps"]
    for step in steps:
        assert f"<td>{step['phase']}</td>" in html
    if chromium_path() is not None:
        shown = await asyncio.to_thread(render, page, {"phases": "table.phases tr.phase"})
        assert shown.console_errors == [] and shown.blocked_requests == []
        assert shown.counts["phases"] == len(steps)


async def test_sessions_and_dashboard_show_the_failed_session(failed_then_resumed: dict) -> None:
    r = failed_then_resumed
    code, out = r["sessions"]
    assert code == 0
    listed = {s["sessionId"]: s for s in json.loads(out)}
    assert listed[r["session"]]["status"] == "failed"
    code, out = r["dashboard"]
    assert code == 0
    for text in (
        "Turn-Based Generation Dashboard",
        r["session"],
        PACKAGE_NAME,
        "FAILURE DETECTED",
        "TYPES",
        f"pkgbuilder resume {r['session']}",
    ):
        assert text in out, text


async def test_resume_skips_finished_phases_without_model_calls(
    failed_then_resumed: dict, cli: CliEnv
) -> None:
    r = failed_then_resumed
    assert r["code2"] == 0, r["err2"]
    second = r["second"]
    assert second["status"] == "completed"
    assert second["workflowId"].startswith(f"turn-based-{r['session']}-resume-")
    assert [s["status"] for s in second["steps"]] == [
        "skipped",
        "skipped",
        "completed",
        "completed",
        "completed",
    ]
    resumed = cli.gen.requests_by_phase(since=r["requests_before_resume"])
    assert set(resumed) == {P.TYPES, P.CORE_IMPLEMENTATION, P.ENTRY_POINT}  # none for 1-2
    assert all(len(v) == 1 for v in resumed.values())
    assert resumed[P.TYPES][0].body["max_tokens"] == 4100
    assert resumed[P.CORE_IMPLEMENTATION][0].body["max_tokens"] == 8000
    ctx = read_state(state_path(cli.gen.state_dir, r["session"]))
    assert ctx.status is SessionStatus.COMPLETED and ctx.failure_recovery is None
    assert [s.step_number for s in ctx.completed_steps] == [1, 2, 3, 4, 5]
    commits = phase_commits(cli.gen.repo, ctx.base_commit, ctx.branch)
    assert len(commits) == 5  # each phase committed exactly once across both runs
    assert ctx.workflow_id == second["workflowId"]
    assert [p.max_tokens for p in ctx.phases] == [5000, 3000, 4100, 8000, 2000]


async def test_resume_refuses_a_corrupt_state_file(cli: CliEnv) -> None:
    session = new_session_id()
    path = state_path(cli.gen.state_dir, session)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"sessionId": "' + session + '", ')
    code, out, err = await cli.run("resume", session)
    assert code == 2
    assert "is not valid JSON" in err and "Traceback" not in err + out
    code, _, err = await cli.run("resume", "../../etc/passwd")
    assert code == 2 and "is not a session id" in err


async def test_resume_refuses_dirty_tree_and_missing_commit(
    failed_then_resumed: dict, cli: CliEnv
) -> None:
    ctx = read_state(state_path(cli.gen.state_dir, failed_then_resumed["session"]))
    # A failed copy of the finished session: same branch and commits.
    session = new_session_id()
    broken = ctx.model_copy(
        update={
            "session_id": session,
            "status": SessionStatus.FAILED,
            "completed_steps": ctx.completed_steps[:2],
            "last_successful_commit": "0123456789abcdef0123456789abcdef01234567",
        }
    )
    from pkgbuilder.session.state import write_state

    write_state(state_path(cli.gen.state_dir, session), broken)
    stray = cli.gen.repo / PACKAGE_PATH / "src" / "stray.js"
    stray.write_text("// not committed\n")
    try:
        code, out, err = await cli.run("resume", session)
    finally:
        stray.unlink()
    assert code == 2, err
    assert "uncommitted changes (" in err and "src/stray.js" in err
    assert f"The last successful commit 0123456789ab of session {session} does not exist" in err
    assert "Traceback" not in err + out


async def test_live_dashboard_ends_with_a_finished_session(
    failed_then_resumed: dict, cli: CliEnv
) -> None:
    code, out, _ = await cli.run("dashboard", failed_then_resumed["session"], "--interval", "0.2")
    assert code == 0
    assert "completed" in out and "ENTRY_POINT" in out and "FAILURE DETECTED" not in out


async def test_start_detached_with_phases_from_the_command_line(
    failed_then_resumed: dict, cli: CliEnv, client: Client
) -> None:
    code, out, err = await cli.run(
        "start",
        "--name",
        PACKAGE_NAME,
        "--category",
        "core",
        "--plan",
        PLAN_PATH,
        "--phases",
        "planning,foundation,merge",
        "--no-merge",
        "--detach",
        "--json",
    )
    assert code == 0, err
    ids = json.loads(out)
    assert set(ids) == {"sessionId", "workflowId"}
    result = await client.get_workflow_handle(ids["workflowId"]).result()
    assert result["status"] == "completed"
    assert [s["phase"] for s in result["steps"]] == ["PLANNING", "FOUNDATION", "MERGE"]
    assert result["mergeInstructions"].startswith("Not merged: merging was turned off")


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("plain", ["--plan", "plans/nope.md"], "Plan file plans/nope.md does not exist"),
        ("no-git", [], "is not inside a git repository"),
        ("plain", ["--phases", "PLANNING,COFFEE"], "unknown generation phase 'COFFEE'"),
        ("plain", ["--name", "@acme/other"], "is for '@acme/data-validator', not '@acme/other'"),
        ("plain", ["--plan", "/etc/hosts"], "is outside the workspace"),
        ("plain", [], "No Anthropic API key"),
        ("dirty", [], "has uncommitted changes"),
    ],
)
def test_start_refuses_bad_input_in_one_sentence(
    tmp_path: Path, setup: str, args: list[str], message: str
) -> None:
    repo = make_workspace(tmp_path / "repo")
    if setup == "no-git":
        import shutil

        shutil.rmtree(repo / ".git")
    if setup == "dirty":  # the package directory the session would write
        (repo / "packages" / "core" / "data-validator").mkdir(parents=True, exist_ok=True)
        (repo / "packages" / "core" / "data-validator" / "stray.js").write_text("1\n")
    branches_before = (
        subprocess.run(["git", "branch"], cwd=repo, capture_output=True, text=True).stdout
        if setup != "no-git"
        else ""
    )
    opts = {
        "--name": PACKAGE_NAME,
        "--category": "core",
        "--plan": PLAN_PATH,
        "--workspace": str(repo),
    } | dict(zip(args[::2], args[1::2], strict=True))
    argv = ["start", *(x for option in opts.items() for x in option)]
    result = CliRunner().invoke(
        app,
        argv,
        env={"TEMPORAL_ADDRESS": "127.0.0.1:1", "ANTHROPIC_API_KEY": None, "CLAUDE_API_KEY": None},
    )
    err = " ".join(result.stderr.split())
    assert result.exit_code == 2, err
    assert message in err and "Traceback" not in err
    # Preconditions come first: no branch, no state directory was created.
    assert not (repo / ".generation-state").exists()
    if setup != "no-git":
        assert (
            subprocess.run(["git", "branch"], cwd=repo, capture_output=True, text=True).stdout
            == branches_before
        )
