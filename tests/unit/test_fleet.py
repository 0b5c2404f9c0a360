"""Fleet workers: whether a checkout may serve a suite, and the
restore of a package's dependencies' outputs from the cache into another checkout (domain
code), and the activity-level refusal (no server: ``ActivityEnvironment``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from pkgbuilder.activities.fleet import REFUSAL_RETRY_DELAY, FleetCheckout
from pkgbuilder.cache.dependencies import DependencyRestorer
from pkgbuilder.cache.engine import hash_packages, save
from pkgbuilder.cache.sources import WorkingTree
from pkgbuilder.config import load_settings
from pkgbuilder.errors import ErrorType
from pkgbuilder.models.cache import CachedSteps, SaveCacheInput
from pkgbuilder.models.cache_info import CacheSource
from pkgbuilder.models.fleet import DependencyBuild, FleetTask, SuiteCheckout
from pkgbuilder.models.steps import StepResult
from pkgbuilder.vcs.checkout import checkout_state, refusal
from pkgbuilder.workspace.discovery import discover_workspace
from tests.conftest import git
from tests.unit.test_cache import _write, make_repo


def _clone(repo: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    git(repo.parent, "clone", "-q", str(repo), str(dest))
    return dest


def test_a_checkout_at_another_commit_or_dirty_is_refused_with_the_reason(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "origin")
    other = _clone(repo, tmp_path / "host2" / "repo")
    started = checkout_state(repo)
    assert started.commit and started.clean
    assert refusal(started.commit, True, checkout_state(other), str(other)) is None

    # Ignored outputs and pkgbuilder's own state do not make a checkout dirty.
    _write(other / "pkgs/a/dist/index.js", "built")
    _write(other / ".pkgbuilder/cache/x", "state")
    assert checkout_state(other, exclude=[".pkgbuilder"]).clean

    # Untracked files a build leaves behind do not either (an untracked input changes
    # the package's hash, which a worker checks too).
    _write(other / "notes.txt", "untracked")
    assert checkout_state(other).clean
    _write(other / "pkgs/a/src/index.js", "module.exports = 'changed';\n")
    _write(other / "pkgs/a/package.json", "{}")
    dirty = checkout_state(other, exclude=[".pkgbuilder"])
    reason = refusal(started.commit, True, dirty, str(other))
    assert reason and "uncommitted changes (pkgs/a/package.json, pkgs/a/src/index.js)" in reason
    assert str(other) in reason and "clean checkout" in reason
    # A suite started from a dirty checkout asks for the commit only.
    assert refusal(started.commit, False, dirty, str(other)) is None

    git(other, "commit", "-qam", "moved on")
    moved = checkout_state(other, exclude=[".pkgbuilder"])
    reason = refusal(started.commit, False, moved, str(other))
    assert reason and f"the suite was started at {started.commit[:12]}" in reason
    assert moved.commit and moved.commit[:12] in reason


def _built_and_saved(repo: Path, settings_dir: Path, text: str) -> list[DependencyBuild]:
    """Build @x/a in ``repo`` (a dist file) and save it to the cache at ``settings_dir``."""
    settings = load_settings(repo, env={}, overrides={"cache": {"dir": str(settings_dir)}})
    graph = discover_workspace(repo)
    _write(repo / "pkgs/a/dist/index.js", text)
    _, hs = hash_packages(WorkingTree(repo), graph.packages, settings, ["@x/a"])
    save(
        SaveCacheInput(
            workspace_root=str(repo),
            package=graph.by_name()["@x/a"],
            hashes=hs["@x/a"],
            steps=CachedSteps(
                build=StepResult(step="build", ok=True), test=StepResult(step="test", ok=True)
            ),
            settings=settings,
        )
    )
    return [DependencyBuild(name="@x/a", path="pkgs/a", build_hash=hs["@x/a"].build)]


def test_dependency_outputs_are_restored_from_the_cache_not_taken_from_the_disk(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "host1" / "repo")
    other = _clone(repo, tmp_path / "host2" / "repo")
    cache = tmp_path / "cache"
    deps = _built_and_saved(repo, cache, "built on host 1")
    settings = load_settings(other, env={}, overrides={"cache": {"dir": str(cache)}})
    _write(other / "pkgs/a/dist/index.js", "stale output of another commit")
    restorer = DependencyRestorer(other)

    res = restorer.restore(deps, settings)
    assert res.ok and res.restored == {"@x/a": CacheSource.LOCAL}
    assert (other / "pkgs/a/dist/index.js").read_text() == "built on host 1"

    # Restored once per hash: a second dependent does not rewrite what a build may read.
    (other / "pkgs/a/dist/index.js").write_text("read by a running build")
    assert restorer.restore(deps, settings).ok
    assert (other / "pkgs/a/dist/index.js").read_text() == "read by a running build"

    missing = restorer.restore(
        [DependencyBuild(name="@x/c", path="pkgs/c", build_hash="0" * 32)], settings
    )
    assert not missing.ok
    assert missing.missing == [
        "the build outputs of @x/c (000000000000) are in neither the local nor the remote cache"
    ]


def _task(commit: str, clean: bool, suite_root: Path) -> FleetTask:
    return FleetTask(
        task_queue="q-fleet",
        checkout=SuiteCheckout(commit=commit, clean=clean),
        suite_root=str(suite_root),
    )


async def test_a_fleet_worker_refuses_a_task_it_cannot_serve_with_a_retryable_reason(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "starter")
    head = checkout_state(repo).commit
    assert head
    worker = _clone(repo, tmp_path / "host2" / "repo")
    checkout = FleetCheckout(worker)
    settings = load_settings(worker, env={})
    env = ActivityEnvironment()

    # A clean checkout at the commit serves; reports and pkgbuilder state don't dirty it.
    _write(worker / "production/reports/2026-12-02/x.json", "{}")
    env.run(checkout.check, _task(head, True, repo), settings, "@x/b")

    _write(worker / "pkgs/b/src/index.js", "module.exports = 'local edit';\n")
    with pytest.raises(ApplicationError) as dirty:
        env.run(checkout.check, _task(head, True, repo), settings, "@x/b")
    assert dirty.value.type == ErrorType.CheckoutMismatch and not dirty.value.non_retryable
    assert dirty.value.next_retry_delay == REFUSAL_RETRY_DELAY
    assert f"worker {checkout.identity} refused @x/b" in dirty.value.message
    assert "uncommitted changes (pkgs/b/src/index.js)" in dirty.value.message
    env.run(checkout.check, _task(head, False, repo), settings, "@x/b")  # suite was dirty too

    git(worker, "commit", "-qam", "another commit")
    with pytest.raises(ApplicationError, match=f"the suite was started at {head[:12]}"):
        env.run(checkout.check, _task(head, False, repo), settings, "@x/b")

    # A checkout git cannot read is refused too (retryably): another worker's may do.
    (tmp_path / "not-a-checkout").mkdir()
    with pytest.raises(ApplicationError, match=r"cannot be used: .* not inside a git") as bad:
        env.run(
            FleetCheckout(tmp_path / "not-a-checkout").check,
            _task(head, True, repo),
            settings,
            "@x/b",
        )
    assert bad.value.type == ErrorType.CheckoutMismatch


def test_a_fleet_worker_maps_the_suites_paths_onto_its_checkout(tmp_path: Path) -> None:
    checkout = FleetCheckout(tmp_path / "host2" / "repo")
    suite = tmp_path / "starter"
    assert checkout.map_path(str(suite / "production/reports/d/logs/b1/x"), str(suite)) == str(
        checkout.root / "production/reports/d/logs/b1/x"
    )
    assert checkout.map_path("/var/log/pkgbuilder/x", str(suite)) == "/var/log/pkgbuilder/x"
    assert checkout.identity.endswith(f":{checkout.root}")


def test_a_worker_whose_checkout_hashes_the_package_differently_refuses(tmp_path: Path) -> None:
    """A suite started with uncommitted changes asks only for the commit; the package's
    build hash then tells a worker without those changes from one that has them."""
    starter = make_repo(tmp_path / "starter")
    worker = _clone(starter, tmp_path / "host2" / "repo")
    head = checkout_state(starter).commit
    assert head
    _write(starter / "pkgs/a/src/index.js", "module.exports = 'uncommitted';\n")
    settings = load_settings(starter, env={})
    graph = discover_workspace(starter)
    _, hs = hash_packages(WorkingTree(starter), graph.packages, settings, ["@x/b"])
    task = _task(head, False, starter).model_copy(update={"build_hash": hs["@x/b"].build})
    checkout = FleetCheckout(worker)
    with pytest.raises(ApplicationError, match=r"@x/b hashes [0-9a-f]{12} in the checkout"):
        ActivityEnvironment().run(checkout.check, task, settings, "@x/b")
    _write(worker / "pkgs/a/src/index.js", "module.exports = 'uncommitted';\n")
    ActivityEnvironment().run(checkout.check, task, settings, "@x/b")
