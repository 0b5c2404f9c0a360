"""Hardening: the worker console prints expected failures in one line, tracebacks only for
the unexpected (issue 15 item 19): a real `pkgbuilder worker`, a real suite and the scripted
Messages API answering with a hostile file operation; MissingApiKey through the real LLM
worker assembly."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from pkgbuilder.config import load_settings
from pkgbuilder.models.build import BuildReport, PackageStatus, SuiteBuildInput
from pkgbuilder.runtime.logs import OneLineApplicationErrors
from pkgbuilder.runtime.worker import make_llm_worker
from pkgbuilder.workflows.suite import SuiteBuildWorkflow
from tests.conftest import pkgbuilder_cli
from tests.support.fake_anthropic import FakeAnthropic, Reply
from tests.support.hardening import make_workspace
from tests.support.llm_workflows import CallLLMProbeInput, CallLLMProbeWorkflow


@pytest.fixture
def address(temporal_env: WorkflowEnvironment) -> str:
    return temporal_env.client.service_client.config.target_host


async def test_worker_console_shows_unsafe_file_operation_in_one_line(
    client: Client, address: str, tmp_path: Path
) -> None:
    ws = make_workspace(
        tmp_path / "ws",
        {"packages/a": {"name": "@c/a", "scripts": {"build": "mkdir -p dist", "test": "exit 1"}}},
        config="[llm]\ntokensPerMinute = 1000000\n[fix]\nmaxAttempts = 1\n",
    )
    tq = f"tq-{uuid.uuid4()}"
    hostile = Reply.contract(
        [{"path": "../../../outside.txt", "operation": "create", "content": "pwned"}]
    )
    with FakeAnthropic() as fake:
        fake.default = hostile
        env = {k: v for k, v in os.environ.items() if not k.startswith("PKGBUILDER_")}
        env.update(
            TEMPORAL_ADDRESS=address,
            TEMPORAL_TASK_QUEUE=tq,
            PKGBUILDER_LLM_TASK_QUEUE=f"{tq}-llm",
            ANTHROPIC_API_KEY=fake.api_key,
            ANTHROPIC_BASE_URL=fake.url,
            PKGBUILDER_HOME=str(tmp_path / "home"),
        )
        worker = subprocess.Popen(
            [pkgbuilder_cli(), "worker", "--workspace", str(ws)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            settings = load_settings(
                ws, env={"TEMPORAL_TASK_QUEUE": tq, "PKGBUILDER_LLM_TASK_QUEUE": f"{tq}-llm"}
            )
            report: BuildReport = await client.execute_workflow(
                SuiteBuildWorkflow.run,
                SuiteBuildInput(
                    build_id=f"c{uuid.uuid4().hex[:8]}", workspace_root=str(ws), config=settings
                ),
                id=f"suite-c-{uuid.uuid4().hex[:8]}",
                task_queue=tq,
            )
        finally:
            worker.send_signal(signal.SIGINT)
            out, err = worker.communicate(timeout=60)
    assert report.package_reports[0].status is PackageStatus.FAILED
    assert len(fake.requests) >= 1
    console = out + err
    lines = [ln for ln in console.splitlines() if "UnsafeFileOperation" in ln]
    assert lines, console[-3000:]
    assert "Traceback" not in console, console[-3000:]
    assert not (tmp_path / "outside.txt").exists()


async def test_missing_api_key_is_one_line(
    client: Client,
    task_queue: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from pkgbuilder.llm.store import write_request
    from pkgbuilder.models.llm import LLMCallInput, LLMRequest

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("CLAUDE_API_KEY", raising=False)
    settings = load_settings(
        None,
        env={},
        overrides={"temporal": {"taskQueue": task_queue, "llmTaskQueue": f"{task_queue}-llm"}},
    )
    path, sha = write_request(
        tmp_path, LLMRequest(purpose="fix", system=[], messages=[], max_tokens=10, request_key="k")
    )
    llm_worker = make_llm_worker(client, settings)
    assert llm_worker is not None
    caplog.set_level(logging.WARNING, logger="temporalio.activity")
    async with llm_worker, Worker(client, task_queue=task_queue, workflows=[CallLLMProbeWorkflow]):
        with pytest.raises(WorkflowFailureError):
            await client.execute_workflow(
                CallLLMProbeWorkflow.run,
                CallLLMProbeInput(
                    call=LLMCallInput(request_path=str(path), request_sha256=sha, llm=settings.llm),
                    config=settings,
                ),
                id=f"k-{uuid.uuid4()}",
                task_queue=task_queue,
            )
    failed = [r for r in caplog.records if "Completing activity as failed" in r.getMessage()]
    assert failed and all(r.exc_info is None for r in failed)
    assert "MissingApiKey: no API key" in failed[0].getMessage()


def test_unexpected_errors_keep_their_traceback() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "temporalio.activity",
            logging.WARNING,
            __file__,
            1,
            "Completing activity as failed",
            None,
            sys.exc_info(),
        )
    assert OneLineApplicationErrors().filter(record) and record.exc_info is not None
