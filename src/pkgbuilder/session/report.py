"""Per-step tokens/cost and the session result, derived from a GenerationContext (pure).

Used by the workflow for its result and by the CLI when a session failed (the result is
then rebuilt from the state the workflow left behind).
"""

from __future__ import annotations

from collections.abc import Collection

from pkgbuilder.models.session import GenerationResult, StepReport
from pkgbuilder.session.phases.definitions import GenerationPhase
from pkgbuilder.session.state import GenerationContext


def step_reports(
    ctx: GenerationContext, skipped: Collection[GenerationPhase] = ()
) -> list[StepReport]:
    """One line per scheduled step: completed (or ``skipped``: done by an earlier run),
    failed, or not run."""
    reports: list[StepReport] = []
    failed = ctx.failure_recovery
    for step in ctx.phases:
        done = ctx.step_of(step.phase)
        if done is not None:
            reports.append(
                StepReport(
                    phase=step.phase,
                    step_number=step.step_number,
                    status="skipped" if step.phase in skipped else "completed",
                    commit=done.commit,
                    files=len(done.files),
                    usage=done.usage,
                    cost_usd=done.cost_usd,
                    model_calls=done.model_calls,
                )
            )
        else:
            status = "failed" if failed and failed.failed_step == step.step_number else "not-run"
            reports.append(
                StepReport(phase=step.phase, step_number=step.step_number, status=status)
            )
    return reports


def result_from_context(
    ctx: GenerationContext,
    state_path: str,
    skipped: Collection[GenerationPhase] = (),
    error: str | None = None,
) -> GenerationResult:
    """The session's result (what ``pkgbuilder start --json`` prints)."""
    return GenerationResult(
        session_id=ctx.session_id,
        workflow_id=ctx.workflow_id,
        package_name=ctx.package_name,
        package_path=ctx.package_path,
        status=ctx.status,
        branch=ctx.branch,
        base_branch=ctx.base_branch,
        merged=ctx.merge_commit is not None,
        merge_commit=ctx.merge_commit,
        merge_instructions=ctx.merge_instructions,
        validation=ctx.validation,
        steps=step_reports(ctx, skipped),
        total_usage=ctx.total_usage,
        total_cost_usd=ctx.total_cost_usd,
        state_path=state_path,
        error=error or (ctx.failure_recovery.error if ctx.failure_recovery else None),
        failure_recovery=ctx.failure_recovery,
    )
