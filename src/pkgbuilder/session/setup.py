"""Starting or re-entering a session: paths confined to the workspace, the plan, the git
repository, the session branch and the state file.

Idempotent: a retry finds its own state file and branch; another session's state file is
never overwritten.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from pkgbuilder.errors import UserError
from pkgbuilder.models.session import PrepareSessionInput
from pkgbuilder.session import gitops
from pkgbuilder.session.errors import GenerationInputError, GitStateError
from pkgbuilder.session.plan import PackagePlan, PlanError, parse_plan
from pkgbuilder.session.resume import dirty_package_paths
from pkgbuilder.session.state import (
    GenerationContext,
    SessionStatus,
    read_state,
    state_path,
    write_state,
)
from pkgbuilder.vcs import GitFailed, NotARepository, Repository


def inside(root: Path, rel: str, what: str) -> Path:
    """``root / rel`` when ``rel`` is a relative path that stays inside ``root``.

    Raises:
        GenerationInputError: it is absolute, empty or climbs out with ``..``.
    """
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts or not rel.strip():
        raise GenerationInputError(f"{what} '{rel}' must be a path inside the workspace.")
    return root / rel


def open_git(root: Path) -> Repository:
    """The workspace's repository.

    Raises:
        GitStateError: the workspace is not a git repository.
    """
    git = Repository(root)
    try:
        git.toplevel()
    except (GitFailed, NotARepository) as e:
        raise GitStateError(
            f"Workspace {root} is not a git repository; run 'git init' there or pass "
            "the repository root."
        ) from e
    return git


def load_plan(root: Path, plan_path: str) -> PackagePlan:
    """Read and parse the package plan.

    Raises:
        PlanError: the file is missing, unreadable or malformed.
    """
    path = inside(root, plan_path, "Plan path")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(
            f"Plan file {plan_path} does not exist in {root}; write it first (see "
            "'Plan format' in docs/generation.md)."
        ) from None
    except OSError as e:
        raise PlanError(f"Plan file {plan_path} cannot be read: {e.strerror}.") from e
    try:
        return parse_plan(text, plan_path)
    except PlanError:
        raise
    except UserError as e:
        raise PlanError(str(e)) from e


def prepare_session(inp: PrepareSessionInput) -> GenerationContext:
    """Check the plan, create (or re-enter) the session branch, write the state file."""
    g = inp.generation
    root = Path(g.workspace_root)
    inside(root, g.package_path, "Package path")
    plan = load_plan(root, g.plan_path)
    if plan.package_name and plan.package_name.strip("`") != g.package_name:
        raise PlanError(
            f"Plan {g.plan_path} is for '{plan.package_name}', not '{g.package_name}'; "
            "pass the name the plan gives or fix its '# Package:' line."
        )
    git = open_git(root)
    spath = state_path(g.state_dir, g.session_id)
    ctx = g.resume_from_context
    if ctx is None and spath.is_file():
        ctx = _own_state(spath, inp.workflow_id, g.session_id)
    try:
        ctx = _reenter(git, inp, ctx) if ctx is not None else _begin(git, root, inp)
    except gitops.GenerationGitError as e:
        raise GitStateError(str(e)) from e
    write_state(spath, ctx)
    return ctx


def _own_state(spath: Path, workflow_id: str, session_id: str) -> GenerationContext:
    """The state file a retry of this step wrote (never another session's)."""
    try:
        existing = read_state(spath)
    except UserError as e:
        raise GitStateError(str(e)) from e
    if existing.workflow_id != workflow_id:
        raise GenerationInputError(
            f"Session {session_id} already exists (state file {spath}); start a "
            "new session or resume that one."
        )
    return existing


def _reenter(
    git: Repository, inp: PrepareSessionInput, ctx: GenerationContext
) -> GenerationContext:
    if not git.branch_exists(ctx.branch):
        raise GitStateError(
            f"Branch {ctx.branch} of session {ctx.session_id} does not exist; "
            "restore it or start a new session."
        )
    gitops.checkout(git, ctx.branch)
    return ctx.model_copy(
        update={
            "workflow_id": inp.workflow_id,
            "status": SessionStatus.RUNNING,
            "updated_at": datetime.now(UTC),
            "phases": inp.phases,
        }
    )


def _begin(git: Repository, root: Path, inp: PrepareSessionInput) -> GenerationContext:
    g = inp.generation
    prefix = gitops.toplevel_prefix(git, root, g.package_path)
    dirty = dirty_package_paths(git, prefix, state_exclude(git, Path(g.state_dir)))
    if dirty:
        raise GitStateError(
            f"The package directory {g.package_path} has uncommitted changes "
            f"({', '.join(dirty[:5])}); commit or remove them first."
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
    return GenerationContext(
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


def state_exclude(git: Repository, directory: Path) -> list[str]:
    """The state directory relative to the repository, when it lies inside it (its files
    are not the package's uncommitted changes)."""
    try:
        return [directory.resolve().relative_to(git.toplevel()).as_posix()]
    except ValueError:
        return []
