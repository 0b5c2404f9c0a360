"""The build cache end to end: real Temporal, real npm scripts, real git. Executions are
counted through the side-effect file the fixture's scripts append to (outside the repo)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from pkgbuilder.config import load_settings
from pkgbuilder.models.build import PackageStatus
from pkgbuilder.runtime.worker import running_workers
from tests.support.cache_builds import NAMES, build, executed, passing_workspace, statuses


@pytest.mark.slow
async def test_second_run_is_cached_and_changes_rebuild_exactly_their_dependents(
    client: Client, tmp_path: Path
) -> None:
    ws = passing_workspace(tmp_path / "ws")
    cache_dir, log = tmp_path / "cache", tmp_path / "executions.log"

    first = await build(client, ws, cache_dir, log)
    assert set(statuses(first).values()) == {PackageStatus.SUCCESS}, first.package_reports
    assert len(executed(log)) == 12
    assert all(r.cache and r.cache.stored for r in first.package_reports)
    builders = {r.package_name: r.built_by for r in first.package_reports}
    assert all(b and "@" in b for b in builders.values())  # pid@host of the worker

    # outputs gone: a hit must restore them (and run nothing)
    for dist in ws.glob("packages/*/*/dist"):
        shutil.rmtree(dist)
    log.unlink()
    second = await build(client, ws, cache_dir, log)
    assert statuses(second) == dict.fromkeys(NAMES, PackageStatus.CACHED)
    assert (second.cached, second.successful, second.failed) == (6, 0, 0)
    assert executed(log) == []
    assert (ws / "packages/utility/mid/dist/index.js").is_file()
    mid = next(r for r in second.package_reports if r.package_name == "@fx/mid")
    assert mid.quality.test_coverage is not None and mid.cache and mid.cache.saved_ms > 0
    # a restored package names the worker that built what was restored
    assert {r.package_name: r.built_by for r in second.package_reports} == builders
    assert second.summary_path and Path(second.summary_path).is_file()

    # a changed source file rebuilds exactly that package and its dependents
    src = ws / "packages/utility/mid/src/index.js"
    src.write_text(src.read_text() + "\n// changed\n")
    third = await build(client, ws, cache_dir, log)
    rebuilt = {n for n, s in statuses(third).items() if s is PackageStatus.SUCCESS}
    assert rebuilt == {"@fx/mid", "@fx/top"}
    assert sorted(executed(log)) == sorted(
        [("@fx/mid", "build"), ("@fx/mid", "test"), ("@fx/top", "build"), ("@fx/top", "test")]
    )
    mid = next(r for r in third.package_reports if r.package_name == "@fx/mid")
    assert mid.cache and "no cache entry" in (mid.cache.reason or "")

    # an env-allowlist value and the command text are inputs; --force ignores the cache
    log.unlink()
    fourth = await build(client, ws, cache_dir, log, {"env": ["FX_FLAG"]}, {"FX_FLAG": "1"})
    assert set(statuses(fourth).values()) == {PackageStatus.SUCCESS}
    again = await build(client, ws, cache_dir, log, {"env": ["FX_FLAG"]}, {"FX_FLAG": "1"})
    assert set(statuses(again).values()) == {PackageStatus.CACHED}
    pj = ws / "packages/utility/solo/package.json"
    pj.write_text(pj.read_text().replace("run.js build", "run.js  build"))
    log.unlink()
    fifth = await build(client, ws, cache_dir, log, {"env": ["FX_FLAG"]}, {"FX_FLAG": "1"})
    assert {n for n, s in statuses(fifth).items() if s is PackageStatus.SUCCESS} == {"@fx/solo"}
    forced = await build(
        client, ws, cache_dir, log, {"env": ["FX_FLAG"], "force": True}, {"FX_FLAG": "1"}
    )
    assert set(statuses(forced).values()) == {PackageStatus.SUCCESS}


@pytest.mark.slow
async def test_a_standalone_package_build_uses_the_same_cache(
    client: Client, tmp_path: Path
) -> None:
    """What the continuous orchestrator starts: a PackageBuildWorkflow on its own, which
    looks its package up itself (the suite's hits then serve it too)."""
    from pkgbuilder.models.build import PackageBuildInput, PackageBuildResult
    from pkgbuilder.workflows.package_build import PackageBuildWorkflow
    from pkgbuilder.workspace.discovery import discover_workspace

    ws = passing_workspace(tmp_path / "ws")
    cache_dir, log = tmp_path / "cache", tmp_path / "executions.log"
    await build(client, ws, cache_dir, log)  # the suite fills the cache
    log.unlink()
    tq = f"tq-{uuid.uuid4()}"
    settings = load_settings(
        ws,
        env={},
        overrides={
            "temporal": {"taskQueue": tq, "llmTaskQueue": f"{tq}-llm"},
            "cache": {"dir": str(cache_dir)},
            "fix": {"enabled": False},
        },
    )
    graph = discover_workspace(ws)
    node = graph.by_name()["@fx/mid"]
    os.environ["PKGBUILDER_TEST_LOG"] = str(log)
    try:
        async with running_workers(client, settings):
            result: PackageBuildResult = await client.execute_workflow(
                PackageBuildWorkflow.run,
                PackageBuildInput(
                    build_id=f"o{uuid.uuid4().hex[:6]}",
                    package=node,
                    dependency_nodes=[graph.by_name()["@fx/broken"]],
                    workspace_root=str(ws),
                    config=settings,
                ),
                id=f"standalone-{uuid.uuid4().hex[:6]}",
                task_queue=tq,
            )
    finally:
        os.environ.pop("PKGBUILDER_TEST_LOG", None)
    assert result.success and result.status is PackageStatus.CACHED
    assert result.report.cache and result.report.cache.hit
    assert executed(log) == []
