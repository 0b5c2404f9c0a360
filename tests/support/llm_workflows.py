"""Test-only workflows that drive the Claude-layer activities through a real worker."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pkgbuilder.config import BuildSettings
    from pkgbuilder.models.common import Model
    from pkgbuilder.models.llm import (
        CALL_LLM_ACTIVITY,
        FixAttemptInput,
        FixAttemptOutcome,
        LLMCallInput,
        LLMCallResult,
    )
    from pkgbuilder.workflows.fix_loop import run_fix_attempt
    from pkgbuilder.workflows.policies import llm_activity_options


class CallLLMProbeInput(Model):
    call: LLMCallInput
    config: BuildSettings


@workflow.defn
class CallLLMProbeWorkflow:
    """Schedules ``call_llm`` exactly as production workflows do (same options helper)."""

    @workflow.run
    async def run(self, inp: CallLLMProbeInput) -> LLMCallResult:
        return await workflow.execute_activity(
            CALL_LLM_ACTIVITY,
            inp.call,
            result_type=LLMCallResult,
            **llm_activity_options(inp.config),
        )


@workflow.defn
class FixAttemptProbeWorkflow:
    """One fix attempt through ``run_fix_attempt`` (prepare -> call_llm -> apply + commit)."""

    @workflow.run
    async def run(self, inp: FixAttemptInput) -> FixAttemptOutcome:
        return await run_fix_attempt(inp)
