"""One fix attempt as workflow code: prepare the request, ask the model, apply and commit.

Called from a workflow (PackageBuildWorkflow's fix loop); deterministic: it only schedules
activities and reads ``workflow.now()``. Failures of the attempt are returned in the
``FixAttempt`` record, never raised, so the caller decides whether to try again.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from pkgbuilder.errors import ErrorType
from pkgbuilder.workflows.policies import fix_activity_options, llm_activity_options

with workflow.unsafe.imports_passed_through():
    from pkgbuilder.models.build import FixAttempt
    from pkgbuilder.models.llm import (
        APPLY_FIX_RESPONSE_ACTIVITY,
        CALL_LLM_ACTIVITY,
        PREPARE_FIX_REQUEST_ACTIVITY,
        ApplyFixInput,
        ApplyFixResult,
        FixAttemptInput,
        FixAttemptOutcome,
        LLMCallInput,
        LLMCallResult,
        PrepareFixInput,
        PrepareFixResult,
    )
    from pkgbuilder.workflows.common import paid_usage

# Another attempt cannot succeed after these: the package fails with the reason. A bad
# response reaches the workflow only after its own capped retries (a proxy in the way).
STOP_LOOP_ERROR_TYPES = frozenset(
    {
        ErrorType.MissingApiKey,
        ErrorType.ModelRequestRejected,
        ErrorType.SpendLimitReached,
        ErrorType.BadApiResponse,
    }
)


async def run_fix_attempt(inp: FixAttemptInput) -> FixAttemptOutcome:
    """Run fix attempt ``inp.attempt``; ``succeeded`` means the answer was applied.

    The caller re-runs the checks afterwards and records whether they passed.
    """
    start = workflow.now()
    types = sorted({str(f.type) for f in inp.failures})
    record = FixAttempt(count=inp.attempt, types=types, agent_prompt_used="", fix_duration=0)
    stop = False
    try:
        prepared: PrepareFixResult = await workflow.execute_activity(
            PREPARE_FIX_REQUEST_ACTIVITY,
            PrepareFixInput(
                workspace_root=inp.workspace_root,
                package_name=inp.package_name,
                package_path=inp.package_path,
                plan_path=inp.plan_path,
                failures=inp.failures,
                attempt=inp.attempt,
                build_id=inp.build_id,
                config=inp.config,
            ),
            result_type=PrepareFixResult,
            **fix_activity_options(inp.config),
        )
        record.agent_prompt_used = prepared.agent_prompt_used
        answer: LLMCallResult = await workflow.execute_activity(
            CALL_LLM_ACTIVITY,
            LLMCallInput(
                request_path=prepared.request_path,
                request_sha256=prepared.request_sha256,
                llm=inp.config.llm,
            ),
            result_type=LLMCallResult,
            **llm_activity_options(inp.config),
        )
        record.tokens, record.cost_usd = answer.usage, answer.cost_usd
        applied: ApplyFixResult = await workflow.execute_activity(
            APPLY_FIX_RESPONSE_ACTIVITY,
            ApplyFixInput(
                workspace_root=inp.workspace_root,
                package_name=inp.package_name,
                package_path=inp.package_path,
                response_path=answer.response_path,
                attempt=inp.attempt,
                failure_types=types,
                config=inp.config,
            ),
            result_type=ApplyFixResult,
            **fix_activity_options(inp.config),
        )
        record.files_changed, record.commit = applied.files_changed, applied.commit
        record.scripts_changed = applied.scripts_changed
        record.succeeded = True
    except ActivityError as e:
        if is_cancelled_exception(e):
            raise  # a cancelled build must not go on to the next (paid) attempt
        cause: Any = e.cause
        if isinstance(cause, ApplicationError):
            record.error = f"{cause.type}: {cause.message}" if cause.type else cause.message
            usage, cost = paid_usage(cause)
            record.tokens, record.cost_usd = record.tokens + usage, record.cost_usd + cost
            stop = cause.type in STOP_LOOP_ERROR_TYPES
        else:
            record.error = str(cause or e)
    record.fix_duration = int((workflow.now() - start).total_seconds() * 1000)
    return FixAttemptOutcome(attempt=record, stop_loop=stop)
