"""Generation activities and git operations on real repositories: exact commits, idempotent
re-runs (at-least-once activities), hostile answers, merges and the resume checklist."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from pkgbuilder.activities.session import (
    apply_generation_phase,
    merge_generation_branch,
    prepare_generation_session,
)
from pkgbuilder.config import BuildSettings
from pkgbuilder.llm.store import write_response
from pkgbuilder.models.common import Category
from pkgbuilder.models.llm import FileOperation, ModelResponse, StoredResponse
from pkgbuilder.models.session import (
    ApplyPhaseInput,
    GenerationContext,
    MergeInput,
    PrepareSessionInput,
    TurnBasedGenerationInput,
)
from pkgbuilder.session import gitops
from pkgbuilder.session.phases.config import TurnBasedGenerationConfig, schedule
from pkgbuilder.session.phases.definitions import GenerationPhase
from pkgbuilder.session.resume import resume_problems
from pkgbuilder.session.state import SessionStatus, read_state, state_path
from pkgbuilder.vcs import Repository, find_commit
from tests.support.generation_env import git, make_workspace, new_session_id
from tests.support.generation_script import PACKAGE_NAME, PACKAGE_PATH, PLAN_PATH, write_workspace

P = GenerationPhase


def _answer(tmp: Path, files: dict[str, str | None], name: str = "r") -> str:
    ops = [
        FileOperation(path=p, operation="delete" if c is None else "create", content=c)
        for p, c in files.items()
    ]
    path = tmp / f"{name}.json"
    write_response(
        path,
        StoredResponse(
            request_sha256="ab" * 32, model="m", response=ModelResponse(files=ops, summary="did it")
        ),
    )
    return str(path)


@pytest.fixture
def session(tmp_path: Path) -> tuple[Path, GenerationContext]:
    repo = make_workspace(tmp_path / "repo")
    sid = new_session_id()
    inp = TurnBasedGenerationInput(
        session_id=sid,
        package_name=PACKAGE_NAME,
        package_path=PACKAGE_PATH,
        plan_path=PLAN_PATH,
        category=Category.CORE,
        workspace_root=str(repo),
        state_dir=str(repo / ".generation-state"),
        config=BuildSettings(),
    )
    prep = PrepareSessionInput(
        generation=inp,
        workflow_id=f"turn-based-{sid}",
        phases=schedule(TurnBasedGenerationConfig(), Category.CORE),
    )
    ctx = prepare_generation_session(prep)
    again = prepare_generation_session(prep)  # a retried activity re-enters its own session
    assert (again.branch, again.base_commit, again.created_at) == (
        ctx.branch,
        ctx.base_commit,
        ctx.created_at,
    )
    return repo, ctx


def _apply(
    ctx: GenerationContext, phase: P, step: int, response: str | None, **kw: object
) -> object:
    return apply_generation_phase(
        ApplyPhaseInput(
            workspace_root=ctx.workspace_root,
            package_path=ctx.package_path,
            package_name=ctx.package_name,
            branch=ctx.branch,
            base_commit=ctx.base_commit,
            phase=phase,
            step_number=step,
            response_path=response,
            **kw,
        )
    )


def test_prepare_creates_the_branch_and_the_state_file(
    session: tuple[Path, GenerationContext],
) -> None:
    repo, ctx = session
    assert ctx.branch == gitops.branch_name(ctx.session_id)
    assert ctx.branch == "feat/package-generation-" + ctx.session_id.removeprefix("gen-")
    assert Repository(repo).current_branch() == ctx.branch
    assert ctx.base_branch == "main" and ctx.base_commit == git(repo, "rev-parse", "main").strip()
    saved = read_state(state_path(repo / ".generation-state", ctx.session_id))
    assert saved.status is SessionStatus.RUNNING and len(saved.phases) == 15


def test_apply_commits_exactly_the_phase_files_once(
    session: tuple[Path, GenerationContext], tmp_path: Path
) -> None:
    repo, ctx = session
    # Another build's work in progress: one staged, one not; neither may be committed.
    (repo / "other.txt").write_text("staged elsewhere\n")
    git(repo, "add", "other.txt")
    (repo / "notes.txt").write_text("untracked\n")
    answer = _answer(tmp_path, {"docs/architecture.md": "# arch\n", "docs/*weird*.md": "x\n"})
    first = _apply(ctx, P.PLANNING, 1, answer, plan_path=PLAN_PATH)
    again = _apply(ctx, P.PLANNING, 1, answer, plan_path=PLAN_PATH)  # at-least-once delivery
    assert first.files == ["docs/*weird*.md", "docs/architecture.md"]  # type: ignore[attr-defined]
    assert again.commit == first.commit and again.already_applied  # type: ignore[attr-defined]
    log = git(repo, "log", "--format=%H", f"{ctx.base_commit}..{ctx.branch}").split()
    assert log == [first.commit]  # type: ignore[attr-defined]
    assert git(repo, "log", "-1", "--format=%B", ctx.branch).strip() == (
        f"feat(planning): complete PLANNING phase for {PACKAGE_NAME}\n\n"
        "Files modified: docs/*weird*.md, docs/architecture.md\n\n"
        "[Turn-based generation step 1]"
    )
    touched = git(repo, "show", "--name-only", "--format=", ctx.branch).split()
    assert touched == [f"{PACKAGE_PATH}/docs/*weird*.md", f"{PACKAGE_PATH}/docs/architecture.md"]
    status = git(repo, "status", "--porcelain")
    assert "A  other.txt" in status and "?? notes.txt" in status


def test_a_crash_between_writing_and_committing_still_commits(
    session: tuple[Path, GenerationContext], tmp_path: Path
) -> None:
    repo, ctx = session
    answer = _answer(tmp_path, {"package.json": '{"name": "@acme/data-validator"}\n'})
    pkg = repo / PACKAGE_PATH
    pkg.mkdir(parents=True)
    (pkg / "package.json").write_text('{"name": "@acme/data-validator"}\n')  # written, no commit
    result = _apply(ctx, P.FOUNDATION, 2, answer, plan_path=PLAN_PATH)
    assert result.files == ["package.json"] and not result.already_applied  # type: ignore[attr-defined]
    assert git(repo, "status", "--porcelain", "--", PACKAGE_PATH) == ""


def test_hostile_or_incomplete_answers_write_nothing(
    session: tuple[Path, GenerationContext], tmp_path: Path
) -> None:
    repo, ctx = session
    head = git(repo, "rev-parse", "HEAD")
    hostile = _answer(tmp_path, {"docs/architecture.md": "# ok\n", "../../escape.txt": "x"}, "h")
    with pytest.raises(ApplicationError) as e:
        _apply(ctx, P.PLANNING, 1, hostile, plan_path=PLAN_PATH)
    assert e.value.type == "UnsafeFileOperation" and e.value.non_retryable
    missing = _answer(tmp_path, {"README.md": "# hi\n"}, "m")
    with pytest.raises(ApplicationError) as e2:
        _apply(ctx, P.PLANNING, 1, missing, plan_path=PLAN_PATH)
    assert e2.value.type == "PhaseOutputMissing"
    assert "did not produce docs/architecture.md" in e2.value.message
    core = _answer(tmp_path, {"src/validator.js": "export {}\n"}, "c")
    with pytest.raises(ApplicationError, match=r"src/schema-parser\.js"):
        _apply(ctx, P.CORE_IMPLEMENTATION, 4, core, plan_path=PLAN_PATH)
    assert git(repo, "rev-parse", "HEAD") == head
    assert not (repo / PACKAGE_PATH).exists() and not (tmp_path / "escape.txt").exists()


def test_fix_commits_are_keyed_by_their_request(
    session: tuple[Path, GenerationContext], tmp_path: Path
) -> None:
    repo, ctx = session
    a1 = _answer(tmp_path, {"src/a.js": "1\n"}, "a1")
    a2 = _answer(tmp_path, {"src/a.js": "2\n"}, "a2")
    one = _apply(
        ctx, P.BUILD_VALIDATION, 13, a1, fix_attempt=1, fix_types=["test"], request_sha256="1" * 64
    )
    # A resumed session's attempt 1 has another request: it is applied, not mistaken for done.
    two = _apply(
        ctx, P.BUILD_VALIDATION, 13, a2, fix_attempt=1, fix_types=["test"], request_sha256="2" * 64
    )
    assert one.commit != two.commit and not two.already_applied  # type: ignore[attr-defined]
    msg = git(repo, "log", "-1", "--format=%B", ctx.branch).strip()
    assert msg.startswith(
        f"fix({PACKAGE_NAME}): BUILD_VALIDATION attempt 1 for test\n\nFiles modified: src/a.js\n\n"
    )
    phase = _apply(ctx, P.BUILD_VALIDATION, 13, None, extra_files=["src/a.js"])
    assert git(repo, "show", "--name-only", "--format=", phase.commit).strip() == ""  # type: ignore[attr-defined]


def test_find_commit_only_looks_at_the_session_branch(
    session: tuple[Path, GenerationContext], tmp_path: Path
) -> None:
    repo, ctx = session
    g = Repository(repo)
    # A commit with the same subject and trailer before the branch point (an older,
    # merged session) must not count as this session's step.
    subject = gitops.phase_subject(P.TYPES, PACKAGE_NAME)
    root_commit = git(repo, "rev-list", "--max-parents=0", "HEAD").strip()
    assert find_commit(g, "workspace", rev="main", since=root_commit) is None
    assert (
        find_commit(g, subject, gitops.step_trailer(3), rev=ctx.branch, since=ctx.base_commit)
        is None
    )


def test_merge_is_no_ff_and_idempotent(
    session: tuple[Path, GenerationContext], tmp_path: Path
) -> None:
    repo, ctx = session
    _apply(
        ctx,
        P.PLANNING,
        1,
        _answer(tmp_path, {"docs/architecture.md": "# a\n"}),
        plan_path=PLAN_PATH,
    )
    inp = MergeInput(
        workspace_root=str(repo),
        package_name=PACKAGE_NAME,
        package_path=PACKAGE_PATH,
        branch=ctx.branch,
        base_branch="main",
        base_commit=ctx.base_commit,
        step_number=15,
    )
    first = merge_generation_branch(inp)
    again = merge_generation_branch(inp)
    assert again.merge_commit == first.merge_commit and again.already_merged
    assert first.files == ["docs/architecture.md"]
    assert len(git(repo, "rev-list", "--parents", "-n", "1", "main").split()) == 3
    msg = git(repo, "log", "-1", "--format=%B", "main").strip()
    assert msg == (
        f"feat(merge): complete MERGE phase for {PACKAGE_NAME}\n\n"
        "Files modified: docs/architecture.md\n\n[Turn-based generation step 15]"
    )
    assert Repository(repo).current_branch() == "main"


def test_resume_checklist(session: tuple[Path, GenerationContext], tmp_path: Path) -> None:
    repo, ctx = session
    res = _apply(
        ctx,
        P.PLANNING,
        1,
        _answer(tmp_path, {"docs/architecture.md": "# a\n"}),
        plan_path=PLAN_PATH,
    )
    failed = ctx.model_copy(
        update={"status": SessionStatus.FAILED, "last_successful_commit": res.commit}
    )  # type: ignore[attr-defined]
    state = repo / ".generation-state"
    assert resume_problems(failed, workflow_running=False, state_dir=state) == []
    running = resume_problems(failed, workflow_running=True, state_dir=state)
    assert len(running) == 1 and f"Workflow {ctx.workflow_id}" in running[0]
    (repo / PACKAGE_PATH / "docs" / "architecture.md").write_text("edited\n")
    dirty = resume_problems(failed, workflow_running=False, state_dir=state)
    assert len(dirty) == 1 and "uncommitted changes" in dirty[0] and "git checkout --" in dirty[0]
    git(repo, "checkout", "--", PACKAGE_PATH)
    git(repo, "checkout", "-q", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "elsewhere")
    off_branch = failed.model_copy(
        update={"last_successful_commit": git(repo, "rev-parse", "main").strip()}
    )
    assert "is not on branch" in resume_problems(off_branch, False, state)[0]
    gone = failed.model_copy(update={"branch": "feat/package-generation-1"})
    assert "does not exist; restore it" in resume_problems(gone, False, state)[0]
    done = failed.model_copy(update={"status": SessionStatus.COMPLETED})
    assert resume_problems(done, False, state) == [
        f"Session {ctx.session_id} already completed; there is nothing to resume."
    ]


def test_a_workspace_below_the_repository_top_level(tmp_path: Path) -> None:
    top = tmp_path / "top"
    (top / "ws").mkdir(parents=True)
    write_workspace(top / "ws")
    git(top, "init", "-q", "-b", "main")
    git(top, "add", "--", ".")
    git(top, "commit", "-q", "-m", "repo with a workspace below the top level")
    ws = top / "ws"
    sid = new_session_id()
    inp = TurnBasedGenerationInput(
        session_id=sid,
        package_name=PACKAGE_NAME,
        package_path=PACKAGE_PATH,
        plan_path=PLAN_PATH,
        category=Category.CORE,
        workspace_root=str(ws),
        state_dir=str(ws / ".generation-state"),
        config=BuildSettings(),
    )
    ctx = prepare_generation_session(
        PrepareSessionInput(
            generation=inp,
            workflow_id=f"turn-based-{sid}",
            phases=schedule(TurnBasedGenerationConfig(), Category.CORE),
        )
    )
    answer = _answer(tmp_path, {"docs/architecture.md": "# a\n", "docs/gone.md": None})
    result = _apply(ctx, P.PLANNING, 1, answer, plan_path=PLAN_PATH)
    assert result.files == ["docs/architecture.md"]  # type: ignore[attr-defined]
    touched = git(top, "show", "--name-only", "--format=", ctx.branch).split()
    assert touched == [f"ws/{PACKAGE_PATH}/docs/architecture.md"]
    assert "Files modified: docs/architecture.md\n" in git(
        top, "log", "-1", "--format=%B", ctx.branch
    )
