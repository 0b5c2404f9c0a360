"""Build helpers of the cache tests: a passing copy of the failing fixture, a suite run with
its own cache directory, and the executions the fixture's scripts recorded (a side-effect
file outside the repository)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from temporalio.client import Client

from pkgbuilder.config import load_settings
from pkgbuilder.models.build import BuildReport, PackageStatus, SuiteBuildInput
from pkgbuilder.runtime.worker import running_workers
from pkgbuilder.workflows.suite import SuiteBuildWorkflow
from tests.conftest import REPO_ROOT, copy_workspace, git

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "failing-monorepo"
NAMES = {"@fx/base", "@fx/other", "@fx/solo", "@fx/broken", "@fx/mid", "@fx/top"}


def passing_workspace(dest: Path) -> Path:
    """The failing fixture with its broken package fixed, committed."""
    ws = copy_workspace(FIXTURE, dest)
    src = ws / "packages/core/broken/src/index.js"
    src.write_text(src.read_text().replace("double(20) + 1", "double(21)"))
    git(ws, "commit", "-qam", "fix broken")
    return ws


def executed(log: Path) -> list[tuple[str, str]]:
    if not log.exists():
        return []
    return [tuple(line.split()[:2]) for line in log.read_text().splitlines()]  # type: ignore[misc]


async def build(
    client: Client,
    ws: Path,
    cache_dir: Path,
    log: Path,
    extra: dict | None = None,
    env: dict[str, str] | None = None,
) -> BuildReport:
    tq = f"tq-{uuid.uuid4()}"
    settings = load_settings(
        ws,
        env={},
        overrides={
            "temporal": {"taskQueue": tq, "llmTaskQueue": f"{tq}-llm"},
            "cache": {"dir": str(cache_dir), **(extra or {})},
            "fix": {"enabled": False},
        },
    )
    bid = f"c{uuid.uuid4().hex[:8]}"
    saved = dict(os.environ)
    os.environ["PKGBUILDER_TEST_LOG"] = str(log)
    os.environ.update(env or {})
    try:
        async with running_workers(client, settings):
            report: BuildReport = await client.execute_workflow(
                SuiteBuildWorkflow.run,
                SuiteBuildInput(build_id=bid, workspace_root=str(ws), config=settings),
                id=f"suite-{bid}",
                task_queue=tq,
            )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return report


def statuses(report: BuildReport) -> dict[str, PackageStatus]:
    return {r.package_name: r.status for r in report.package_reports}
