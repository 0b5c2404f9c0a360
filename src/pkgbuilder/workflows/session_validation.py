"""BUILD_VALIDATION's checks, run from TurnBasedGenerationWorkflow: the workspace install,
then the one check pipeline the package build uses (``check_package``, steps/pipeline.py)
for a model-written package (the original's BUILD_VALIDATION ran nothing). Workflow code:
deterministic, activities only."""

from __future__ import annotations

from temporalio import workflow

from pkgbuilder.workflows.policies import FILE_RETRY, FILE_TIMEOUT

with workflow.unsafe.imports_passed_through():
    from pkgbuilder.activities import build as build_acts
    from pkgbuilder.activities import session as gen_acts
    from pkgbuilder.models.build import Failure
    from pkgbuilder.models.checks import CheckInput
    from pkgbuilder.models.session import (
        GenerationContext,
        TurnBasedGenerationInput,
        ValidationTargetInput,
        ValidationTargetResult,
    )
    from pkgbuilder.models.steps import InstallInput
    from pkgbuilder.workflows.common import run_check, run_shell_step


async def run_checks(
    inp: TurnBasedGenerationInput, ctx: GenerationContext, log_dir: str
) -> tuple[list[Failure], float | None]:
    """install → build → test (+coverage) → quality; returns (failures, coverage percent)."""
    target: ValidationTargetResult = await workflow.execute_activity(
        gen_acts.describe_generated_package,
        ValidationTargetInput(
            workspace_root=ctx.workspace_root,
            package_path=ctx.package_path,
            package_name=ctx.package_name,
            category=ctx.category,
            dependencies=inp.dependencies,
        ),
        start_to_close_timeout=FILE_TIMEOUT,
        retry_policy=FILE_RETRY,
    )
    if target.node is None or target.install_root is None:
        return target.failures, None
    t = inp.config.timeouts
    hb = t.heartbeat_seconds
    install = await run_shell_step(
        build_acts.install_workspace,
        InstallInput(
            workspace_root=target.install_root,
            package_manager=inp.package_manager,
            timeout_seconds=t.install_seconds,
            log_dir=log_dir,
            update_lockfile=True,
        ),
        t.install_seconds,
        hb,
    )
    if not install.ok:
        return install.failures, None
    # The whole package is model-written: its tests are required and its scripts run
    # confined (see steps/pipeline.py and sandbox.py).
    result = await run_check(
        CheckInput(
            workspace_root=ctx.workspace_root,
            package=target.node,
            package_manager=inp.package_manager,
            settings=inp.config,
            log_dir=log_dir,
            model_written=True,
        )
    )
    return result.failures, result.coverage_percent
