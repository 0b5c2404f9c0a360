"""Task branches, worktrees and merges into the generation branch (real git, no Temporal)."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pkgbuilder import lifecycle
from pkgbuilder.lifecycle.common import open_repo
from pkgbuilder.models.common import name_slug
from pkgbuilder.vcs import Repository
from tests.conftest import git
from tests.support.lifecycle import (
    branches,
    commit_file,
    rev,
    status,
    worktree_paths,
    write_monorepo,
)

T0 = datetime(2026, 2, 8, 9, 30, 45, tzinfo=UTC)
PACKAGES = {"@acme/alpha": "packages/core/alpha", "@acme/beta": "packages/utility/beta"}


@pytest.fixture
def generation(tmp_path: Path, make_git_repo, pkgbuilder_home: Path) -> tuple[Path, str]:
    repo = make_git_repo(write_monorepo(tmp_path / "template"))
    record = lifecycle.start(repo, pkgbuilder_home, regenerate=list(PACKAGES.items()), now=T0)
    return repo, record.name


def test_task_worktree_is_created_once_and_reused(
    generation: tuple[Path, str], pkgbuilder_home: Path
) -> None:
    repo, name = generation
    g = open_repo(repo)
    first = lifecycle.create_task_worktree(g, pkgbuilder_home, name, "@acme/alpha")
    again = lifecycle.create_task_worktree(g, pkgbuilder_home, name, "@acme/alpha")
    assert first.created and not again.created
    slug = name_slug("@acme/alpha")
    assert slug.startswith("acme-alpha-")
    assert first.branch == f"task/{name}-{slug}" == again.branch
    assert Path(first.worktree) == pkgbuilder_home.resolve() / "worktrees" / f"{name}-{slug}"
    assert Repository(first.worktree).current_branch() == first.branch
    assert first.head == rev(repo, name)


def test_task_worktree_is_recreated_when_its_directory_vanished(
    generation: tuple[Path, str], pkgbuilder_home: Path
) -> None:
    repo, name = generation
    g = open_repo(repo)
    wt = lifecycle.create_task_worktree(g, pkgbuilder_home, name, "@acme/alpha")
    head = commit_file(Path(wt.worktree), "packages/core/alpha/a.js", "a\n", "work")
    shutil.rmtree(wt.worktree)
    again = lifecycle.create_task_worktree(g, pkgbuilder_home, name, "@acme/alpha")
    assert again.created and again.head == head  # the branch and its commits survive
    assert (Path(again.worktree) / "packages/core/alpha/a.js").exists()


def test_merge_brings_the_task_in_and_removes_it(
    generation: tuple[Path, str], pkgbuilder_home: Path
) -> None:
    repo, name = generation
    g = open_repo(repo)
    wt = lifecycle.create_task_worktree(g, pkgbuilder_home, name, "@acme/alpha")
    task_tip = commit_file(Path(wt.worktree), "packages/core/alpha/index.js", "1\n", "alpha")
    gen_before = rev(repo, name)

    result = lifecycle.merge_task(g, pkgbuilder_home, name, "@acme/alpha", "packages/core/alpha")

    assert rev(repo, name) == result.merge_commit
    parents = git(repo, "rev-list", "--parents", "-n", "1", result.merge_commit).split()[1:]
    assert parents == [gen_before, task_tip]
    assert result.files == ["packages/core/alpha/index.js"]
    assert branches(repo, "task/*") == [] and worktree_paths(repo) == [str(repo)]
    # The main worktree has the generation branch checked out: it moved along, clean.
    assert (repo / "packages/core/alpha/index.js").read_text() == "1\n"
    assert status(repo) == ""
    again = lifecycle.merge_task(g, pkgbuilder_home, name, "@acme/alpha", "packages/core/alpha")
    assert again.already_merged and again.merge_commit == result.merge_commit


def test_merge_keeps_unrelated_local_edits_of_the_checkout(
    generation: tuple[Path, str], pkgbuilder_home: Path
) -> None:
    repo, name = generation
    g = open_repo(repo)
    wt = lifecycle.create_task_worktree(g, pkgbuilder_home, name, "@acme/alpha")
    commit_file(Path(wt.worktree), "packages/core/alpha/index.js", "1\n", "alpha")
    (repo / "README.md").write_text("user edit\n")
    lifecycle.merge_task(g, pkgbuilder_home, name, "@acme/alpha", "packages/core/alpha")
    assert (repo / "README.md").read_text() == "user edit\n"
    assert status(repo).strip() == "M README.md"


def test_merge_rejects_files_outside_the_package_and_empty_tasks(
    generation: tuple[Path, str], pkgbuilder_home: Path
) -> None:
    repo, name = generation
    g = open_repo(repo)
    wt = lifecycle.create_task_worktree(g, pkgbuilder_home, name, "@acme/alpha")
    with pytest.raises(lifecycle.TaskRejected, match="committed no changes"):
        lifecycle.merge_task(g, pkgbuilder_home, name, "@acme/alpha", "packages/core/alpha")
    commit_file(Path(wt.worktree), "packages/core/alpha/index.js", "1\n", "alpha")
    commit_file(Path(wt.worktree), "packages/utility/beta/x.js", "2\n", "trespass")
    before = rev(repo, name)
    with pytest.raises(lifecycle.TaskRejected, match=r"1 file\(s\) outside packages/core/alpha"):
        lifecycle.merge_task(g, pkgbuilder_home, name, "@acme/alpha", "packages/core/alpha")
    assert rev(repo, name) == before


def test_parallel_tasks_merge_and_each_touches_only_its_package(
    generation: tuple[Path, str], pkgbuilder_home: Path
) -> None:
    repo, name = generation
    g = open_repo(repo)
    # Both worktrees exist at once; both commit, then both merge concurrently.
    wts = {p: lifecycle.create_task_worktree(g, pkgbuilder_home, name, p) for p in PACKAGES}
    for package, path in PACKAGES.items():
        commit_file(Path(wts[package].worktree), f"{path}/index.js", package, f"gen {package}")

    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(
                lambda item: lifecycle.merge_task(
                    open_repo(repo), pkgbuilder_home, name, item[0], item[1]
                ),
                PACKAGES.items(),
            )
        )

    merges = git(repo, "rev-list", "--merges", f"{name}-start..{name}").split()
    assert sorted(merges) == sorted(r.merge_commit for r in results)
    for (package, path), result in zip(PACKAGES.items(), results, strict=True):
        touched = git(
            repo, "diff", "--name-only", f"{result.merge_commit}^1", result.merge_commit
        ).split()
        assert touched == [f"{path}/index.js"], package
    assert status(repo) == ""
    assert worktree_paths(repo) == [str(repo)]


def test_remove_task_is_idempotent(generation: tuple[Path, str], pkgbuilder_home: Path) -> None:
    repo, name = generation
    g = open_repo(repo)
    lifecycle.create_task_worktree(g, pkgbuilder_home, name, "@acme/beta")
    assert lifecycle.remove_task(g, pkgbuilder_home, name, "@acme/beta") is True
    assert lifecycle.remove_task(g, pkgbuilder_home, name, "@acme/beta") is False
    assert branches(repo, "task/*") == [] and worktree_paths(repo) == [str(repo)]
