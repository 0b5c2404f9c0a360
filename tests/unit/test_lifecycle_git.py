"""The generation lifecycle on real throwaway git repositories (no Temporal)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pkgbuilder import lifecycle
from pkgbuilder.errors import UserError
from pkgbuilder.lifecycle import naming, store
from pkgbuilder.lifecycle.common import open_repo
from pkgbuilder.models.lifecycle import GenerationStatus, TaskRecord, TaskStatus
from tests.conftest import git
from tests.support.lifecycle import (
    branches,
    commit_file,
    head_branch,
    rev,
    status,
    tags,
    worktree_paths,
    write_monorepo,
)

T0 = datetime(2026, 2, 8, 9, 30, 45, tzinfo=UTC)
T1 = datetime(2026, 2, 8, 10, 0, 0, tzinfo=UTC)
ALPHA = ("@acme/alpha", "packages/core/alpha")


@pytest.fixture
def repo(tmp_path: Path, make_git_repo) -> Path:
    return make_git_repo(write_monorepo(tmp_path / "template"))


def test_start_is_one_commit_ahead_of_its_start_tag(repo: Path, pkgbuilder_home: Path) -> None:
    base_before = rev(repo, "main")
    record = lifecycle.start(repo, pkgbuilder_home, regenerate=[ALPHA], now=T0)

    name = "generation-2026-02-08-09-30-45"
    assert record.name == name
    assert head_branch(repo) == name
    assert git(repo, "rev-list", "--count", f"{name}-start..{name}").strip() == "1"
    assert rev(repo, f"{name}-start") == base_before == record.start_commit
    assert rev(repo, "main") == base_before  # the base is untouched
    assert not (repo / "packages/core/alpha").exists()
    assert (repo / "packages/utility/beta/src/index.js").exists()
    assert status(repo) == ""
    changed = git(repo, "diff", "--name-only", f"{name}-start", name).split()
    assert changed == ["packages/core/alpha/package.json", "packages/core/alpha/src/index.js"]
    saved = store.load(pkgbuilder_home, name)
    assert saved is not None and saved.regenerate == ["@acme/alpha"]
    assert saved.setup_commit == rev(repo, name)


def test_start_without_regeneration_still_makes_exactly_one_commit(
    repo: Path, pkgbuilder_home: Path
) -> None:
    record = lifecycle.start(repo, pkgbuilder_home, now=T0)
    assert git(repo, "rev-list", "--count", f"{record.name}-start..{record.name}").strip() == "1"


def test_start_removes_ignored_leftovers_of_regenerated_packages(
    repo: Path, pkgbuilder_home: Path
) -> None:
    (repo / ".gitignore").write_text("dist/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore dist")
    (repo / "packages/core/alpha/dist").mkdir()
    (repo / "packages/core/alpha/dist/index.js").write_text("built")
    lifecycle.start(repo, pkgbuilder_home, regenerate=[ALPHA], now=T0)
    assert not (repo / "packages/core/alpha").exists()


def test_same_second_starts_get_distinct_names(repo: Path, pkgbuilder_home: Path) -> None:
    first = lifecycle.start(repo, pkgbuilder_home, now=T0)
    git(repo, "switch", "-q", "main")
    second = lifecycle.start(repo, pkgbuilder_home, now=T0)
    assert first.name != second.name
    assert sorted(branches(repo, "generation-*")) == [first.name, second.name]


@pytest.mark.parametrize(
    ("prepare", "expected"),
    [
        (lambda r: git(r, "switch", "-q", "-c", "feature"), "You are on branch 'feature'"),
        (lambda r: git(r, "switch", "-q", "--detach"), "You are on a detached HEAD"),
        (lambda r: (r / "README.md").write_text("edited\n"), "1 uncommitted change(s)"),
        (lambda r: (r / "new.txt").write_text("x\n"), "(e.g. new.txt)"),
    ],
    ids=["wrong-branch", "detached", "modified", "untracked"],
)
def test_start_refuses_without_changing_anything(
    repo: Path, pkgbuilder_home: Path, prepare, expected: str
) -> None:
    prepare(repo)
    before = (branches(repo), tags(repo))
    with pytest.raises(UserError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        lifecycle.start(repo, pkgbuilder_home, regenerate=[ALPHA], now=T0)
    assert (branches(repo), tags(repo)) == before
    assert (repo / "packages/core/alpha/package.json").exists()


def test_start_refuses_unknown_base_and_paths_outside_the_repo(
    repo: Path, pkgbuilder_home: Path
) -> None:
    with pytest.raises(UserError, match="base branch 'trunk' does not exist"):
        lifecycle.start(repo, pkgbuilder_home, base="trunk")
    with pytest.raises(UserError, match="must be a directory inside"):
        lifecycle.start(repo, pkgbuilder_home, regenerate=[("x", "../elsewhere")])
    assert tags(repo) == []


def test_home_inside_the_repository_never_dirties_the_tree(repo: Path) -> None:
    home = repo / ".pkgbuilder"
    (home / "generations").mkdir(parents=True)
    record = lifecycle.start(repo, home, now=T0)
    wt = lifecycle.create_task_worktree(open_repo(repo), home, record.name, "@acme/alpha")
    assert Path(wt.worktree).is_relative_to(home)
    assert status(repo) == ""


def test_stop_merges_tags_and_cleans_up(repo: Path, pkgbuilder_home: Path) -> None:
    record = lifecycle.start(repo, pkgbuilder_home, regenerate=[ALPHA], now=T0)
    name = record.name
    g = open_repo(repo)
    wt = lifecycle.create_task_worktree(g, pkgbuilder_home, name, "@acme/alpha")
    commit_file(Path(wt.worktree), "packages/core/alpha/src/index.js", "new\n", "gen alpha")
    lifecycle.merge_task(g, pkgbuilder_home, name, "@acme/alpha", "packages/core/alpha")
    # A leftover task (e.g. a run interrupted before stop).
    lifecycle.create_task_worktree(g, pkgbuilder_home, name, "@acme/beta")
    gen_tip = rev(repo, name)

    stopped = lifecycle.stop(repo, pkgbuilder_home)

    assert head_branch(repo) == "main"
    assert branches(repo, "generation-*") == []
    assert branches(repo, "task/*") == []
    assert worktree_paths(repo) == [str(repo)]
    assert {f"{name}-start", f"{name}-finished", f"{name}-merged"} <= set(tags(repo))
    assert rev(repo, f"{name}-finished") == gen_tip
    merge = rev(repo, "main")
    assert rev(repo, f"{name}-merged") == merge
    parents = git(repo, "rev-list", "--parents", "-n", "1", merge).split()[1:]
    assert parents == [record.start_commit, gen_tip]  # --no-ff even though ff was possible
    assert (repo / "packages/core/alpha/src/index.js").read_text() == "new\n"
    assert stopped.status == GenerationStatus.MERGED
    assert not list((pkgbuilder_home / "worktrees").glob(f"{name}-*"))


def test_stop_commits_work_in_progress_first(repo: Path, pkgbuilder_home: Path) -> None:
    record = lifecycle.start(repo, pkgbuilder_home, now=T0)
    (repo / "notes.md").write_text("wip\n")
    lifecycle.stop(repo, pkgbuilder_home, record.name)
    assert (repo / "notes.md").read_text() == "wip\n"
    subjects = git(repo, "log", "--format=%s", f"{record.name}-finished", "-n", "1")
    assert subjects.strip() == f"wip: work in progress on {record.name}"


def test_stop_with_conflicts_changes_nothing(repo: Path, pkgbuilder_home: Path) -> None:
    record = lifecycle.start(repo, pkgbuilder_home, now=T0)
    commit_file(repo, "README.md", "generation\n", "gen readme")
    git(repo, "switch", "-q", "main")
    commit_file(repo, "README.md", "main\n", "main readme")
    git(repo, "switch", "-q", record.name)
    with pytest.raises(UserError, match=r"conflicts in 1 file\(s\) \(e\.g\. README\.md\)"):
        lifecycle.stop(repo, pkgbuilder_home)
    assert head_branch(repo) == record.name
    assert f"{record.name}-finished" not in tags(repo)
    assert status(repo) == ""


def test_reset_abandons_unmerged_generations_only(repo: Path, pkgbuilder_home: Path) -> None:
    merged = lifecycle.start(repo, pkgbuilder_home, now=T0)
    lifecycle.stop(repo, pkgbuilder_home)
    active = lifecycle.start(repo, pkgbuilder_home, regenerate=[ALPHA], now=T1)
    g = open_repo(repo)
    wt = lifecycle.create_task_worktree(g, pkgbuilder_home, active.name, "@acme/alpha")
    commit_file(Path(wt.worktree), "packages/core/alpha/a.js", "a\n", "partial")
    (repo / "wip.txt").write_text("unsaved\n")
    main_before = rev(repo, "main")

    abandoned = lifecycle.reset(repo, pkgbuilder_home)

    assert abandoned == [active.name]
    assert head_branch(repo) == "main"
    assert int(git(repo, "rev-list", "--count", f"{main_before}..main")) <= 1
    assert branches(repo, "generation-*") == [] and branches(repo, "task/*") == []
    assert worktree_paths(repo) == [str(repo)]
    all_tags = set(tags(repo))
    assert f"{active.name}-abandoned" in all_tags
    assert f"{active.name}-start" not in all_tags
    assert {f"{merged.name}-start", f"{merged.name}-merged"} <= all_tags
    # The abandoned work is still retrievable from its tag, WIP included.
    files = git(repo, "ls-tree", "-r", "--name-only", f"{active.name}-abandoned").split()
    assert "wip.txt" in files
    message = git(repo, "tag", "-l", "--format=%(contents)", f"{active.name}-abandoned")
    assert active.start_commit in message
    saved = store.load(pkgbuilder_home, active.name)
    assert saved is not None and saved.status == GenerationStatus.ABANDONED


def test_reset_abandons_an_orphaned_start_tag(repo: Path, pkgbuilder_home: Path) -> None:
    record = lifecycle.start(repo, pkgbuilder_home, now=T0)
    git(repo, "switch", "-q", "main")
    git(repo, "branch", "-q", "-D", record.name)
    assert [s.status for s in lifecycle.list_generations(repo, pkgbuilder_home)] == [
        GenerationStatus.ORPHANED
    ]
    lifecycle.reset(repo, pkgbuilder_home)
    assert tags(repo) == [f"{record.name}-abandoned"]
    assert rev(repo, f"{record.name}-abandoned") == record.start_commit


def test_list_shows_active_and_merged_and_all_adds_abandoned(
    repo: Path, pkgbuilder_home: Path
) -> None:
    first = lifecycle.start(repo, pkgbuilder_home, now=T0)
    lifecycle.stop(repo, pkgbuilder_home)
    second = lifecycle.start(repo, pkgbuilder_home, now=T1)
    git(repo, "switch", "-q", "main")
    lifecycle.reset(repo, pkgbuilder_home)
    third = lifecycle.start(repo, pkgbuilder_home, now=datetime(2026, 3, 1, tzinfo=UTC))

    shown = {s.name: s for s in lifecycle.list_generations(repo, pkgbuilder_home)}
    assert set(shown) == {first.name, third.name}
    assert shown[first.name].status == GenerationStatus.MERGED
    assert shown[third.name].status == GenerationStatus.ACTIVE
    assert shown[third.name].commits_ahead == 1 and shown[third.name].current
    everything = lifecycle.list_generations(repo, pkgbuilder_home, include_abandoned=True)
    assert [s.name for s in everything] == [first.name, second.name, third.name]
    assert everything[1].status == GenerationStatus.ABANDONED


def test_switch_commits_wip_and_changes_generation(repo: Path, pkgbuilder_home: Path) -> None:
    first = lifecycle.start(repo, pkgbuilder_home, now=T0)
    git(repo, "switch", "-q", "main")
    second = lifecycle.start(repo, pkgbuilder_home, now=T1)
    (repo / "draft.md").write_text("draft\n")

    wip = lifecycle.switch(repo, pkgbuilder_home, first.name)

    assert head_branch(repo) == first.name
    assert wip == rev(repo, second.name)
    assert not (repo / "draft.md").exists() and status(repo) == ""
    with pytest.raises(UserError, match="no active generation named 'generation-2030"):
        lifecycle.switch(repo, pkgbuilder_home, "generation-2030-01-01-00-00-00")
    with pytest.raises(UserError, match="is not a generation name"):
        lifecycle.switch(repo, pkgbuilder_home, "main")
    git(repo, "switch", "-q", "main")
    (repo / "README.md").write_text("dirty\n")
    with pytest.raises(UserError, match="on branch 'main' has 1 uncommitted change"):
        lifecycle.switch(repo, pkgbuilder_home, second.name)
    assert head_branch(repo) == "main"


def test_ambiguous_and_missing_generations_ask_clearly(repo: Path, pkgbuilder_home: Path) -> None:
    with pytest.raises(UserError, match="No generation is active"):
        lifecycle.stop(repo, pkgbuilder_home)
    first = lifecycle.start(repo, pkgbuilder_home, now=T0)
    git(repo, "switch", "-q", "main")
    lifecycle.start(repo, pkgbuilder_home, now=T1)
    git(repo, "switch", "-q", "main")
    with pytest.raises(UserError, match=r"2 generations are active \(.*\); choose one with"):
        lifecycle.stop(repo, pkgbuilder_home)
    # The checked-out generation disambiguates.
    git(repo, "switch", "-q", first.name)
    assert lifecycle.stop(repo, pkgbuilder_home).name == first.name
    with pytest.raises(UserError, match="already stopped and merged"):
        lifecycle.stop(repo, pkgbuilder_home, first.name)


def test_resume_prep_resets_stuck_tasks_and_prunes(repo: Path, pkgbuilder_home: Path) -> None:
    record = lifecycle.start(repo, pkgbuilder_home, regenerate=[ALPHA], now=T0)
    name = record.name
    g = open_repo(repo)
    wt = lifecycle.create_task_worktree(g, pkgbuilder_home, name, "@acme/alpha")
    commit_file(Path(wt.worktree), "packages/core/alpha/half.js", "x\n", "half done")
    store.upsert_task(
        pkgbuilder_home,
        name,
        TaskRecord(
            package="@acme/alpha",
            slug="acme-alpha",
            path="packages/core/alpha",
            status=TaskStatus.IN_PROGRESS,
            attempts=1,
            worktree=wt.worktree,
        ),
    )
    store.upsert_task(
        pkgbuilder_home,
        name,
        TaskRecord(package="@acme/beta", slug="acme-beta", path="packages/utility/beta"),
    )
    # A stale worktree: its directory vanished (e.g. the machine's tmp was wiped)...
    stale = lifecycle.create_task_worktree(g, pkgbuilder_home, name, "@acme/beta")
    shutil.rmtree(stale.worktree)
    # ...and an orphaned directory git never registered.
    (pkgbuilder_home / "worktrees" / f"{name}-ghost").mkdir()
    git(repo, "switch", "-q", "main")

    prep = lifecycle.resume_prep(repo, pkgbuilder_home)

    assert head_branch(repo) == name
    assert prep.reset_tasks == ["@acme/alpha"]
    assert sorted(prep.pending_tasks) == ["@acme/alpha", "@acme/beta"]
    assert worktree_paths(repo) == [str(repo)]
    assert naming.task_branch(name, "@acme/alpha") not in branches(repo, "task/*")
    assert not (pkgbuilder_home / "worktrees" / f"{name}-ghost").exists()
    saved = store.load(pkgbuilder_home, name)
    assert saved is not None
    assert saved.tasks["@acme/alpha"].status == TaskStatus.PENDING


def test_log_lines_carry_timestamp_and_generation() -> None:
    line = naming.log_line("generation-2026-02-08-09-30-45", "merged", T0)
    assert line == "[2026-02-08T09:30:45Z] [generation-2026-02-08-09-30-45] merged"
    assert naming.log_line(None, "idle", T0) == "[2026-02-08T09:30:45Z] idle"
