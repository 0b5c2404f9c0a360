"""The git layer (pkgbuilder.vcs) on real temporary repositories."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pkgbuilder import vcs
from pkgbuilder.vcs import GitBusy, GitFailed, NotARepository, Repository
from pkgbuilder.vcs.merging import commit_tree, find_merge, merge_tree, swap_ref
from pkgbuilder.vcs.porcelain import porcelain_paths
from tests.conftest import git


@pytest.fixture
def repo(make_git_repo) -> Path:  # type: ignore[no-untyped-def]
    root = make_git_repo()
    (root / "a.txt").write_text("a\n")
    (root / "b.txt").write_text("b\n")
    git(root, "add", "a.txt", "b.txt")
    git(root, "commit", "-q", "-m", "two files")
    return root


def _files_of(root: Path, rev: str) -> list[str]:
    return git(root, "show", "--name-only", "--format=", rev).split()


def test_inherited_git_dir_pointing_elsewhere_is_ignored(
    repo: Path,
    make_git_repo,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    other = make_git_repo(name="other")
    other_head = git(other, "rev-parse", "HEAD").strip()
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    (repo / "a.txt").write_text("changed\n")
    r = Repository(repo)
    assert r.toplevel() == repo.resolve()
    assert r.status_paths() == ["a.txt"]
    outcome = vcs.commit_only(r, ["a.txt"], "fix: a", "Pkgbuilder-Request: 1")
    assert outcome.commit == r.head_commit()
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_WORK_TREE")
    monkeypatch.delenv("GIT_INDEX_FILE")
    assert git(repo, "rev-parse", "HEAD").strip() == outcome.commit
    assert git(other, "rev-parse", "HEAD").strip() == other_head  # untouched


def test_secrets_never_reach_git_or_its_hooks(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump = tmp_path / "hook-env.txt"
    hook = repo / ".git" / "hooks" / "post-commit"  # runs even with --no-verify
    hook.write_text(f"#!/bin/sh\nenv > '{dump}'\n")
    hook.chmod(0o755)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret-1")
    monkeypatch.setenv("NPM_TOKEN", "npm-secret-2")
    monkeypatch.setenv("ACME_DEPLOY_PASSWORD", "secret-3")
    monkeypatch.setenv("HARMLESS_SETTING", "kept")
    (repo / "b.txt").write_text("changed\n")
    vcs.commit_only(Repository(repo), ["b.txt"], "fix: b", "Pkgbuilder-Request: 2")
    env = dict(line.split("=", 1) for line in dump.read_text().splitlines() if "=" in line)
    text = dump.read_text()
    for secret in ("sk-ant-secret-1", "npm-secret-2", "secret-3"):
        assert secret not in text
    assert "ANTHROPIC_API_KEY" not in env and "NPM_TOKEN" not in env
    assert env["HARMLESS_SETTING"] == "kept"
    assert env["GIT_TERMINAL_PROMPT"] == "0"


def test_commit_only_leaves_other_dirty_files_alone(repo: Path) -> None:
    (repo / "a.txt").write_text("mine\n")
    (repo / "b.txt").write_text("another build's edit\n")
    (repo / "c.txt").write_text("staged by someone else\n")
    git(repo, "add", "c.txt")
    (repo / "new.txt").write_text("untracked, mine\n")
    outcome = vcs.commit_only(
        Repository(repo), ["a.txt", "new.txt", "b.txt-not-a-file"], "fix: mine", "T: 3"
    )
    assert outcome.commit and not outcome.already_committed
    assert sorted(_files_of(repo, "HEAD")) == ["a.txt", "new.txt"]
    status = git(repo, "status", "--porcelain")
    assert " M b.txt" in status and "A  c.txt" in status  # still dirty, still staged
    assert git(repo, "log", "-1", "--format=%B", "HEAD").strip().endswith("T: 3")


def test_find_by_trailer_after_a_retry(repo: Path) -> None:
    r = Repository(repo)
    (repo / "a.txt").write_text("fixed\n")
    first = vcs.commit_only(r, ["a.txt"], "fix: a", "Pkgbuilder-Request: abc")
    # Another build commits on top before the activity is retried.
    (repo / "b.txt").write_text("other\n")
    git(repo, "commit", "-q", "-am", "other build")
    again = vcs.commit_only(r, ["a.txt"], "fix: a", "Pkgbuilder-Request: abc")
    assert again.already_committed and again.commit == first.commit
    assert vcs.find_commit_by_trailer(r, "Pkgbuilder-Request: abc") == first.commit
    # The trailer must be a whole line: a longer request id is another commit.
    assert vcs.find_commit_by_trailer(r, "Pkgbuilder-Request: ab") is None
    nothing = vcs.commit_only(r, ["a.txt"], "fix: a", "Pkgbuilder-Request: new")
    assert nothing.commit is None and "nothing to commit" in (nothing.note or "")


def test_find_commit_in_a_range_by_needles(repo: Path) -> None:
    r = Repository(repo)
    base = r.head_commit()
    git(repo, "switch", "-q", "-c", "topic")
    git(repo, "commit", "-q", "--allow-empty", "-m", "feat: x\n\n[step 1]")
    tip = r.head_commit()
    assert vcs.find_commit(r, "feat: x", "[step 1]", rev="topic", since=base) == tip
    assert vcs.find_commit(r, "feat: x", rev="main", since=base) is None
    assert vcs.find_commit(r, "two files", rev="topic", since=base) is None
    assert vcs.find_commit(r, "x", rev="no-such-branch") is None


def test_commit_exact_commits_deletes_and_skips_unknown_paths(repo: Path) -> None:
    r = Repository(repo)
    (repo / "a.txt").unlink()
    (repo / "d.txt").write_text("d\n")
    (repo / "b.txt").write_text("not named\n")
    sha, changed = vcs.commit_exact(
        r, ["a.txt", "d.txt", "never-existed.txt"], lambda ch: "exact: " + ",".join(ch)
    )
    assert changed == ["a.txt", "d.txt"]
    assert git(repo, "log", "-1", "--format=%s", sha).strip() == "exact: a.txt,d.txt"
    assert " M b.txt" in git(repo, "status", "--porcelain")


def test_fallback_identity_when_the_repository_has_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in (
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "EMAIL",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    root = tmp_path / "bare-identity"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "x.txt").write_text("x\n")
    r = Repository(root)
    assert r.head_commit() is None  # unborn
    sha = vcs.commit_only(r, ["x.txt"], "first", "T: 1").commit
    assert sha is not None
    who = git(root, "log", "-1", "--format=%an <%ae> / %cn <%ce>")
    assert who.strip() == "pkgbuilder <pkgbuilder@localhost> / pkgbuilder <pkgbuilder@localhost>"


def test_the_repositorys_identity_wins(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(var, raising=False)
    (repo / "a.txt").write_text("x\n")
    vcs.commit_only(Repository(repo), ["a.txt"], "s", "T: 9")
    assert git(repo, "log", "-1", "--format=%ae").strip() == "test@example.com"


def test_worktree_add_remove_prune_are_idempotent(repo: Path, tmp_path: Path) -> None:
    r = Repository(repo)
    wt = tmp_path / "wts" / "topic"
    assert r.add_worktree(wt, "main", new_branch="topic") is True
    assert r.add_worktree(wt, "topic") is False  # healthy, reused
    assert Repository(wt).current_branch() == "topic"
    assert [w.branch for w in r.worktrees()] == ["main", "topic"]
    assert r.remove_worktree(wt) is True
    assert not wt.exists()
    assert r.remove_worktree(wt) is False
    assert r.branch_exists("topic")
    assert r.delete_branch("topic") is True and r.delete_branch("topic") is False
    # A worktree whose directory vanished is pruned once.
    gone = tmp_path / "wts" / "detached"
    assert r.add_worktree(gone, "main", detach=True) is True
    assert Repository(gone).current_branch() is None
    shutil.rmtree(gone)
    assert r.prune_worktrees() == [gone]
    assert r.prune_worktrees() == []
    assert [w.path for w in r.worktrees()] == [repo]


def test_index_lock_is_busy_and_a_failure_names_gits_first_line(repo: Path) -> None:
    r = Repository(repo)
    (repo / ".git" / "index.lock").write_text("")
    (repo / "a.txt").write_text("x\n")
    with pytest.raises(GitBusy):
        vcs.commit_only(r, ["a.txt"], "s", "T: 1")
    (repo / ".git" / "index.lock").unlink()
    with pytest.raises(GitFailed) as caught:
        r.checkout("no-such-branch")
    assert not isinstance(caught.value, GitBusy)
    assert "'git checkout --quiet' failed in" in str(caught.value)
    assert "pathspec 'no-such-branch' did not match" in str(caught.value)
    assert str(caught.value).count("\n") == 0


def test_queries_for_the_build_cache(repo: Path) -> None:
    pkg = repo / "packages" / "p"
    pkg.mkdir(parents=True)
    (pkg / "index.js").write_text("1\n")
    (repo / ".gitignore").write_text("dist/\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "pkg")
    (pkg / "dist").mkdir()
    (pkg / "dist" / "out.js").write_text("built\n")
    r = Repository(repo)
    assert r.head_commit() == git(repo, "rev-parse", "HEAD").strip()
    assert not r.is_dirty()
    assert Repository(pkg).tracked_files() == ["index.js"]
    assert r.tracked_files("packages/p") == ["packages/p/index.js"]
    (pkg / "new.js").write_text("2\n")
    assert Repository(pkg).tracked_files(untracked=True) == ["index.js", "new.js"]
    assert r.is_dirty() and r.is_dirty("packages/p") and not r.is_dirty("a.txt")
    assert r.status_paths(["packages"]) == ["packages/p/new.js"]  # top-level relative


def test_not_a_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert Repository(plain).is_work_tree() is False
    with pytest.raises(NotARepository):
        Repository.open(plain)
    with pytest.raises(NotARepository):
        Repository(tmp_path / "missing").status_paths()


def test_porcelain_paths_skip_a_renames_source() -> None:
    out = "R  new.txt\0old.txt\0 M a b.txt\0?? dir/x\0"
    assert porcelain_paths(out) == ["new.txt", "a b.txt", "dir/x"]


def test_merge_without_a_checkout_and_a_compare_and_swap_ref(repo: Path) -> None:
    r = Repository(repo)
    base = r.head_commit()
    assert base is not None
    git(repo, "switch", "-q", "-c", "task")
    (repo / "a.txt").write_text("task\n")
    git(repo, "commit", "-q", "-am", "task edits a")
    task = r.head_commit()
    git(repo, "switch", "-q", "main")
    (repo / "b.txt").write_text("main\n")
    git(repo, "commit", "-q", "-am", "main edits b")
    main = r.rev("main")
    merged = merge_tree(r, main, "task")
    assert merged.tree and not merged.conflicts
    commit = commit_tree(r, merged.tree, [main, "task"], "Merge task into main")
    with pytest.raises(GitBusy):  # main is not where the caller last saw it
        swap_ref(r, "refs/heads/main", commit, base)
    swap_ref(r, "refs/heads/main", commit, main)
    assert r.rev("main") == commit and r.is_ancestor(task, "main")  # type: ignore[arg-type]
    assert find_merge(r, "Merge task into main", "main") == commit
    git(repo, "switch", "-q", "-c", "clash", base)
    (repo / "b.txt").write_text("clash\n")
    git(repo, "commit", "-q", "-am", "clash edits b")
    clash = merge_tree(r, commit, "clash")
    assert clash.tree is None and clash.conflicts == ["b.txt"]


def test_branch_and_merge_helpers(repo: Path) -> None:
    r = Repository(repo)
    r.switch("feature", create=True)
    assert r.current_branch() == "feature"
    (repo / "a.txt").write_text("feature\n")
    git(repo, "commit", "-q", "-am", "feature edits a")
    r.switch("main")
    (repo / "a.txt").write_text("main\n")
    git(repo, "commit", "-q", "-am", "main edits a")
    with pytest.raises(GitFailed):
        r.merge("feature", "Merge feature")
    assert r.unmerged_paths() == ["a.txt"]
    r.abort_merge()
    assert r.unmerged_paths() == [] and not r.is_dirty()
    assert r.remove_tracked("b.txt") and not r.remove_tracked("b.txt")
    assert r.has_staged_changes()
    r.commit("drop b")
    assert r.commit_files("HEAD") == ["b.txt"]
    git(repo, "tag", "t1")
    assert r.delete_tag("t1") and not r.delete_tag("t1")
