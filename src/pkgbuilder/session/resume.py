"""The operator guide's recovery checklist, checked before a session is resumed.

Each problem is one sentence that names the thing and the fix. The state file's validity is
checked by :func:`pkgbuilder.session.state.read_state` before this runs; whether the
original workflow still runs is asked of Temporal by the caller and passed in.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from pkgbuilder.session.gitops import toplevel_prefix
from pkgbuilder.session.state import GenerationContext, SessionStatus
from pkgbuilder.vcs import GitFailed, NotARepository, Repository


def _within(path: str, prefix: str) -> bool:
    prefix = prefix.strip("/")
    return not prefix or prefix == "." or path == prefix or path.startswith(prefix + "/")


def dirty_package_paths(
    git: Repository, package_path: str, exclude: list[str] | None = None
) -> list[str]:
    """Uncommitted paths inside the package directory (pkgbuilder only commits there)."""
    return [p for p in git.dirty_paths(exclude=exclude) if _within(p, package_path)]


def unmerged_paths(git: Repository) -> list[str]:
    return git.unmerged_paths()


def resume_problems(
    context: GenerationContext,
    workflow_running: bool,
    state_dir: Path | None = None,
) -> list[str]:
    """Everything that stops ``context`` from being resumed safely (empty: go ahead)."""
    session = context.session_id
    problems: list[str] = []
    if context.status is SessionStatus.COMPLETED:
        return [f"Session {session} already completed; there is nothing to resume."]
    if workflow_running:
        problems.append(
            f"Workflow {context.workflow_id} of session {session} is still running; wait for it "
            f"('pkgbuilder dashboard {session}') or stop it with 'temporal workflow terminate "
            f"--workflow-id {context.workflow_id}' before resuming."
        )
    root = Path(context.workspace_root)
    if not root.is_dir():
        return [
            *problems,
            f"Workspace {root} of session {session} does not exist; resume on the machine "
            "and checkout that ran it.",
        ]
    git = Repository(root)
    try:
        git.toplevel()
    except (GitFailed, NotARepository):
        return [
            *problems,
            f"Workspace {root} is not a git repository; resume from the "
            "repository the session ran in.",
        ]
    exclude = []
    if state_dir is not None:
        with contextlib.suppress(ValueError):
            exclude.append(str(state_dir.resolve().relative_to(git.toplevel())))
    conflicts = unmerged_paths(git)
    if conflicts:
        problems.append(
            f"The working tree has unresolved conflicts ({', '.join(conflicts[:5])}); resolve "
            "and commit them (operator guide procedure 3) before resuming."
        )
    dirty = dirty_package_paths(git, toplevel_prefix(git, root, context.package_path), exclude)
    if dirty:
        shown = ", ".join(dirty[:5]) + (" …" if len(dirty) > 5 else "")
        problems.append(
            f"The package directory {context.package_path} has uncommitted changes ({shown}); "
            f"commit them on {context.branch} or discard them with "
            f"'git checkout -- {context.package_path} && git clean -fd -- "
            f"{context.package_path}' before resuming."
        )
    if not git.branch_exists(context.branch):
        problems.append(
            f"Branch {context.branch} of session {session} does not exist; restore it (e.g. "
            f"'git branch {context.branch} <commit>') or start a new session."
        )
        return problems
    last = context.last_successful_commit or context.base_commit
    if last:
        if not git.is_commit(last):
            problems.append(
                f"The last successful commit {last[:12]} of session {session} does not exist "
                "in this repository; fetch it or set lastSuccessfulCommit in the state file "
                "to the last phase commit on the branch (operator guide procedure 3)."
            )
        elif not git.is_ancestor(last, context.branch):
            problems.append(
                f"The last successful commit {last[:12]} is not on branch {context.branch}; "
                f"check out the right branch history or set lastSuccessfulCommit to "
                f"'git rev-parse {context.branch}' if that commit is the phase's."
            )
    return problems
