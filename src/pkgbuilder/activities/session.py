"""Turn-based generation activities (main task queue): session setup, phase requests,
applying and committing answers, state checkpoints, the validation target and the merge.

Each is a thin adapter over :mod:`pkgbuilder.session` / :mod:`pkgbuilder.session.phases` and is
idempotent: a retry after a crash finds the commit, state or merge it already made.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pkgbuilder.config import pkgbuilder_home
from pkgbuilder.errors import ErrorType, UserError
from pkgbuilder.llm.fileops import (
    FileOperationError,
    FileOpLimits,
    apply_file_operations,
    normalise_path,
)
from pkgbuilder.llm.store import StoreError, read_response, write_request
from pkgbuilder.models.build import Failure, FailureType, PackageNode
from pkgbuilder.models.llm import ModelResponse
from pkgbuilder.models.session import (
    ApplyPhaseInput,
    ApplyPhaseResult,
    MergeInput,
    MergeResult,
    PhasePromptInput,
    PhasePromptResult,
    PrepareSessionInput,
    SaveStateInput,
    ValidationTargetInput,
    ValidationTargetResult,
)
from pkgbuilder.reporting.html import write_generation_page
from pkgbuilder.session import gitops
from pkgbuilder.session.phases import context as phase_context
from pkgbuilder.session.phases.definitions import GenerationPhase, spec
from pkgbuilder.session.phases.prompts import PackageBrief, build_phase_request, required_files
from pkgbuilder.session.plan import PackagePlan, parse_plan
from pkgbuilder.session.resume import dirty_package_paths
from pkgbuilder.session.state import (
    GenerationContext,
    SessionStatus,
    read_state,
    state_path,
    write_state,
)
from pkgbuilder.vcs import GitFailed, NotARepository, Repository, commit_exact, find_commit


def _fail(message: str, kind: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


def _heartbeat(detail: str) -> None:
    if activity.in_activity():
        activity.heartbeat(detail)


def _inside(root: Path, rel: str, what: str) -> Path:
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts or not rel.strip():
        raise _fail(
            f"{what} '{rel}' must be a path inside the workspace.", ErrorType.GenerationInputError
        )
    return root / rel


def _git(root: Path) -> Repository:
    git = Repository(root)
    try:
        git.toplevel()
    except (GitFailed, NotARepository) as e:
        raise _fail(
            f"Workspace {root} is not a git repository; run 'git init' there or pass "
            "the repository root.",
            ErrorType.GitStateError,
        ) from e
    return git


def load_plan(root: Path, plan_path: str) -> PackagePlan:
    path = _inside(root, plan_path, "Plan path")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _fail(
            f"Plan file {plan_path} does not exist in {root}; write it first (see "
            "'Plan format' in docs/generation.md).",
            ErrorType.PlanError,
        ) from None
    except OSError as e:
        raise _fail(
            f"Plan file {plan_path} cannot be read: {e.strerror}.", ErrorType.PlanError
        ) from e
    try:
        return parse_plan(text, plan_path)
    except UserError as e:
        raise _fail(str(e), ErrorType.PlanError) from e


@activity.defn
def prepare_generation_session(inp: PrepareSessionInput) -> GenerationContext:
    """Check the plan, create (or re-enter) the session branch, write the state file."""
    g = inp.generation
    root = Path(g.workspace_root)
    _inside(root, g.package_path, "Package path")
    plan = load_plan(root, g.plan_path)
    if plan.package_name and plan.package_name.strip("`") != g.package_name:
        raise _fail(
            f"Plan {g.plan_path} is for '{plan.package_name}', not '{g.package_name}'; "
            "pass the name the plan gives or fix its '# Package:' line.",
            ErrorType.PlanError,
        )
    git = _git(root)
    spath = state_path(g.state_dir, g.session_id)
    ctx = g.resume_from_context
    if ctx is None and spath.is_file():
        # A retry of this activity finds its own state file; another session's is never
        # overwritten.
        try:
            existing = read_state(spath)
        except UserError as e:
            raise _fail(str(e), ErrorType.GitStateError) from e
        if existing.workflow_id != inp.workflow_id:
            raise _fail(
                f"Session {g.session_id} already exists (state file {spath}); start a "
                "new session or resume that one.",
                ErrorType.GenerationInputError,
            )
        ctx = existing
    try:
        if ctx is not None:
            if not git.branch_exists(ctx.branch):
                raise _fail(
                    f"Branch {ctx.branch} of session {ctx.session_id} does not exist; "
                    "restore it or start a new session.",
                    ErrorType.GitStateError,
                )
            gitops.checkout(git, ctx.branch)
            ctx = ctx.model_copy(
                update={
                    "workflow_id": inp.workflow_id,
                    "status": SessionStatus.RUNNING,
                    "updated_at": datetime.now(UTC),
                    "phases": inp.phases,
                }
            )
        else:
            prefix = gitops.toplevel_prefix(git, root, g.package_path)
            dirty = dirty_package_paths(git, prefix, _state_exclude(git, Path(g.state_dir)))
            if dirty:
                raise _fail(
                    f"The package directory {g.package_path} has uncommitted changes "
                    f"({', '.join(dirty[:5])}); commit or remove them first.",
                    ErrorType.GitStateError,
                )
            if g.in_place:
                branch = git.current_branch() or ""
                if not branch:
                    raise gitops.GenerationGitError(
                        "HEAD is detached; check out a branch to generate in place."
                    )
                base, base_commit = branch, git.rev("HEAD")
            else:
                branch = g.branch or gitops.branch_name(g.session_id)
                base, base_commit, _ = gitops.ensure_branch(git, branch, g.base_branch)
            now = datetime.now(UTC)
            ctx = GenerationContext(
                session_id=g.session_id,
                workflow_id=inp.workflow_id,
                package_name=g.package_name,
                package_path=g.package_path,
                plan_path=g.plan_path,
                category=g.category,
                workspace_root=str(root),
                branch=branch,
                base_branch=base,
                base_commit=base_commit,
                phases=inp.phases,
                created_at=now,
                updated_at=now,
            )
    except gitops.GenerationGitError as e:
        raise _fail(str(e), ErrorType.GitStateError) from e
    write_state(spath, ctx)
    return ctx


def _state_exclude(git: Repository, directory: Path) -> list[str]:
    try:
        return [directory.resolve().relative_to(git.toplevel()).as_posix()]
    except ValueError:
        return []


@activity.defn
def save_generation_state(inp: SaveStateInput) -> None:
    """Checkpoint: write the workflow's view of the session atomically (and its page)."""
    write_state(Path(inp.state_path), inp.context)
    write_generation_page(Path(inp.state_path), inp.context)


