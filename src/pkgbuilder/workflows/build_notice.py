"""How a PackageBuildWorkflow child reports back to the continuous orchestrator.

The orchestrator starts its children with ParentClosePolicy.ABANDON and may continue-as-new
while they run, so it cannot rely on awaiting their results: each child signals
``build_finished`` to the orchestrator's workflow id (no run id, so the current run gets it).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pkgbuilder.models.build import PackageBuildResult
    from pkgbuilder.models.orchestrator import BuildFinished


async def notify_orchestrator(workflow_id: str, result: PackageBuildResult) -> None:
    """Signal the outcome to ``workflow_id``; never fails the build (the orchestrator may
    have completed meanwhile, e.g. after a drain)."""
    notice = BuildFinished(
        child_workflow_id=workflow.info().workflow_id,
        package_name=result.package_name,
        success=result.success,
        error=result.error,
    )
    try:
        await workflow.get_external_workflow_handle(workflow_id).signal("build_finished", notice)
    except Exception as e:  # the target is gone: nobody is waiting for this build
        workflow.logger.warning(
            "could not report %s to %s: %s", result.package_name, workflow_id, e
        )
