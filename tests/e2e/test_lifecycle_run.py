"""GenerationRunWorkflow end to end: real dev server, real git worktrees, real npm builds and
tests, the real TurnBasedGenerationWorkflow; only the model's words are scripted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from pkgbuilder import lifecycle
from pkgbuilder.config import load_settings
from pkgbuilder.lifecycle import store
from pkgbuilder.models.common import name_slug
from pkgbuilder.models.lifecycle import GenerationRunInput, GenerationRunResult, TaskStatus
from pkgbuilder.runtime.worker import running_workers
from pkgbuilder.workflows.lifecycle import GenerationRunWorkflow
from tests.conftest import REPO_ROOT, copy_workspace, git, pkgbuilder_cli
from tests.support.fake_anthropic import FakeAnthropic, Reply
from tests.support.lifecycle import (
    generated_files,
    package_of_request,
    responder,
    status,
    worktree_paths,
)

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "generation-monorepo"
PATHS = {
    "@gen/alpha": "packages/core/alpha",
    "@gen/beta": "packages/utility/beta",
    "@gen/gamma": "packages/service/gamma",
}


@pytest.mark.slow
async def test_run_generates_in_dependency_order_and_in_parallel(
    client: Client,
    task_queue: str,
    tmp_path: Path,
    pkgbuilder_home: Path,
    fake_anthropic: FakeAnthropic,
) -> None:
    repo = copy_workspace(FIXTURE, tmp_path / "repo")
    record = lifecycle.start(
        repo,
        pkgbuilder_home,
        regenerate=[("@gen/alpha", PATHS["@gen/alpha"])],
        plan_path="plans/master-plan.md",
    )
    name = record.name
    fake_anthropic.default = responder
    settings = load_settings(
        repo,
        env={},
        overrides={
            "temporal": {"taskQueue": task_queue, "llmTaskQueue": f"{task_queue}-llm"},
        },
    )
    async with running_workers(client, settings):
        result: GenerationRunResult = await client.execute_workflow(
            GenerationRunWorkflow.run,
            GenerationRunInput(
                repo=str(repo),
                home=str(pkgbuilder_home),
                generation=name,
                parallel=2,
                config=settings,
            ),
            id=f"generation-run-{name}-{task_queue}",
            task_queue=task_queue,
        )

    log = store.log_path(pkgbuilder_home, name).read_text()
    assert result.failed == {} and result.blocked == {}, log
    assert sorted(result.done) == sorted(PATHS)
    saved = store.load(pkgbuilder_home, name)
    assert saved is not None
    tasks = saved.tasks
    assert {t.status for t in tasks.values()} == {TaskStatus.DONE}
    # alpha and beta ran at the same time; gamma (needs alpha) only after alpha was merged.
    alpha, beta, gamma = tasks["@gen/alpha"], tasks["@gen/beta"], tasks["@gen/gamma"]
    assert alpha.started_at and beta.started_at and gamma.started_at
    assert alpha.finished_at and beta.finished_at
    assert beta.started_at < alpha.finished_at and alpha.started_at < beta.finished_at
    assert gamma.started_at >= alpha.finished_at
    # Each commit of the generation touches only its own package.
    commits = git(repo, "rev-list", "--no-merges", f"{name}-start..{name}").split()
    assert len(commits) >= 4  # setup + one FOUNDATION commit per package
    for sha in commits:
        touched = git(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", sha).split()
        owners = {p for p, path in PATHS.items() if all(f.startswith(path + "/") for f in touched)}
        assert len(owners) == 1, (sha, touched)
    for package, path in PATHS.items():
        merge = tasks[package].merge_commit
        assert merge is not None
        touched = git(repo, "diff", "--name-only", f"{merge}^1", merge).split()
        assert touched and all(f.startswith(path + "/") for f in touched), (package, touched)
    # The main checkout (on the generation branch) followed the merges and is clean.
    assert "generated" in (repo / "packages/core/alpha/src/index.js").read_text()
    assert status(repo) == ""
    assert worktree_paths(repo) == [str(repo)]
    assert git(repo, "branch", "--list", "task/*").strip() == ""
    # Exactly one model call per package (FOUNDATION only, see the fixture's pkgbuilder.toml).
    assert len(fake_anthropic.requests) == 3
    # The gates share the build cache in the pkgbuilder home (docs/cache.md).
    assert list((pkgbuilder_home / "cache" / "artifacts").rglob("*.tgz"))


# ---- crash and resume through the CLI --------------------------------------------------------


@pytest.fixture
def address(temporal_env: WorkflowEnvironment) -> str:
    return temporal_env.client.service_client.config.target_host


def cli_env(address: str, task_queue: str, fake: FakeAnthropic) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "TEMPORAL_ADDRESS": address,
            "TEMPORAL_TASK_QUEUE": task_queue,
            "PKGBUILDER_LLM_TASK_QUEUE": f"{task_queue}-llm",
            "ANTHROPIC_API_KEY": fake.api_key,
            "ANTHROPIC_BASE_URL": fake.url,
            # Builds take a while, so the kill lands in the middle of a task's gate.
            "PKGBUILDER_TEST_SLEEP_MS": "3000",
        }
    )
    return env


def kill_mid_task(repo: Path, home: Path, name: str, env: dict[str, str], log: Path) -> None:
    """Start `generation run` (its worker in-process), wait until a task is building inside
    its worktree, then SIGKILL the whole process group."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            [pkgbuilder_cli(), "generation", "run", "--repo", str(repo), "--parallel", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            record = store.load(home, name)
            building = [
                t
                for t in (record.tasks.values() if record else [])
                if t.status == TaskStatus.IN_PROGRESS
                and t.worktree
                and (Path(t.worktree) / "node_modules" / ".pkgbuilder-install.json").exists()
            ]
            if building:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no task reached its gate in time:\n" + log.read_text())
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def resume(repo: Path, name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [pkgbuilder_cli(), "generation", "resume", name, "--repo", str(repo), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )


def assert_finished_cleanly(repo: Path, home: Path, name: str) -> None:
    record = store.load(home, name)
    assert record is not None
    assert {p: t.status for p, t in record.tasks.items()} == dict.fromkeys(PATHS, TaskStatus.DONE)
    assert worktree_paths(repo) == [str(repo)]
    assert list((home / "worktrees").iterdir()) == []
    assert git(repo, "branch", "--list", "task/*").strip() == ""
    merges = git(repo, "rev-list", "--merges", f"{name}-start..{name}").split()
    assert len(merges) == len(PATHS)  # each package merged exactly once


@pytest.mark.slow
async def test_worker_killed_mid_run_then_resume_completes(
    client: Client,
    address: str,
    task_queue: str,
    tmp_path: Path,
    pkgbuilder_home: Path,
    fake_anthropic: FakeAnthropic,
) -> None:
    repo = copy_workspace(FIXTURE, tmp_path / "repo")
    name = lifecycle.start(
        repo, pkgbuilder_home, regenerate=[("@gen/alpha", PATHS["@gen/alpha"])]
    ).name
    fake_anthropic.default = responder
    env = cli_env(address, task_queue, fake_anthropic)
    kill_mid_task(repo, pkgbuilder_home, name, env, tmp_path / "run.log")
    handle = client.get_workflow_handle(f"generation-run-{name}")
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    proc = resume(repo, name, env)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(json.loads(proc.stdout)["done"]) == sorted(PATHS)
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert_finished_cleanly(repo, pkgbuilder_home, name)


@pytest.mark.slow
async def test_run_lost_then_resume_resets_stuck_tasks_and_completes(
    client: Client,
    address: str,
    task_queue: str,
    tmp_path: Path,
    pkgbuilder_home: Path,
    fake_anthropic: FakeAnthropic,
) -> None:
    repo = copy_workspace(FIXTURE, tmp_path / "repo")
    name = lifecycle.start(
        repo, pkgbuilder_home, regenerate=[("@gen/alpha", PATHS["@gen/alpha"])]
    ).name
    fake_anthropic.default = responder
    env = cli_env(address, task_queue, fake_anthropic)
    kill_mid_task(repo, pkgbuilder_home, name, env, tmp_path / "run.log")
    # The run itself is gone too (e.g. terminated by an operator): its tasks are stuck.
    await client.get_workflow_handle(f"generation-run-{name}").terminate("test")
    git(repo, "switch", "-q", "main")  # resume may be called from any branch
    record = store.load(pkgbuilder_home, name)
    assert record is not None
    stuck = sorted(p for p, t in record.tasks.items() if t.status == TaskStatus.IN_PROGRESS)
    assert stuck

    proc = resume(repo, name, env)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"reset {len(stuck)} stuck task(s)" in proc.stderr
    assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == name
    assert_finished_cleanly(repo, pkgbuilder_home, name)
    final = store.load(pkgbuilder_home, name)
    assert final is not None
    assert all(final.tasks[p].attempts >= 2 for p in stuck)


@pytest.mark.slow
async def test_tasks_out_of_attempts_fail_with_reason_block_dependents_and_retry(
    client: Client,
    task_queue: str,
    tmp_path: Path,
    pkgbuilder_home: Path,
    fake_anthropic: FakeAnthropic,
) -> None:
    repo = copy_workspace(FIXTURE, tmp_path / "repo")
    name = lifecycle.start(
        repo, pkgbuilder_home, regenerate=[("@gen/alpha", PATHS["@gen/alpha"])]
    ).name

    def model(body: dict) -> Reply:
        package = package_of_request(body)
        if package == "beta":  # never answers within the task's time limit
            return Reply.hang(120)
        files = generated_files(package)
        for f in files:  # alpha's tests fail: the gate must catch it
            if f["path"] == "test/index.test.js":
                f["content"] = f["content"].replace("increment(1), 2", "increment(1), 3")
        return Reply.contract(files)

    fake_anthropic.default = model
    settings = load_settings(
        repo,
        env={},
        overrides={
            "temporal": {"taskQueue": task_queue, "llmTaskQueue": f"{task_queue}-llm"},
        },
    )

    async def run(n: int, **options: object) -> GenerationRunResult:
        result: GenerationRunResult = await client.execute_workflow(
            GenerationRunWorkflow.run,
            GenerationRunInput.model_validate(
                {
                    "repo": str(repo),
                    "home": str(pkgbuilder_home),
                    "generation": name,
                    "parallel": 2,
                    "maxTaskAttempts": 2,
                    "config": settings,
                    **options,
                }
            ),
            id=f"generation-run-{name}-{task_queue}-{n}",
            task_queue=task_queue,
        )
        return result

    async with running_workers(client, settings):
        result = await run(1, taskTimeoutSeconds=6)
        failed_branches = sorted(
            git(repo, "branch", "--list", "--format=%(refname:short)", "task/*").split()
        )
        # A later run leaves failed tasks alone (and their dependents blocked)...
        fake_anthropic.default = responder
        calls = len(fake_anthropic.requests)
        again = await run(2)
        assert again.failed.keys() == {"@gen/alpha", "@gen/beta"}
        assert again.blocked == {"@gen/gamma": "dependency @gen/alpha failed"}
        assert len(fake_anthropic.requests) == calls
        # ...unless told to retry them: then everything is generated.
        retried = await run(3, retryFailed=True)
        assert sorted(retried.done) == sorted(PATHS) and not retried.failed

    assert result.done == []
    assert result.failed["@gen/alpha"].startswith("gate: test of @gen/alpha failed")
    assert result.failed["@gen/beta"] == "the task's time limit was exceeded"
    assert result.blocked == {"@gen/gamma": "dependency @gen/alpha failed"}
    record = store.load(pkgbuilder_home, name)
    assert record is not None
    tasks = record.tasks
    assert [tasks[p].status for p in PATHS] == [TaskStatus.DONE] * 3
    assert tasks["@gen/alpha"].attempts == 3 and tasks["@gen/beta"].attempts == 3
    assert tasks["@gen/gamma"].attempts == 1  # blocked until alpha succeeded
    assert worktree_paths(repo) == [str(repo)]
    assert failed_branches == sorted(
        [f"task/{name}-{name_slug('@gen/alpha')}", f"task/{name}-{name_slug('@gen/beta')}"]
    )
    assert git(repo, "branch", "--list", "task/*").strip() == ""  # merged ones are removed
