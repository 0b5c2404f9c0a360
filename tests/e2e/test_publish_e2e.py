"""Publishing end to end: SuiteBuildWorkflow on the real dev server, real npm builds of the
demo monorepo, a real Verdaccio; a worker killed during ``npm publish`` and restarted."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from pkgbuilder.config import BuildSettings, load_settings
from pkgbuilder.models.build import BuildReport, PackageStatus, PublishOutcome, SuiteBuildInput
from pkgbuilder.runtime.worker import running_workers
from pkgbuilder.workflows.suite import SuiteBuildWorkflow
from tests.support.registry import build_demo, make_demo, npm_view, running_registry

pytestmark = pytest.mark.slow
SENTINEL = "npm_SENTINEL_" + "7" * 24


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    with running_registry(tmp_path_factory.mktemp("e2e-registry")) as rt:
        yield rt


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo(tmp_path_factory.mktemp("e2e-template") / "demo")


def suite_settings(ws: Path, url: str, task_queue: str, scope: str) -> BuildSettings:
    return load_settings(
        ws,
        env={},
        overrides={
            "registry": url,
            "suitePackage": f"{scope}suite",
            "publishing": {"enabled": True},
            "timeouts": {"heartbeatSeconds": 5},
            "temporal": {"taskQueue": task_queue, "llmTaskQueue": f"{task_queue}-llm"},
        },
    )


def scope_of(ws: Path) -> str:
    name = json.loads((ws / "packages/validator/string-rules/package.json").read_text())["name"]
    return name.split("/")[0] + "/"


async def run_suite(
    client: Client, settings: BuildSettings, ws: Path, build_id: str
) -> BuildReport:
    async with running_workers(client, settings):
        report: BuildReport = await client.execute_workflow(
            SuiteBuildWorkflow.run,
            SuiteBuildInput(build_id=build_id, workspace_root=str(ws), config=settings),
            id=f"suite-{build_id}",
            task_queue=settings.temporal.task_queue,
        )
    return report


async def histories_json(client: Client, report: BuildReport) -> str:
    """Every event of the suite and of the children it ran, as JSON text."""
    ids = [f"suite-{report.build_id}"] + [
        r.workflow_id
        for r in report.package_reports
        if r.workflow_id and r.status not in (PackageStatus.SKIPPED, PackageStatus.BLOCKED)
    ]
    texts: list[str] = []
    for wid in ids:
        raw = (await client.get_workflow_handle(wid).fetch_history()).to_json()
        texts.append(raw)
        _decode_payloads(json.loads(raw), texts)  # payload data is base64 in the JSON
    return "\n".join(texts)


def _decode_payloads(node: object, out: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "data" and isinstance(value, str):
                with contextlib.suppress(ValueError):
                    out.append(base64.b64decode(value).decode("utf-8", errors="replace"))
            else:
                _decode_payloads(value, out)
    elif isinstance(node, list):
        for item in node:
            _decode_payloads(item, out)


def files_text(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


async def test_suite_publishes_all_then_skips_all_and_never_records_the_token(
    client: Client,
    registry: tuple[str, str],
    demo_template: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, token = registry
    ws, _ = make_demo(demo_template, tmp_path / "ws")
    scope = scope_of(ws)
    monkeypatch.setenv("NPM_TOKEN", token)
    settings = suite_settings(ws, url, f"tq-{uuid.uuid4()}", scope)

    first_id = f"p{uuid.uuid4().hex[:8]}"
    first = await run_suite(client, settings, ws, first_id)
    outcomes = {r.package_name: r.publish for r in first.package_reports}
    assert first.successful == 7, [
        (r.package_name, r.status.value, r.error, r.failures)
        for r in first.package_reports
        if r.status is not PackageStatus.SUCCESS
    ]
    assert set(outcomes.values()) == {PublishOutcome.PUBLISHED}
    assert first.suite_package_published is PublishOutcome.PUBLISHED
    for name in outcomes:
        assert npm_view(url, token, f"{name}@1.0.0", "version", tmp_path) == '"1.0.0"'

    second_id = f"p{uuid.uuid4().hex[:8]}"
    second = await run_suite(client, settings, ws, second_id)
    assert (second.skipped, second.successful, second.failed) == (7, 0, 0)
    assert {r.publish for r in second.package_reports} == {PublishOutcome.SKIPPED}
    assert second.suite_package_published is PublishOutcome.SKIPPED

    for report in (first, second):
        assert token not in await histories_json(client, report)
    assert token not in files_text(ws / "production")


async def test_sentinel_token_is_nowhere_and_changed_package_needs_a_bump(
    client: Client,
    registry: tuple[str, str],
    demo_template: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, token = registry
    ws, _ = make_demo(demo_template, tmp_path / "ws")
    scope = scope_of(ws)
    tq = f"tq-{uuid.uuid4()}"
    settings = suite_settings(ws, url, tq, scope)
    # A token the registry rejects: every publish fails with one sentence, and the sentinel
    # must not appear in histories, reports or logs.
    monkeypatch.setenv("NPM_TOKEN", SENTINEL)
    sentinel_id = f"s{uuid.uuid4().hex[:8]}"
    report = await run_suite(client, settings, ws, sentinel_id)
    failed = [r for r in report.package_reports if r.status is PackageStatus.FAILED]
    assert failed and all("rejected NPM_TOKEN" in (r.error or "") for r in failed)
    assert report.suite_package_published is PublishOutcome.NOT_ATTEMPTED
    history = await histories_json(client, report)
    assert "rejected NPM_TOKEN" in history  # the histories were read, and hold the failure
    assert SENTINEL not in history
    assert SENTINEL not in files_text(ws / "production")
    assert SENTINEL not in json.dumps(report.to_json_dict())

    # With the right token everything goes out; then a changed package with the same version
    # fails with the bump message.
    monkeypatch.setenv("NPM_TOKEN", token)
    ok = await run_suite(client, settings, ws, f"s{uuid.uuid4().hex[:8]}")
    assert ok.failed == 0 and ok.suite_package_published is PublishOutcome.PUBLISHED
    src = ws / "packages/core/schema/src/index.js"
    src.write_text(src.read_text() + "\n// a change without a version bump\n")
    bumped = await run_suite(client, settings, ws, f"s{uuid.uuid4().hex[:8]}")
    by_name = {r.package_name: r for r in bumped.package_reports}
    schema = by_name[f"{scope}schema"]
    assert schema.status is PackageStatus.FAILED and schema.publish is PublishOutcome.FAILED
    assert (
        f"{scope}schema@1.0.0 is already published with different content; bump the "
        "version." in (schema.error or "")
    )
    # Its dependents were published identically before: they stay skipped (already out).
    assert by_name[f"{scope}user-service"].status is PackageStatus.SKIPPED
    assert by_name[f"{scope}string-rules"].status is PackageStatus.SKIPPED
    # The suite package itself is unchanged and already out: skipped, not published again.
    assert bumped.suite_package_published is PublishOutcome.SKIPPED


def _publish_process(url: str) -> int | None:
    """pid of a running ``npm publish`` against ``url`` (its cmdline names the registry)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"publish" in argv and url.encode() in argv:
            return int(proc.name)
    return None


