"""TurnBasedGenerationWorkflow: the 15 phases, one model call, one commit and one
checkpoint each; BUILD_VALIDATION runs the real install/build/tests with a bounded fix loop;
MERGE merges with ``--no-ff`` when validation passed.

The workflow's own context (not the state file) decides which phases are done: a phase
completed before — in this run or in the run a ``resumeFromContext`` continues — makes no
model call. Failures are recorded in ``failureRecovery`` and fail the workflow with one
sentence that says how to resume.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from pkgbuilder.errors import ErrorType
from pkgbuilder.workflows.policies import (
    FILE_TIMEOUT,
    SESSION_RETRY,
    SESSION_TIMEOUT,
    heartbeat_timeout,
    llm_activity_options,
)

with workflow.unsafe.imports_passed_through():
    from pkgbuilder import search_attributes as sa
    from pkgbuilder.activities import session as gen_acts
    from pkgbuilder.config import ConfigError
    from pkgbuilder.models.build import Failure, TokenUsage
    from pkgbuilder.models.llm import CALL_LLM_ACTIVITY, LLMCallInput, LLMCallResult
    from pkgbuilder.models.session import (
        ApplyPhaseInput,
        ApplyPhaseResult,
        CompletedStep,
        FailureRecovery,
        GenerationContext,
        GenerationResult,
        MergeInput,
        PhasePromptInput,
        PhasePromptResult,
        PrepareSessionInput,
        SaveStateInput,
        SessionStatus,
        TurnBasedGenerationInput,
        ValidationOutcome,
    )
    from pkgbuilder.session.phases.config import (
        ScheduledPhase,
        TurnBasedGenerationConfig,
        schedule,
        turn_based_config,
    )
    from pkgbuilder.session.phases.definitions import GenerationPhase, spec
    from pkgbuilder.session.report import result_from_context
    from pkgbuilder.session.state import state_path
    from pkgbuilder.workflows.common import failure_message, paid_usage
    from pkgbuilder.workflows.session_validation import run_checks

# The context travels in every checkpoint and prompt input: keep each step's summary short.
SUMMARY_CHARS = 600
# A phase answer that lacks a required file is re-asked this often within the step (the
# request names what is missing) before the step fails.
MAX_REASKS = 1


class PhaseFailed(Exception):
    """A step cannot complete; the message is the one sentence recorded for the operator."""


@workflow.defn
class TurnBasedGenerationWorkflow:
    def __init__(self) -> None:
        self._ctx: GenerationContext | None = None
        self._detail = "starting"

    @workflow.query
    def get_state(self) -> GenerationContext | None:
        """The live session context (the state file's content, always current)."""
        return self._ctx

    @workflow.query
    def current_phase(self) -> str:
        return self._detail

    @workflow.run
    async def run(self, inp: TurnBasedGenerationInput) -> GenerationResult:
        try:
            cfg = turn_based_config(inp.config)
            if inp.resume_from_context is not None:
                # The schedule (phases, step numbers) is the session's; budgets and
                # temperatures configured now win, so raising a budget and resuming works.
                phases = [
                    p.model_copy(
                        update={
                            "max_tokens": cfg.token_budgets.get(p.phase, p.max_tokens),
                            "temperature": cfg.temperatures.get(p.phase, p.temperature),
                        }
                    )
                    for p in inp.resume_from_context.phases
                ]
            else:
                phases = schedule(cfg, inp.category)
        except ConfigError as e:
            raise ApplicationError(str(e), type=ErrorType.ConfigError, non_retryable=True) from e
        self._inp, self._cfg = inp, cfg
        self._state_path = str(state_path(inp.state_dir, inp.session_id))
        if inp.search_attributes:
            workflow.upsert_search_attributes(
                [
                    sa.BUILD_ID.value_set(inp.session_id),
                    sa.PACKAGE_NAME.value_set(inp.package_name),
                    sa.KIND.value_set("generation"),
                ]
            )
        self._ctx = ctx = await self._act(
            gen_acts.prepare_generation_session,
            PrepareSessionInput(
                generation=inp, workflow_id=workflow.info().workflow_id, phases=phases
            ),
        )
        done = ctx.completed_phases()
        for step in ctx.phases:
            if step.phase in done:
                continue
            self._announce(step)
            try:
                await self._run_step(step)
            except (ActivityError, PhaseFailed, ApplicationError) as e:
                if isinstance(e, ActivityError) and is_cancelled_exception(e):
                    await self._record_failure(step, PhaseFailed("the workflow was cancelled"))
                    raise asyncio.CancelledError() from e
                await self._record_failure(step, e)
                raise ApplicationError(
                    f"Step {step.step_number} ({step.phase.value}) of session {ctx.session_id} "
                    f"failed: {failure_message(e).rstrip('.')}. Fix the cause and run "
                    f"'pkgbuilder resume {ctx.session_id}'.",
                    type=ErrorType.GenerationFailed,
                    non_retryable=True,
                ) from e
            except asyncio.CancelledError:
                await self._record_failure(step, PhaseFailed("the workflow was cancelled"))
                raise
        ctx.status = SessionStatus.COMPLETED
        ctx.current_phase = None
        self._detail = "completed"
        await self._save()
        return result_from_context(ctx, self._state_path, skipped=done)

    # ---- one step ---------------------------------------------------------------------------

    async def _run_step(self, step: ScheduledPhase) -> None:
        ctx = self._ctx
        assert ctx is not None
        ctx.current_phase = step.phase
        ctx.current_step_number = step.step_number
        await self._save()
        if step.phase is GenerationPhase.MERGE:
            await self._merge(step)
        elif step.phase is GenerationPhase.BUILD_VALIDATION:
            await self._build_validation(step)
        else:
            await self._model_phase(step)

    async def _model_phase(self, step: ScheduledPhase) -> None:
        review = None
        if step.phase is GenerationPhase.CRITICAL_FIXES:
            assert self._ctx is not None
            r = self._ctx.step_of(GenerationPhase.INTEGRATION_REVIEW)
            review = r.response_path if r else None
        prompt = await self._prompt(step, review_response_path=review)
        if prompt.existing_commit:  # committed before a crash/lost checkpoint: no new call
            self._complete(step, prompt.existing_commit, prompt.existing_files, None)
            return
        call = await self._call(prompt)
        # Answers this step paid for but could not use (re-asked): counted in its usage.
        usage, cost, calls = TokenUsage(), 0.0, 0
        reasks = 0
        while True:
            try:
                applied = await self._apply(step, call, plan_check=True)
                break
            except ActivityError as e:
                missing = _missing_outputs(e)
                if missing is None or reasks >= MAX_REASKS:
                    self._count(usage + call.usage, cost + call.cost_usd)
                    if missing is not None:
                        raise PhaseFailed(
                            f"the model's {step.phase.value} answer still lacked "
                            f"{'; '.join(missing)} after it was asked again "
                            f"({reasks} re-ask{'s' if reasks != 1 else ''}); nothing was "
                            "applied"
                        ) from e
                    raise
            reasks += 1
            usage, cost = usage + call.usage, cost + call.cost_usd
            calls += call.model_calls
            self._announce(step, f" — re-asking for {', '.join(missing)}")
            prompt = await self._prompt(step, reask=reasks, missing=missing)
            call = await self._call(prompt)
        self._complete(step, applied.commit, applied.files, call, usage, cost, calls)

    async def _build_validation(self, step: ScheduledPhase) -> None:
        ctx, inp, cfg = self._ctx, self._inp, self._cfg
        assert ctx is not None
        prompt = await self._prompt(step, existing_only=True)
        if prompt.existing_commit:
            ctx.validation = ValidationOutcome(passed=True, message="validated before a crash")
            self._complete(step, prompt.existing_commit, prompt.existing_files, None)
            return
        failures, coverage = await run_checks(inp, ctx, self._log_dir("validation-0"))
        attempt, changed, usage, cost, calls = 0, set[str](), TokenUsage(), 0.0, 0
        while failures and attempt < cfg.validation_fix_attempts:
            attempt += 1
            self._announce(step, f" — fix attempt {attempt} of {cfg.validation_fix_attempts}")
            prompt = await self._prompt(step, failures=failures, attempt=attempt)
            call = await self._call(prompt)
            # Counted in the totals at once: a later failure must not lose what was paid.
            self._count(call.usage, call.cost_usd)
            usage, cost, calls = usage + call.usage, cost + call.cost_usd, calls + call.model_calls
            applied = await self._apply(
                step, call, fix_attempt=attempt, fix_types=sorted({f.type.value for f in failures})
            )
            changed.update(applied.files)
            failures, coverage = await run_checks(inp, ctx, self._log_dir(f"validation-{attempt}"))
        ctx.validation = ValidationOutcome(
            passed=not failures,
            fix_attempts=attempt,
            coverage_percent=coverage,
            failure_types=sorted({f.type.value for f in failures}),
            message="; ".join(f.message for f in failures[:3])
            or "install, build, tests and quality checks passed",
        )
        if failures:
            raise PhaseFailed(
                f"the package still fails ({ctx.validation.message}) after {attempt} fix "
                f"attempt{'s' if attempt != 1 else ''}"
            )
        applied = await self._apply(step, None, extra_files=sorted(changed))
        self._complete(
            step, applied.commit, sorted(changed), None, usage, cost, calls, counted=True
        )

    async def _merge(self, step: ScheduledPhase) -> None:
        ctx, inp = self._ctx, self._inp
        assert ctx is not None
        how = f"git checkout {ctx.base_branch} && git merge --no-ff {ctx.branch}"
        merge = inp.merge if inp.merge is not None else self._cfg.merge
        reason = None
        if ctx.branch == ctx.base_branch:
            ctx.merge_instructions = f"Generated in place on {ctx.branch}; nothing to merge."
            self._complete(step, None, [], None)
            return
        if not merge:
            reason = "merging was turned off (--no-merge)"
        elif ctx.validation is None or not ctx.validation.passed:
            reason = "BUILD_VALIDATION did not run in this session, so nothing proves it builds"
        elif self._changed_after_validation():
            failures, _ = await run_checks(inp, ctx, self._log_dir("merge-check"))
            if failures:
                raise PhaseFailed(
                    "changes made after BUILD_VALIDATION break the package ("
                    + "; ".join(f.message for f in failures[:3])
                    + f"); fix them on {ctx.branch}"
                )
        if reason is not None:
            ctx.merge_instructions = f"Not merged: {reason}. To merge: {how}"
            self._complete(step, None, [], None)
            return
        result = await self._act(
            gen_acts.merge_generation_branch,
            MergeInput(
                workspace_root=ctx.workspace_root,
                package_name=ctx.package_name,
                package_path=ctx.package_path,
                branch=ctx.branch,
                base_branch=ctx.base_branch,
                base_commit=ctx.base_commit,
                step_number=step.step_number,
            ),
        )
        ctx.merge_commit = result.merge_commit
        ctx.merge_instructions = None
        self._complete(step, result.merge_commit, result.files, None)

    def _changed_after_validation(self) -> bool:
        assert self._ctx is not None
        v = self._ctx.step_of(GenerationPhase.BUILD_VALIDATION)
        return v is None or any(
            s.files for s in self._ctx.completed_steps if s.step_number > v.step_number
        )

    # ---- activities ---------------------------------------------------------------------------

    async def _act(self, fn: Any, arg: Any) -> Any:
        return await workflow.execute_activity(
            # The heartbeat timeout is what lets a retry start soon after a worker dies
            # mid-step; these git/file steps are short (seconds) and heartbeat where they
            # can take longer (apply → commit).
            fn,
            arg,
            start_to_close_timeout=SESSION_TIMEOUT,
            retry_policy=SESSION_RETRY,
            heartbeat_timeout=heartbeat_timeout(self._inp.config.timeouts.heartbeat_seconds),
        )

    async def _prompt(
        self,
        step: ScheduledPhase,
        failures: list[Failure] | None = None,
        attempt: int = 0,
        review_response_path: str | None = None,
        existing_only: bool = False,
        reask: int = 0,
        missing: list[str] | None = None,
    ) -> PhasePromptResult:
        assert self._ctx is not None
        arg = PhasePromptInput(
            context=self._ctx,
            phase=step,
            prompt_file_budget_chars=self._cfg.prompt_file_budget_chars,
            coverage_target=self._inp.config.testing.threshold_for(self._ctx.category),
            failures=failures or [],
            attempt=attempt,
            max_attempts=self._cfg.validation_fix_attempts,
            review_response_path=review_response_path,
            existing_only=existing_only,
            reask=reask,
            missing=missing or [],
        )
        result: PhasePromptResult = await self._act(gen_acts.prepare_phase_request, arg)
        return result

    async def _call(self, prompt: PhasePromptResult) -> LLMCallResult:
        settings = self._inp.config
        try:
            result: LLMCallResult = await workflow.execute_activity(
                CALL_LLM_ACTIVITY,
                LLMCallInput(
                    request_path=prompt.request_path,
                    request_sha256=prompt.request_sha256,
                    llm=settings.llm,
                ),
                result_type=LLMCallResult,
                **llm_activity_options(settings),
            )
        except ActivityError as e:
            self._count(*paid_usage(e))
            raise
        return result

    async def _apply(
        self,
        step: ScheduledPhase,
        call: LLMCallResult | None,
        *,
        plan_check: bool = False,
        fix_attempt: int | None = None,
        fix_types: list[str] | None = None,
        extra_files: list[str] | None = None,
    ) -> ApplyPhaseResult:
        ctx, fix = self._ctx, self._inp.config.fix
        assert ctx is not None
        arg = ApplyPhaseInput(
            workspace_root=ctx.workspace_root,
            package_path=ctx.package_path,
            package_name=ctx.package_name,
            branch=ctx.branch,
            base_commit=ctx.base_commit,
            phase=step.phase,
            step_number=step.step_number,
            response_path=call.response_path if call else None,
            request_sha256=call.request_sha256 if call else None,
            fix_attempt=fix_attempt,
            fix_types=fix_types or [],
            extra_files=extra_files or [],
            plan_path=ctx.plan_path if plan_check else None,
            max_files=fix.max_files_per_response,
            max_file_bytes=fix.max_file_bytes,
            max_total_bytes=fix.max_response_bytes,
        )
        result: ApplyPhaseResult = await self._act(gen_acts.apply_generation_phase, arg)
        return result

    async def _save(self) -> None:
        assert self._ctx is not None
        self._ctx.updated_at = workflow.now()
        await workflow.execute_activity(
            gen_acts.save_generation_state,
            SaveStateInput(state_path=self._state_path, context=self._ctx),
            start_to_close_timeout=FILE_TIMEOUT,
            retry_policy=SESSION_RETRY,
        )

    # ---- bookkeeping --------------------------------------------------------------------------

    def _complete(
        self,
        step: ScheduledPhase,
        commit: str | None,
        files: list[str],
        call: LLMCallResult | None,
        usage: TokenUsage | None = None,
        cost: float = 0.0,
        calls: int = 0,
        counted: bool = False,
    ) -> None:
        """Record a finished step (``counted``: its tokens are already in the totals)."""
        ctx = self._ctx
        assert ctx is not None
        usage = usage or TokenUsage()
        if call is not None:
            usage, cost, calls = usage + call.usage, cost + call.cost_usd, calls + call.model_calls
        ctx.completed_steps.append(
            CompletedStep(
                phase=step.phase,
                step_number=step.step_number,
                description=spec(step.phase).description,
                files=files,
                commit=commit,
                timestamp=int(workflow.now().timestamp() * 1000),
                usage=usage,
                cost_usd=round(cost, 6),
                model_calls=calls,
                summary=call.summary[:SUMMARY_CHARS] if call else "",
                response_path=call.response_path if call else None,
            )
        )
        if commit:
            ctx.last_successful_commit = commit
        ctx.failure_recovery = None
        if not counted:
            self._count(usage, cost)

    def _count(self, usage: TokenUsage, cost: float) -> None:
        assert self._ctx is not None
        self._ctx.total_usage = self._ctx.total_usage + usage
        self._ctx.total_cost_usd = round(self._ctx.total_cost_usd + cost, 6)

    async def _record_failure(self, step: ScheduledPhase, e: BaseException) -> None:
        ctx = self._ctx
        assert ctx is not None
        prev = ctx.failure_recovery
        retries = prev.retry_count + 1 if prev and prev.failed_step == step.step_number else 1
        ctx.failure_recovery = FailureRecovery(
            failed_step=step.step_number,
            phase=step.phase,
            error=failure_message(e),
            retry_count=retries,
            timestamp=int(workflow.now().timestamp() * 1000),
        )
        ctx.status = SessionStatus.FAILED
        self._detail = f"failed at step {step.step_number} ({step.phase.value})"
        try:
            await self._save()
        except ActivityError:
            workflow.logger.error("could not write the state file of %s", ctx.session_id)

    def _announce(self, step: ScheduledPhase, extra: str = "") -> None:
        assert self._ctx is not None
        self._detail = f"step {step.step_number}/{len(self._ctx.phases)}: {step.phase.value}{extra}"
        workflow.set_current_details(
            f"{self._ctx.package_name} ({self._ctx.session_id}) — {self._detail}"
        )
        if self._inp.search_attributes:
            workflow.upsert_search_attributes([sa.BUILD_PHASE.value_set(step.phase.value)])

    def _log_dir(self, name: str) -> str:
        return f"{self._inp.state_dir}/{self._inp.session_id}/logs/{name}"


def _missing_outputs(e: ActivityError) -> list[str] | None:
    """The required files a phase answer lacked (PhaseOutputMissing), else None."""
    cause = e.cause
    if isinstance(cause, ApplicationError) and cause.type == ErrorType.PhaseOutputMissing:
        for detail in cause.details or ():
            if isinstance(detail, dict) and isinstance(detail.get("missing"), list):
                return [str(m) for m in detail["missing"]]
    return None


__all__ = ["TurnBasedGenerationConfig", "TurnBasedGenerationWorkflow"]
