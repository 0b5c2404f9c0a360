"""One phase's request to the model, written from the package as it is on disk now (or the
commit an earlier run of the phase already made)."""

from __future__ import annotations

from pathlib import Path

from pkgbuilder.llm.store import StoreError, read_response, write_request
from pkgbuilder.models.llm import ModelResponse
from pkgbuilder.models.session import PhasePromptInput, PhasePromptResult
from pkgbuilder.session import gitops
from pkgbuilder.session.phases import context as phase_context
from pkgbuilder.session.phases.definitions import spec
from pkgbuilder.session.phases.prompts import PackageBrief, build_phase_request, required_files
from pkgbuilder.session.setup import load_plan, open_git
from pkgbuilder.vcs import find_commit


def phase_request(inp: PhasePromptInput, home: Path) -> PhasePromptResult:
    """The phase's existing commit (first attempt only), else a request file under
    ``home`` built from the plan, the package's files and the session so far."""
    ctx = inp.context
    root = Path(ctx.workspace_root)
    if inp.attempt == 0 and (existing := _existing(inp, root)) is not None:
        return existing
    plan = load_plan(root, ctx.plan_path)
    pkg_dir = root / ctx.package_path
    s = spec(inp.phase.phase)
    files, omitted = phase_context.gather_files(pkg_dir, s.shows, inp.prompt_file_budget_chars)
    tree = phase_context.render_tree(phase_context.package_files(pkg_dir))
    brief = PackageBrief(
        package_name=ctx.package_name,
        package_path=ctx.package_path,
        category=ctx.category,
        coverage_target=max(plan.coverage_target or 0.0, inp.coverage_target),
        plan_path=ctx.plan_path,
        plan_text=plan.text,
    )
    request = build_phase_request(
        brief=brief,
        step=inp.phase,
        total_steps=len(ctx.phases),
        completed=ctx.completed_steps,
        tree=tree,
        files=files,
        omitted=omitted,
        requirements=required_files(inp.phase.phase, plan.implementation_files),
        # A resumed session runs under a new workflow id, so it asks the model afresh instead
        # of reusing an answer that already failed; a retried activity reuses the same key.
        request_key=f"{ctx.workflow_id}/step-{inp.phase.step_number}/attempt-{inp.attempt}"
        + (f"/reask-{inp.reask}" if inp.reask else ""),
        review=_review(inp.review_response_path),
        failures=inp.failures,
        attempt=inp.attempt,
        max_attempts=inp.max_attempts,
        missing=inp.missing,
    )
    path, sha = write_request(home, request)
    chars = sum(len(b.text) for m in request.messages for b in m.content)
    return PhasePromptResult(
        request_path=str(path),
        request_sha256=sha,
        files_included=[f for f, _ in files],
        files_omitted=omitted,
        prompt_chars=chars,
    )


def _existing(inp: PhasePromptInput, root: Path) -> PhasePromptResult | None:
    """The commit an earlier run of this phase made (an empty result when only that was
    asked for), or None: the request is to be written."""
    ctx = inp.context
    git = open_git(root)
    done = find_commit(
        git,
        gitops.phase_subject(inp.phase.phase, ctx.package_name),
        gitops.step_trailer(inp.phase.step_number),
        rev=ctx.branch,
        since=ctx.base_commit,
    )
    if done is not None:
        prefix = gitops.toplevel_prefix(git, root, ctx.package_path)
        return PhasePromptResult(
            existing_commit=done, existing_files=gitops.commit_files(git, done, prefix)
        )
    return PhasePromptResult() if inp.existing_only else None


def _review(path: str | None) -> ModelResponse | None:
    """The review answer a fix attempt shows the model (none when it is unreadable)."""
    if not path:
        return None
    try:
        return read_response(Path(path)).response
    except StoreError:
        return None
