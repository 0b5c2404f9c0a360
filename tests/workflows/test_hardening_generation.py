"""Hardening: a phase answer that lacks a required file is re-asked within the step, the
re-ask counted in the step's usage; the step fails only when the re-asked answer still lacks
it (issue 15 item 18). Real server, worker, git; the model's words are scripted."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError

from pkgbuilder.runtime.worker import running_workers
from pkgbuilder.session.phases.definitions import GenerationPhase as P
from pkgbuilder.session.state import SessionStatus, read_state, state_path
from pkgbuilder.workflows.session import TurnBasedGenerationWorkflow
from tests.support.fake_anthropic import Reply
from tests.support.generation_env import (
    GenEnv,
    gen_settings,
    make_workspace,
    new_session_id,
    scripted_server,
)

NO_ARCHITECTURE = Reply.contract(
    [{"path": "README.md", "operation": "create", "content": "# notes\n"}],
    summary="forgot the blueprint",
)


async def _run(
    client: Client, tmp_path: Path, task_queue: str, failures: int
) -> tuple[GenEnv, str, BaseException | None]:
    repo = make_workspace(tmp_path / "repo")
    tbg = {"phasesToExecute": ["PLANNING"]}
    with scripted_server({"PKGBUILDER_HOME": str(tmp_path / "home")}) as server:
        env = GenEnv(
            repo=repo,
            settings=gen_settings(task_queue, tbg),
            server=server,
            home=tmp_path / "home",
            responder=server.default,
        )  # type: ignore[arg-type]
        env.responder.fail[P.PLANNING] = [NO_ARCHITECTURE] * failures
        session = new_session_id()
        error: BaseException | None = None
        async with running_workers(client, env.settings):
            try:
                await client.execute_workflow(
                    TurnBasedGenerationWorkflow.run,
                    env.input(session),
                    id=f"turn-based-{session}",
                    task_queue=task_queue,
                )
            except WorkflowFailureError as e:
                error = e
    return env, session, error


async def test_missing_file_is_reasked_within_the_step(
    client: Client, tmp_path: Path, task_queue: str
) -> None:
    env, session, error = await _run(client, tmp_path, task_queue, failures=1)
    assert error is None
    asked = env.requests_by_phase()[P.PLANNING]
    assert len(asked) == 2
    reask = asked[1].all_text()
    assert "did not include every required file" in reask and "docs/architecture.md" in reask
    ctx = read_state(state_path(env.state_dir, session))
    assert ctx.status is SessionStatus.COMPLETED
    step = ctx.step_of(P.PLANNING)
    assert step is not None and step.model_calls == 2
    assert step.usage.total == sum(r.billed_tokens for r in asked)  # both answers counted
    assert (env.repo / "packages/core/data-validator/docs/architecture.md").is_file()


@pytest.mark.parametrize("failures", [2])
async def test_step_fails_only_when_the_reasked_answer_still_lacks_it(
    client: Client, tmp_path: Path, task_queue: str, failures: int
) -> None:
    env, session, error = await _run(client, tmp_path, task_queue, failures=failures)
    assert error is not None
    asked = env.requests_by_phase()[P.PLANNING]
    assert len(asked) == 2  # one re-ask, bounded
    ctx = read_state(state_path(env.state_dir, session))
    assert ctx.status is SessionStatus.FAILED and ctx.failure_recovery is not None
    assert (
        "still lacked docs/architecture.md after it was asked again" in ctx.failure_recovery.error
    )
    assert ctx.total_usage.total == sum(r.billed_tokens for r in asked)
