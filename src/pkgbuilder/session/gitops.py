"""Git operations of a generation session: branch, per-phase commits, merge.

Built on :mod:`pkgbuilder.vcs`. Commits take exactly the paths a phase touched
(:func:`pkgbuilder.vcs.commit_exact`), so files of other builds in the same checkout, staged
or not, are never swept in. Every operation can run twice: the step trailer identifies a
phase's commit, so a retried step finds it (:func:`pkgbuilder.vcs.find_commit`) instead of
repeating.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from pkgbuilder.errors import UserError
from pkgbuilder.session.phases.definitions import GenerationPhase
from pkgbuilder.session.state import SESSION_PREFIX
from pkgbuilder.vcs import GitFailed, Repository, find_commit

BRANCH_PREFIX = "feat/package-generation-"


class GenerationGitError(UserError):
    """A git precondition of the session does not hold (one sentence with the fix)."""


def commit_files(git: Repository, sha: str, prefix: str) -> list[str]:
    """The files a commit touched, relative to the package directory ``prefix``."""
    return sorted(p.removeprefix(prefix + "/") for p in git.commit_files(sha))


def branch_name(session_id: str) -> str:
    """``gen-1732198765432`` -> ``feat/package-generation-1732198765432``."""
    return BRANCH_PREFIX + session_id.removeprefix(SESSION_PREFIX)


def step_trailer(step: int) -> str:
    return f"[Turn-based generation step {step}]"


def phase_subject(phase: GenerationPhase, package_name: str) -> str:
    return f"feat({phase.value.lower()}): complete {phase.value} phase for {package_name}"


def phase_commit_message(
    phase: GenerationPhase, package_name: str, files: list[str], step: int
) -> str:
    """The seed's commit message: subject, blank line, files, blank line, step trailer."""
    listed = ", ".join(files) if files else "none"
    return (
        f"{phase_subject(phase, package_name)}\n\nFiles modified: {listed}\n\n{step_trailer(step)}"
    )


def package_repo_paths(package_path: str, files: list[str]) -> list[str]:
    """Package-relative posix paths -> paths relative to the workspace root (git's cwd)."""
    base = PurePosixPath(package_path)
    return [str(base / f) for f in files]


def toplevel_prefix(git: Repository, workspace_root: Path, package_path: str) -> str:
    """The package directory relative to the repository's top level (git status paths)."""
    full = (workspace_root / package_path).resolve()
    try:
        return full.relative_to(git.toplevel()).as_posix()
    except ValueError:
        return package_path


def ensure_branch(git: Repository, branch: str, base_branch: str | None) -> tuple[str, str, bool]:
    """Create ``branch`` from the base (or reuse it) and check it out.

    Returns:
        (base branch, base commit, created?)

    Raises:
        GenerationGitError: detached HEAD without a base, or an unknown base.
    """
    created = False
    if not git.branch_exists(branch):
        base = base_branch or git.current_branch()
        if base is None:
            raise GenerationGitError(
                "HEAD is detached; check out the base branch (e.g. 'git checkout main') or "
                "pass --base."
            )
        if not git.branch_exists(base):
            raise GenerationGitError(f"Base branch '{base}' does not exist; pass --base.")
        git.create_branch(branch, base)
        created = True
    else:
        current = git.current_branch()
        found = base_branch or (current if current and current != branch else None)
        if found is None:
            raise GenerationGitError(
                f"Branch {branch} already exists; pass --base to name the branch it was made from."
            )
        base = found
    base_commit = git.merge_base(base, branch) if git.branch_exists(base) else ""
    checkout(git, branch)
    return base, base_commit, created


def checkout(git: Repository, branch: str) -> None:
    """Check out ``branch`` unless it already is (uncommitted changes elsewhere carry over).

    Raises:
        GenerationGitError: git refuses (a local change would be overwritten).
    """
    if git.current_branch() == branch:
        return
    try:
        git.checkout(branch)
    except GitFailed as e:
        lines = (e.stderr or "").strip().splitlines()
        why = lines[0] if lines else str(e)
        raise GenerationGitError(
            f"Cannot check out {branch} ({why}); commit or stash the local changes git names "
            "and resume."
        ) from e


def merge_no_ff(git: Repository, base: str, branch: str, message: str, trailer: str) -> str:
    """Merge ``branch`` into ``base`` with ``--no-ff``; idempotent (an existing merge is
    found by its trailer). Leaves ``base`` checked out.

    Raises:
        GenerationGitError: the merge conflicts (it is aborted; the branch is intact).
    """
    checkout(git, base)
    if git.is_ancestor(branch, base):
        found = find_commit(git, trailer, rev=base, since=git.rev(branch))
        return found or git.rev(base)
    try:
        return git.merge(branch, message, verify=False)
    except GitFailed as e:
        git.abort_merge()
        lines = (e.stderr or "").strip().splitlines()
        why = lines[-1] if lines else str(e)
        raise GenerationGitError(
            f"Merging {branch} into {base} failed ({why}); the branch is intact: merge it by "
            f"hand with 'git checkout {base} && git merge --no-ff {branch}'."
        ) from e