def _review(path: str | None) -> ModelResponse | None:
    if not path:
        return None
    try:
        return read_response(Path(path)).response
    except StoreError:
        return None


@activity.defn
def prepare_phase_request(inp: PhasePromptInput) -> PhasePromptResult:
    """Write one phase's request file from the package as it is on disk now."""
    ctx = inp.context
    root = Path(ctx.workspace_root)
    if inp.attempt == 0:
        git = _git(root)
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
                existing_commit=done, existing_files=_commit_files(git, done, prefix)
            )
        if inp.existing_only:
            return PhasePromptResult()
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
    path, sha = write_request(pkgbuilder_home(), request)
    chars = sum(len(b.text) for m in request.messages for b in m.content)
    return PhasePromptResult(
        request_path=str(path),
        request_sha256=sha,
        files_included=[f for f, _ in files],
        files_omitted=omitted,
        prompt_chars=chars,
    )


def _missing_outputs(
    pkg_dir: Path, response: ModelResponse | None, required: list[list[str]]
) -> list[str]:
    """Requirements no file satisfies once the answer is applied."""
    present = set(phase_context.package_files(pkg_dir))
    for op in response.files if response else []:
        try:
            rel = normalise_path(op.path)
        except ValueError:
            continue
        if op.operation == "delete":
            present.discard(rel)
        else:
            present.add(rel)
    return [
        " or ".join(any_of)
        for any_of in required
        if not any(phase_context.matches_any(p, any_of) for p in present)
    ]


def _commit_files(git: Repository, sha: str, prefix: str) -> list[str]:
    return sorted(p.removeprefix(prefix + "/") for p in git.commit_files(sha))


