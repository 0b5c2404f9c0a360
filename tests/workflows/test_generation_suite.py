"""Suite integration: with turnBasedGeneration enabled, a master-plan package that has a plan
but no directory is generated (child TurnBasedGenerationWorkflow, in place) and then built."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client

from pkgbuilder.models.build import BuildReport, PackageStatus, SuiteBuildInput
from pkgbuilder.runtime.worker import running_workers
from pkgbuilder.session.state import SessionStatus, list_states
from pkgbuilder.workflows.suite import SuiteBuildWorkflow
from tests.support.generation_env import gen_settings, git, make_workspace, scripted_server
from tests.support.generation_script import PACKAGE_NAME, PACKAGE_PATH

pytestmark = pytest.mark.slow

# Enough phases for a package that builds and passes its tests with 90% coverage.
PHASES = [
    "FOUNDATION",
    "TYPES",
    "CORE_IMPLEMENTATION",
    "ENTRY_POINT",
    "UTILITIES",
    "ERROR_HANDLING",
    "TESTING",
    "CRITICAL_FIXES",
    "BUILD_VALIDATION",
    "MERGE",
]


async def test_suite_generates_a_planned_package_then_builds_it(
    client: Client, tmp_path: Path, task_queue: str
) -> None:
    repo = make_workspace(tmp_path / "repo")
    (repo / "plans" / "master-plan.md").write_text(f"## Packages\n\n- {PACKAGE_NAME} (core)\n")
    git(repo, "add", "--", "plans/master-plan.md")
    git(repo, "commit", "-q", "-m", "master plan")
    start = git(repo, "rev-parse", "HEAD").strip()
    settings = gen_settings(task_queue, {"enabled": True, "phasesToExecute": PHASES})
    with scripted_server({"PKGBUILDER_HOME": str(tmp_path / "home")}) as server:
        async with running_workers(client, settings):
            report: BuildReport = await client.execute_workflow(
                SuiteBuildWorkflow.run,
                SuiteBuildInput(
                    build_id="gen-suite",
                    workspace_root=str(repo),
                    plan_path=str(repo / "plans" / "master-plan.md"),
                    config=settings,
                ),
                id=f"suite-gen-{task_queue}",
                task_queue=task_queue,
            )
        asked = len(server.requests)
    [pkg] = report.package_reports
    assert pkg.status is PackageStatus.SUCCESS, pkg.error
    assert pkg.quality.test_coverage is not None and pkg.quality.test_coverage >= 90
    assert asked == len(PHASES) - 1  # one call per model phase; the fix attempt is the last
    [ctx], _ = list_states(repo / ".generation-state")
    assert ctx.status is SessionStatus.COMPLETED and ctx.branch == ctx.base_branch == "main"
    assert ctx.merge_instructions == "Generated in place on main; nothing to merge."
    # In place: every phase commit is on main and touches only the package.
    subjects = git(repo, "log", "--format=%s", f"{start}..main").splitlines()
    assert len([s for s in subjects if s.startswith("feat(")]) == len(PHASES) - 1
    changed = git(repo, "diff", "--name-only", f"{start}..main").split()
    assert changed and all(p.startswith(PACKAGE_PATH + "/") for p in changed)
    assert git(repo, "branch", "--list", "feat/*").strip() == ""