def _start_worker(address: str, tq: str, ws: Path, token: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "NPM_TOKEN": token, "PKGBUILDER_HOME": str(ws.parent / "home")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pkgbuilder.cli.app",
                "worker",
                "--address",
                address,
                "--task-queue",
                tq,
                "--workspace",
                str(ws),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


async def test_worker_killed_during_publish_ends_with_each_version_published_once(
    client: Client,
    registry: tuple[str, str],
    demo_template: Path,
    tmp_path: Path,
) -> None:
    url, token = registry
    ws, graph = make_demo(demo_template, tmp_path / "ws")
    scope = scope_of(ws)
    tq = f"tq-{uuid.uuid4()}"
    settings = suite_settings(ws, url, tq, scope)
    address = client.service_client.config.target_host
    log = tmp_path / "worker.log"
    build_id = f"k{uuid.uuid4().hex[:8]}"
    first = _start_worker(address, tq, ws, token, log)
    second: subprocess.Popen | None = None
    try:
        handle = await client.start_workflow(
            SuiteBuildWorkflow.run,
            SuiteBuildInput(build_id=build_id, workspace_root=str(ws), config=settings),
            id=f"suite-{build_id}",
            task_queue=tq,
        )
        seen: int | None = None
        for _ in range(1200):  # bounded: at most ~120 s
            seen = _publish_process(url)
            if seen is not None or first.poll() is not None:
                break
            await asyncio.sleep(0.1)
        assert first.poll() is None, log.read_text()[-2000:]
        # The pid found above (a second scan could miss an npm publish that just finished).
        assert seen is not None, "no npm publish was seen"
        first.send_signal(signal.SIGKILL)  # the worker dies; its npm child finishes alone
        first.wait(timeout=30)
        second = _start_worker(address, tq, ws, token, log)
        report: BuildReport = await asyncio.wait_for(handle.result(), timeout=600)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
    assert report.failed == 0, [(r.package_name, r.error) for r in report.package_reports]
    assert {r.publish for r in report.package_reports} == {PublishOutcome.PUBLISHED}
    for node in graph.packages:
        versions = json.loads(npm_view(url, token, node.name, "versions", tmp_path))
        assert versions in (["1.0.0"], "1.0.0"), (node.name, versions)
    # The publish that was running when the worker died was retried by Temporal.
    retried = False
    for r in report.package_reports:
        history = await client.get_workflow_handle(r.workflow_id).fetch_history()
        scheduled: dict[int, str] = {}
        for ev in history.events:
            if ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled[ev.event_id] = (
                    ev.activity_task_scheduled_event_attributes.activity_type.name
                )
            if ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                attrs = ev.activity_task_started_event_attributes
                if (
                    scheduled.get(attrs.scheduled_event_id) == "publish_package"
                    and attrs.attempt > 1
                ):
                    retried = True
    assert retried, "no publish_package attempt was retried"
    assert token not in log.read_text()