@activity.defn
def apply_generation_phase(inp: ApplyPhaseInput) -> ApplyPhaseResult:
    """Apply a phase's answer (all or nothing) and commit exactly the paths it names."""
    root = Path(inp.workspace_root)
    pkg_dir = _inside(root, inp.package_path, "Package path")
    git = _git(root)
    prefix = gitops.toplevel_prefix(git, root, inp.package_path)
    try:
        gitops.checkout(git, inp.branch)
    except gitops.GenerationGitError as e:
        raise _fail(str(e), ErrorType.GitStateError) from e
    if inp.fix_attempt is None:
        trailer = gitops.step_trailer(inp.step_number)
        needle = gitops.phase_subject(inp.phase, inp.package_name)
    else:
        # The request hash makes the key unique: a resumed session's attempt 1 is not the
        # failed session's attempt 1.
        key = (inp.request_sha256 or "")[:12]
        trailer = (
            f"[Turn-based generation step {inp.step_number}, fix attempt "
            f"{inp.fix_attempt}, request {key}]"
        )
        needle = f"fix({inp.package_name}):"
    done = find_commit(git, needle, trailer, rev=inp.branch, since=inp.base_commit)
    if done is not None:  # this step already ran to its commit before a crash
        return ApplyPhaseResult(
            commit=done, files=_commit_files(git, done, prefix), already_applied=True
        )
    response = None
    if inp.response_path:
        try:
            response = read_response(Path(inp.response_path)).response
        except StoreError as e:
            raise _fail(str(e), ErrorType.ResponseFileInvalid) from e
    required = []
    if inp.plan_path is not None:
        plan = load_plan(root, inp.plan_path)
        required = [list(r.any_of) for r in required_files(inp.phase, plan.implementation_files)]
    missing = _missing_outputs(pkg_dir, response, required)
    if missing:
        # The workflow re-asks the model with this list (details) before it gives up.
        raise ApplicationError(
            f"The model's {inp.phase.value} answer did not produce {'; '.join(missing)}; "
            "nothing was applied.",
            {"missing": missing},
            type=ErrorType.PhaseOutputMissing,
            non_retryable=True,
        )
    named: list[str] = []
    if response is not None and response.files:
        created = not pkg_dir.exists()
        pkg_dir.mkdir(parents=True, exist_ok=True)
        try:
            apply_file_operations(pkg_dir, response.files, _limits(inp))
        except FileOperationError as e:
            if created:  # leave no trace of a rejected first answer
                with contextlib.suppress(OSError):
                    pkg_dir.rmdir()
            raise ApplicationError(
                str(e),
                {"problems": e.problems[:20]},
                type=ErrorType.UnsafeFileOperation,
                non_retryable=True,
            ) from e
        # Commit every named path: after a crash between writing and committing, the
        # re-apply changes nothing on disk but the files still need their commit.
        named = [normalise_path(op.path) for op in response.files]
    _heartbeat("committing")

    def message(changed: list[str]) -> str:
        files = sorted({*(p.removeprefix(prefix + "/") for p in changed), *inp.extra_files})
        if inp.fix_attempt is None:
            return gitops.phase_commit_message(inp.phase, inp.package_name, files, inp.step_number)
        types = ", ".join(inp.fix_types) or "build"
        listed = ", ".join(files) or "none"
        return (
            f"fix({inp.package_name}): {inp.phase.value} attempt {inp.fix_attempt} for "
            f"{types}\n\nFiles modified: {listed}\n\n{trailer}"
        )

    commit, changed = commit_exact(git, gitops.package_repo_paths(inp.package_path, named), message)
    rel = sorted(p.removeprefix(prefix + "/") for p in changed)
    return ApplyPhaseResult(
        commit=commit, files=rel, summary=response.summary[:2000] if response else ""
    )


def _limits(inp: ApplyPhaseInput) -> FileOpLimits:
    return FileOpLimits(inp.max_files, inp.max_file_bytes, inp.max_total_bytes)


@activity.defn
def describe_generated_package(inp: ValidationTargetInput) -> ValidationTargetResult:
    """The generated package as the build activities need it (scripts from package.json),
    or the failure that stops it from being built at all (for the fix loop)."""
    root = Path(inp.workspace_root)
    pkg_dir = _inside(root, inp.package_path, "Package path")
    manifest = pkg_dir / "package.json"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        why = "is missing" if isinstance(e, FileNotFoundError) else f"is invalid ({e})"
        return ValidationTargetResult(
            failures=[
                Failure(
                    type=FailureType.BUILD, message=f"package.json {why}", output_tail=str(e)[:2000]
                )
            ]
        )
    raw_scripts = data.get("scripts")
    scripts: dict[str, Any] = raw_scripts if isinstance(raw_scripts, dict) else {}
    node = PackageNode(
        name=str(data.get("name") or inp.package_name),
        version=str(data.get("version", "0.0.0")),
        path=inp.package_path,
        category=inp.category,
        layer=inp.category.layer,
        dependencies=inp.dependencies,
        scripts=sorted(str(k) for k in scripts),
    )
    # A workspace root with a package.json installs for all members; a lone package
    # (no root manifest) installs in its own directory.
    install_root = root if (root / "package.json").is_file() else pkg_dir
    return ValidationTargetResult(node=node, install_root=str(install_root))


@activity.defn
def merge_generation_branch(inp: MergeInput) -> MergeResult:
    """MERGE: ``git merge --no-ff`` of the session branch into its base (idempotent)."""
    root = Path(inp.workspace_root)
    git = _git(root)
    trailer = gitops.step_trailer(inp.step_number)
    prefix = gitops.toplevel_prefix(git, root, inp.package_path)
    files = [p.removeprefix(prefix + "/") for p in git.changed_files(inp.base_branch, inp.branch)]
    already = git.is_ancestor(inp.branch, inp.base_branch)
    message = gitops.phase_commit_message(
        GenerationPhase.MERGE, inp.package_name, sorted(files), inp.step_number
    )
    try:
        sha = gitops.merge_no_ff(git, inp.base_branch, inp.branch, message, trailer)
    except gitops.GenerationGitError as e:
        raise _fail(str(e), ErrorType.MergeFailed) from e
    return MergeResult(merge_commit=sha, files=sorted(files), already_merged=already)


ACTIVITIES: list[Callable[..., Any]] = [
    prepare_generation_session,
    save_generation_state,
    prepare_phase_request,
    apply_generation_phase,
    describe_generated_package,
    merge_generation_branch,
]
