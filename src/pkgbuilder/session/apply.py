"""Applying a phase's answer (all or nothing) and committing exactly the paths it names;
merging the session branch into its base.

Idempotent: the step trailer finds a commit an earlier run made, and the merge finds an
earlier merge.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from pkgbuilder.llm.fileops import (
    FileOperationError,
    FileOpLimits,
    apply_file_operations,
    normalise_path,
)
from pkgbuilder.llm.store import StoreError, read_response
from pkgbuilder.models.llm import ModelResponse
from pkgbuilder.models.session import ApplyPhaseInput, ApplyPhaseResult, MergeInput, MergeResult
from pkgbuilder.session import gitops
from pkgbuilder.session.errors import (
    GitStateError,
    MergeFailed,
    PhaseOutputMissing,
    ResponseFileInvalid,
    UnsafeFileOperation,
)
from pkgbuilder.session.phases import context as phase_context
from pkgbuilder.session.phases.definitions import GenerationPhase
from pkgbuilder.session.phases.prompts import required_files
from pkgbuilder.session.setup import inside, load_plan, open_git
from pkgbuilder.vcs import commit_exact, find_commit


def missing_outputs(
    pkg_dir: Path, response: ModelResponse | None, required: list[list[str]]
) -> list[str]:
    """Requirements (each a list of alternatives) no file satisfies once the answer is
    applied to what ``pkg_dir`` holds now."""
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


def step_trailer(inp: ApplyPhaseInput) -> str:
    """The trailer that identifies this step's commit (a phase, or one fix attempt)."""
    if inp.fix_attempt is None:
        return gitops.step_trailer(inp.step_number)
    # The request hash makes the key unique: a resumed session's attempt 1 is not the
    # failed session's attempt 1.
    key = (inp.request_sha256 or "")[:12]
    return (
        f"[Turn-based generation step {inp.step_number}, fix attempt "
        f"{inp.fix_attempt}, request {key}]"
    )


def commit_message(inp: ApplyPhaseInput, files: list[str]) -> str:
    """The commit message of a phase (or fix attempt) that changed ``files``."""
    if inp.fix_attempt is None:
        return gitops.phase_commit_message(inp.phase, inp.package_name, files, inp.step_number)
    types = ", ".join(inp.fix_types) or "build"
    listed = ", ".join(files) or "none"
    return (
        f"fix({inp.package_name}): {inp.phase.value} attempt {inp.fix_attempt} for "
        f"{types}\n\nFiles modified: {listed}\n\n{step_trailer(inp)}"
    )


def apply_phase(
    inp: ApplyPhaseInput, heartbeat: Callable[[str], None] = lambda _: None
) -> ApplyPhaseResult:
    """Apply the answer at ``inp.response_path`` to the package and commit what it names."""
    root = Path(inp.workspace_root)
    pkg_dir = inside(root, inp.package_path, "Package path")
    git = open_git(root)
    prefix = gitops.toplevel_prefix(git, root, inp.package_path)
    try:
        gitops.checkout(git, inp.branch)
    except gitops.GenerationGitError as e:
        raise GitStateError(str(e)) from e
    needle = (
        gitops.phase_subject(inp.phase, inp.package_name)
        if inp.fix_attempt is None
        else f"fix({inp.package_name}):"
    )
    done = find_commit(git, needle, step_trailer(inp), rev=inp.branch, since=inp.base_commit)
    if done is not None:  # this step already ran to its commit before a crash
        return ApplyPhaseResult(
            commit=done, files=gitops.commit_files(git, done, prefix), already_applied=True
        )
    response = _response(inp.response_path)
    required = []
    if inp.plan_path is not None:
        plan = load_plan(root, inp.plan_path)
        required = [list(r.any_of) for r in required_files(inp.phase, plan.implementation_files)]
    missing = missing_outputs(pkg_dir, response, required)
    if missing:
        # The workflow re-asks the model with this list (details) before it gives up.
        raise PhaseOutputMissing(
            f"The model's {inp.phase.value} answer did not produce {'; '.join(missing)}; "
            "nothing was applied.",
            {"missing": missing},
        )
    named = _write_files(pkg_dir, response, inp) if response is not None else []
    heartbeat("committing")

    def message(changed: list[str]) -> str:
        files = sorted({*(p.removeprefix(prefix + "/") for p in changed), *inp.extra_files})
        return commit_message(inp, files)

    commit, changed = commit_exact(git, gitops.package_repo_paths(inp.package_path, named), message)
    rel = sorted(p.removeprefix(prefix + "/") for p in changed)
    return ApplyPhaseResult(
        commit=commit, files=rel, summary=response.summary[:2000] if response else ""
    )


def _response(path: str | None) -> ModelResponse | None:
    if not path:
        return None
    try:
        return read_response(Path(path)).response
    except StoreError as e:
        raise ResponseFileInvalid(str(e)) from e


def _write_files(pkg_dir: Path, response: ModelResponse, inp: ApplyPhaseInput) -> list[str]:
    """Apply the answer's file operations (all or nothing); the paths to commit."""
    if not response.files:
        return []
    created = not pkg_dir.exists()
    pkg_dir.mkdir(parents=True, exist_ok=True)
    limits = FileOpLimits(inp.max_files, inp.max_file_bytes, inp.max_total_bytes)
    try:
        apply_file_operations(pkg_dir, response.files, limits)
    except FileOperationError as e:
        if created:  # leave no trace of a rejected first answer
            with contextlib.suppress(OSError):
                pkg_dir.rmdir()
        raise UnsafeFileOperation(str(e), {"problems": e.problems[:20]}) from e
    # Commit every named path: after a crash between writing and committing, the re-apply
    # changes nothing on disk but the files still need their commit.
    return [normalise_path(op.path) for op in response.files]


def merge_branch(inp: MergeInput) -> MergeResult:
    """MERGE: ``git merge --no-ff`` of the session branch into its base (idempotent)."""
    root = Path(inp.workspace_root)
    git = open_git(root)
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
        raise MergeFailed(str(e)) from e
    return MergeResult(merge_commit=sha, files=sorted(files), already_merged=already)
