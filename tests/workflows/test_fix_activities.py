"""Fix-loop activities: prompt choice, request content, apply + commit, hostile answers.

Real git repositories in tmp dirs; the end-to-end tests run prepare -> call_llm -> apply
through real workers (main queue + LLM queue) against the scripted Messages-API server.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from pkgbuilder.activities.fix import apply_fix_response, prepare_fix_request
from pkgbuilder.activities.llm import LLMActivities
from pkgbuilder.config import BuildSettings
from pkgbuilder.llm.fileops import apply_file_operations
from pkgbuilder.llm.fix import choose_fix_prompt, fix_commit_subject
from pkgbuilder.llm.prompts import BUILTIN_FIX_PROMPT, builtin_fix_prompt
from pkgbuilder.llm.store import write_response
from pkgbuilder.models.build import Failure, FailureType
from pkgbuilder.models.llm import (
    ApplyFixInput,
    FileOperation,
    FixAttemptInput,
    FixAttemptOutcome,
    LLMRequest,
    ModelResponse,
    PrepareFixInput,
    StoredResponse,
)
from tests.conftest import git
from tests.support.fake_anthropic import (
    FakeAnthropic,
    Reply,
    contract_answer,
)
from tests.support.llm_workflows import FixAttemptProbeWorkflow

PKG = "@acme/adder"
PKG_PATH = "packages/core/adder"
TEST_TAIL = (
    "FAIL tests/add.test.ts > add > adds\n"
    "AssertionError: expected 4 to be 3\n"
    f" at {PKG_PATH}/src/add.ts:2:10\n"
)
FAILURES = [
    Failure(
        type=FailureType.TEST,
        message="1 test failed",
        command=["npm", "test"],
        output_tail=TEST_TAIL,
    ),
    Failure(
        type=FailureType.LINT,
        message="2 lint errors",
        command=["npm", "run", "lint"],
        output_tail="src/index.ts:1:1 no-unused-vars",
    ),
    Failure(type=FailureType.TEST, message="coverage run failed too"),
]
FIXED_ADD = "export function add(a: number, b: number): number {\n  return a + b;\n}\n"


def write_workspace(root: Path) -> Path:
    pkg = root / PKG_PATH
    (pkg / "src").mkdir(parents=True)
    (pkg / "tests").mkdir()
    (pkg / "node_modules" / "dep").mkdir(parents=True)
    (pkg / "dist").mkdir()
    (root / "package.json").write_text('{"private": true, "workspaces": ["packages/*/*"]}\n')
    (root / ".gitignore").write_text("node_modules/\ndist/\n")
    (pkg / "package.json").write_text(json.dumps({"name": PKG, "version": "1.0.0"}) + "\n")
    (pkg / "tsconfig.json").write_text('{"compilerOptions": {"strict": true}}\n')
    (pkg / "src" / "index.ts").write_text("export { add } from './add';\n")
    (pkg / "src" / "add.ts").write_text(
        "export function add(a: number, b: number): number {\n  return a + b + 1;\n}\n"
    )
    (pkg / "tests" / "add.test.ts").write_text("expect(add(1, 2)).toBe(3);\n")
    (pkg / "node_modules" / "dep" / "index.js").write_text("SHOULD-NOT-BE-SENT\n")
    (pkg / "dist" / "index.js").write_text("BUILD-OUTPUT-NOT-SENT\n")
    (root / "plans").mkdir()
    (root / "plans" / "adder.md").write_text("# Adder\nadd(a, b) returns the sum.\n")
    return root


@pytest.fixture
def workspace(make_git_repo: Any, tmp_path: Path) -> Path:
    src = write_workspace(tmp_path / "template")
    return Path(make_git_repo(src, name="ws"))


def settings_for(task_queue: str = "unused", **fix: Any) -> BuildSettings:
    return BuildSettings.model_validate(
        {
            "fix": fix,
            "llm": {"retryInitialIntervalSeconds": 0.05, "requestTimeoutSeconds": 5},
            "temporal": {"taskQueue": task_queue, "llmTaskQueue": f"{task_queue}-llm"},
        }
    )


def prepare(workspace: Path, attempt: int = 1, **kw: Any) -> Any:
    inp = PrepareFixInput(
        workspace_root=str(workspace),
        package_name=PKG,
        package_path=PKG_PATH,
        plan_path=kw.pop("plan_path", "plans/adder.md"),
        failures=kw.pop("failures", FAILURES),
        attempt=attempt,
        build_id="b1",
        config=kw.pop("config", settings_for()),
    )
    return ActivityEnvironment().run(prepare_fix_request, inp)


def snapshot(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        if ".git" in p.parts:
            continue
        out[str(p.relative_to(root))] = (
            os.readlink(p).encode() if p.is_symlink() else p.read_bytes() if p.is_file() else b""
        )
    return out


# --- prompt selection ------------------------------------------------------------------


def test_prompt_selection_order(tmp_path: Path) -> None:
    prompts_dir = tmp_path / ".claude" / "agents" / "fix-prompts"
    assert choose_fix_prompt(tmp_path, ["test", "lint"]) == (
        builtin_fix_prompt(),
        BUILTIN_FIX_PROMPT,
    )
    prompts_dir.mkdir(parents=True)
    (prompts_dir / "generic-developer.md").write_text("GENERIC PROMPT")
    assert choose_fix_prompt(tmp_path, ["test", "lint"]) == (
        "GENERIC PROMPT",
        ".claude/agents/fix-prompts/generic-developer.md",
    )
    (prompts_dir / "lint-test.md").write_text("LINT AND TEST PROMPT")
    (prompts_dir / "test.md").write_text("TEST PROMPT")
    assert choose_fix_prompt(tmp_path, ["test", "lint"]) == (
        "LINT AND TEST PROMPT",
        ".claude/agents/fix-prompts/lint-test.md",
    )
    assert choose_fix_prompt(tmp_path, ["test"])[1] == ".claude/agents/fix-prompts/test.md"
    assert choose_fix_prompt(tmp_path, ["coverage"])[1].endswith("generic-developer.md")


def test_prompt_symlinked_outside_the_workspace_is_ignored(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    prompts_dir = ws / ".claude" / "agents" / "fix-prompts"
    prompts_dir.mkdir(parents=True)
    (tmp_path / "elsewhere.md").write_text("FOREIGN")
    (prompts_dir / "test.md").symlink_to(tmp_path / "elsewhere.md")
    assert choose_fix_prompt(ws, ["test"])[1] == BUILTIN_FIX_PROMPT


def test_builtin_prompt_is_shipped() -> None:
    assert "do not disable checks" in builtin_fix_prompt()


# --- the request -----------------------------------------------------------------------


def test_request_content(workspace: Path, pkgbuilder_home: Path) -> None:
    prompts_dir = workspace / ".claude" / "agents" / "fix-prompts"
    prompts_dir.mkdir(parents=True)
    (prompts_dir / "lint-test.md").write_text("You fix lint and tests.")
    result = prepare(workspace)
    assert result.agent_prompt_used == ".claude/agents/fix-prompts/lint-test.md"
    assert result.failure_types == ["lint", "test"]
    path = Path(result.request_path)
    assert path == pkgbuilder_home / "llm" / "requests" / f"{result.request_sha256}.json"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == result.request_sha256
    request = LLMRequest.model_validate_json(path.read_bytes())
    assert (request.purpose, request.max_tokens, request.temperature) == ("fix", 8000, 0.2)
    assert request.system[0].text == "You fix lint and tests." and not request.system[0].cache
    assert request.system[1].cache and "Answer format" in request.system[1].text
    plan, files, failures, task = request.messages[0].content
    assert plan.cache and "add(a, b) returns the sum." in plan.text
    assert not (files.cache or failures.cache or task.cache)
    # Files named in the failure output come first, then package.json and the rest.
    assert result.files_included[:3] == ["tests/add.test.ts", "src/add.ts", "src/index.ts"]
    assert set(result.files_included) == {
        "src/add.ts",
        "tests/add.test.ts",
        "src/index.ts",
        "package.json",
        "tsconfig.json",
    }
    assert "return a + b + 1;" in files.text
    assert "SHOULD-NOT-BE-SENT" not in path.read_text()
    assert "BUILD-OUTPUT-NOT-SENT" not in path.read_text()
    assert "expected 4 to be 3" in failures.text and "`npm run lint`" in failures.text
    assert "attempt 1 of 3" in task.text and "lint, test" in task.text


def test_request_is_stable_per_attempt_and_distinct_across_attempts(
    workspace: Path, pkgbuilder_home: Path
) -> None:
    first = prepare(workspace, attempt=1)
    assert prepare(workspace, attempt=1).request_sha256 == first.request_sha256
    assert prepare(workspace, attempt=2).request_sha256 != first.request_sha256


def test_context_budget_and_confinement(
    workspace: Path, pkgbuilder_home: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside-secret.ts"
    outside.write_text("export const SECRET = 'outside';\n")
    (workspace / PKG_PATH / "src" / "leak.ts").symlink_to(outside)
    (workspace / PKG_PATH / "src" / "big.ts").write_text("// big\n" * 10_000)
    result = prepare(workspace, config=settings_for(contextBudgetBytes=400))
    text = Path(result.request_path).read_text()
    assert "outside-secret" not in text and "SECRET" not in text
    assert "src/leak.ts" not in result.files_included
    assert sum(len((workspace / PKG_PATH / p).read_bytes()) for p in result.files_included) <= 400
    assert "src/big.ts" in result.files_omitted and "Not shown (size budget)" in text


def test_without_plan_the_prompt_has_no_plan_block(workspace: Path, pkgbuilder_home: Path) -> None:
    result = prepare(workspace, plan_path=None)
    request = LLMRequest.model_validate_json(Path(result.request_path).read_bytes())
    assert len(request.messages[0].content) == 3
    assert result.agent_prompt_used == BUILTIN_FIX_PROMPT


def test_missing_package_dir_is_a_clear_failure(workspace: Path, pkgbuilder_home: Path) -> None:
    inp = PrepareFixInput(
        workspace_root=str(workspace),
        package_name=PKG,
        package_path="../elsewhere",
        failures=FAILURES,
        attempt=1,
        config=settings_for(),
    )
    with pytest.raises(ApplicationError) as e:
        ActivityEnvironment().run(prepare_fix_request, inp)
    assert e.value.type == "InvalidFixInput" and e.value.non_retryable


# --- apply + commit --------------------------------------------------------------------


def stored(home: Path, files: list[dict[str, Any]], sha: str = "a" * 64) -> Path:
    path = home / "llm" / "responses" / f"{sha}.json"
    response = ModelResponse(summary="fixed", files=[FileOperation(**f) for f in files])
    write_response(path, StoredResponse(request_sha256=sha, model="m", response=response))
    return path


def apply(workspace: Path, response_path: Path, attempt: int = 1) -> Any:
    inp = ApplyFixInput(
        workspace_root=str(workspace),
        package_name=PKG,
        package_path=PKG_PATH,
        response_path=str(response_path),
        attempt=attempt,
        failure_types=["test", "lint"],
        config=settings_for(),
    )
    return ActivityEnvironment().run(apply_fix_response, inp)


def test_apply_commits_exactly_the_answer(workspace: Path, pkgbuilder_home: Path) -> None:
    # Another build's work in progress: one dirty file, one staged file. Neither may be taken.
    (workspace / "packages" / "other.txt").write_text("someone else's\n")
    (workspace / "staged.txt").write_text("staged by another build\n")
    git(workspace, "add", "staged.txt")
    response = stored(
        pkgbuilder_home,
        [
            {"path": "src/add.ts", "operation": "update", "content": FIXED_ADD},
            {"path": "src/helpers/sum.ts", "operation": "create", "content": "export {};\n"},
            {"path": "tests/add.test.ts", "operation": "delete"},
        ],
    )
    result = apply(workspace, response)
    assert result.files_changed == ["src/add.ts", "src/helpers/sum.ts", "tests/add.test.ts"]
    assert result.commit and not result.already_applied and result.summary == "fixed"
    subject = git(workspace, "log", "-1", "--format=%s").strip()
    assert subject == "fix(@acme/adder): attempt 1 for lint, test"
    assert subject == fix_commit_subject(PKG, 1, ["test", "lint"])
    assert f"Pkgbuilder-Request: {'a' * 64}" in git(workspace, "log", "-1", "--format=%B")
    committed = git(workspace, "show", "--name-status", "--format=", "HEAD").split("\n")
    assert sorted(x for x in committed if x) == [
        f"A\t{PKG_PATH}/src/helpers/sum.ts",
        f"D\t{PKG_PATH}/tests/add.test.ts",
        f"M\t{PKG_PATH}/src/add.ts",
    ]
    status = git(workspace, "status", "--porcelain")
    assert "A  staged.txt" in status and "?? packages/other.txt" in status


def test_apply_is_idempotent_when_retried(workspace: Path, pkgbuilder_home: Path) -> None:
    response = stored(
        pkgbuilder_home, [{"path": "src/add.ts", "operation": "update", "content": FIXED_ADD}]
    )
    first = apply(workspace, response)
    count = git(workspace, "rev-list", "--count", "HEAD")
    again = apply(workspace, response)
    assert again.already_applied and again.commit == first.commit
    assert again.files_changed == []
    assert git(workspace, "rev-list", "--count", "HEAD") == count


def test_retry_after_crash_between_write_and_commit(workspace: Path, pkgbuilder_home: Path) -> None:
    ops = [{"path": "src/add.ts", "operation": "update", "content": FIXED_ADD}]
    response = stored(pkgbuilder_home, ops)
    apply_file_operations(workspace / PKG_PATH, [FileOperation(**o) for o in ops])
    result = apply(workspace, response)  # the retried activity: files already there
    assert result.commit and not result.already_applied
    assert git(workspace, "status", "--porcelain") == ""


def test_answer_that_changes_nothing(workspace: Path, pkgbuilder_home: Path) -> None:
    response = stored(pkgbuilder_home, [])
    result = apply(workspace, response)
    assert result.commit is None and "nothing to commit" in (result.note or "")


def test_a_locked_index_is_retryable_and_a_git_failure_is_not(
    workspace: Path, pkgbuilder_home: Path
) -> None:
    response = stored(
        pkgbuilder_home, [{"path": "src/add.ts", "operation": "update", "content": FIXED_ADD}]
    )
    lock = workspace / ".git" / "index.lock"
    lock.write_text("")  # another build is committing in the same repository
    with pytest.raises(ApplicationError) as busy:
        apply(workspace, response)
    assert busy.value.type == "GitBusy" and not busy.value.non_retryable
    lock.unlink()
    # A configuration git refuses to write objects with: a real failure, not a busy lock.
    (workspace / ".git" / "config").write_text(
        (workspace / ".git" / "config").read_text() + "[core]\n\tsharedRepository = bogus\n"
    )
    with pytest.raises(ApplicationError) as failed:
        apply(workspace, response)
    assert failed.value.type == "GitCommitFailed" and failed.value.non_retryable
    assert "failed in" in str(failed.value)


def test_not_a_git_repository(tmp_path: Path, pkgbuilder_home: Path) -> None:
    ws = write_workspace(tmp_path / "plain")
    response = stored(
        pkgbuilder_home, [{"path": "src/add.ts", "operation": "update", "content": FIXED_ADD}]
    )
    result = apply(ws, response)
    assert result.files_changed == ["src/add.ts"] and result.commit is None
    assert "not a git repository" in (result.note or "")
    assert (ws / PKG_PATH / "src" / "add.ts").read_text() == FIXED_ADD


def test_hostile_answer_writes_nothing_anywhere(
    workspace: Path, pkgbuilder_home: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace / PKG_PATH / "escape").symlink_to(outside)
    git(workspace, "add", "-A")
    git(workspace, "commit", "-q", "-m", "symlink")
    head = git(workspace, "rev-parse", "HEAD")
    response = stored(
        pkgbuilder_home,
        [
            {"path": "src/add.ts", "operation": "update", "content": FIXED_ADD},
            {"path": "../../../x", "operation": "create", "content": "evil"},
            {"path": "/etc/x-pkgbuilder", "operation": "create", "content": "evil"},
            {"path": "escape/payload.sh", "operation": "create", "content": "evil"},
            {"path": ".git/hooks/post-commit", "operation": "create", "content": "evil"},
            {"path": "src/huge.ts", "operation": "create", "content": "x" * 10_000_000},
        ],
    )
    before = snapshot(tmp_path)
    with pytest.raises(ApplicationError) as e:
        apply(workspace, response)
    assert e.value.type == "UnsafeFileOperation" and e.value.non_retryable
    problems = e.value.details[0]["problems"]
    assert len(problems) == 6  # five bad operations and the answer's total size
    assert snapshot(tmp_path) == before
    assert not Path("/etc/x-pkgbuilder").exists()
    assert git(workspace, "rev-parse", "HEAD") == head
    assert git(workspace, "status", "--porcelain") == ""


# --- one whole attempt through real workers ---------------------------------------------


async def run_attempt(client: Client, task_queue: str, workspace: Path) -> FixAttemptOutcome:
    settings = settings_for(task_queue)
    inp = FixAttemptInput(
        build_id="b1",
        workspace_root=str(workspace),
        package_name=PKG,
        package_path=PKG_PATH,
        plan_path="plans/adder.md",
        failures=FAILURES,
        attempt=1,
        config=settings,
    )
    llm = LLMActivities(settings)
    async with (
        Worker(
            client,
            task_queue=task_queue,
            workflows=[FixAttemptProbeWorkflow],
            activities=[prepare_fix_request, apply_fix_response],
            activity_executor=_executor(),
        ),
        Worker(client, task_queue=f"{task_queue}-llm", activities=[llm.call_llm]),
    ):
        return await client.execute_workflow(
            FixAttemptProbeWorkflow.run,
            inp,
            id=f"fix-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=FixAttemptOutcome,
        )


def _executor() -> Any:
    import concurrent.futures

    return concurrent.futures.ThreadPoolExecutor(4)


@pytest.mark.slow
async def test_fix_attempt_end_to_end(
    client: Client,
    task_queue: str,
    workspace: Path,
    pkgbuilder_home: Path,
    fake_anthropic: FakeAnthropic,
) -> None:
    fake_anthropic.script(
        Reply.answer(
            contract_answer(
                [{"path": "src/add.ts", "operation": "update", "content": FIXED_ADD}],
                summary="add returned a + b + 1",
                fenced=True,
            )
        )
    )
    outcome = await run_attempt(client, task_queue, workspace)
    attempt = outcome.attempt
    assert not outcome.stop_loop and attempt.error is None and attempt.succeeded
    assert (attempt.count, attempt.types) == (1, ["lint", "test"])
    assert attempt.agent_prompt_used == BUILTIN_FIX_PROMPT
    assert attempt.files_changed == ["src/add.ts"] and attempt.commit
    assert attempt.tokens.output_tokens == fake_anthropic.requests[0].output_tokens > 0
    assert attempt.cost_usd > 0 and attempt.fix_duration >= 0
    assert (workspace / PKG_PATH / "src" / "add.ts").read_text() == FIXED_ADD
    assert git(workspace, "log", "-1", "--format=%s").strip() == (
        "fix(@acme/adder): attempt 1 for lint, test"
    )
    sent = fake_anthropic.requests[0].all_text()
    assert "expected 4 to be 3" in sent and "return a + b + 1;" in sent


@pytest.mark.slow
async def test_fix_attempt_without_api_key_stops_the_loop(
    client: Client,
    task_queue: str,
    workspace: Path,
    pkgbuilder_home: Path,
    fake_anthropic: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    outcome = await run_attempt(client, task_queue, workspace)
    assert outcome.stop_loop and not outcome.attempt.succeeded
    assert "MissingApiKey" in (outcome.attempt.error or "")
    assert "ANTHROPIC_API_KEY" in (outcome.attempt.error or "")
    assert fake_anthropic.requests == []
    assert git(workspace, "status", "--porcelain") == ""


@pytest.mark.slow
async def test_fix_attempt_with_hostile_answer_records_the_paid_call(
    client: Client,
    task_queue: str,
    workspace: Path,
    pkgbuilder_home: Path,
    tmp_path: Path,
    fake_anthropic: FakeAnthropic,
) -> None:
    fake_anthropic.script(
        Reply.contract(
            [
                {"path": "src/add.ts", "operation": "update", "content": FIXED_ADD},
                {"path": "../../../../etc/cron.d/x", "operation": "create", "content": "evil"},
            ]
        )
    )
    before = snapshot(tmp_path)
    outcome = await run_attempt(client, task_queue, workspace)
    attempt = outcome.attempt
    assert not outcome.stop_loop and not attempt.succeeded
    assert "UnsafeFileOperation" in (attempt.error or "") and "'..'" in (attempt.error or "")
    assert attempt.tokens.output_tokens > 0 and attempt.cost_usd > 0
    assert {k: v for k, v in snapshot(tmp_path).items() if "pkgbuilder-home" not in k} == {
        k: v for k, v in before.items() if "pkgbuilder-home" not in k
    }
    assert len(fake_anthropic.requests) == 1  # non-retryable: not applied, not re-asked
