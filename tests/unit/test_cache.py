"""The build cache's domain code (no Temporal): task hashes and manifests, lockfile entries,
turbo.json, archives (hostile ones too), the local store and the lookup engine."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import time
from pathlib import Path

import pytest

from pkgbuilder.cache import archive
from pkgbuilder.cache.archive import ArchiveRejected, Limits
from pkgbuilder.cache.engine import hash_packages, resolve, save
from pkgbuilder.cache.hashing import diff_manifests
from pkgbuilder.cache.lockfile import Lockfile
from pkgbuilder.cache.plan import affected_packages
from pkgbuilder.cache.sources import GitTree, WorkingTree
from pkgbuilder.cache.store import LocalStore
from pkgbuilder.cli.cache import cache_spec_overrides
from pkgbuilder.config import load_settings
from pkgbuilder.errors import UserError
from pkgbuilder.models.cache import CachedSteps, ResolveCacheInput, SaveCacheInput
from pkgbuilder.models.steps import StepResult
from pkgbuilder.workspace.discovery import discover_workspace
from tests.conftest import git


def _write(path: Path, data: str | dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))


def make_repo(root: Path, turbo: dict | None = None) -> Path:
    """Three packages: a ← b, c alone; a and c use external deps from package-lock.json."""
    _write(root / "package.json", {"name": "r", "private": True, "workspaces": ["pkgs/*"]})
    _write(root / ".gitignore", "node_modules/\ndist/\n")
    for name, deps in (
        ("a", {"left-pad": "^1.0.0"}),
        ("b", {"@x/a": "1.0.0"}),
        ("c", {"right-pad": "^1.0.0"}),
    ):
        _write(
            root / f"pkgs/{name}/package.json",
            {
                "name": f"@x/{name}",
                "version": "1.0.0",
                "main": "dist/index.js",
                "scripts": {"build": "node build.js", "test": "node test.js"},
                "dependencies": deps,
            },
        )
        _write(root / f"pkgs/{name}/src/index.js", f"module.exports = '{name}';\n")
    lock = {
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "r"},
            "node_modules/@x/a": {"resolved": "pkgs/a", "link": True},
            "node_modules/left-pad": {
                "version": "1.3.0",
                "integrity": "sha512-aaa",
                "dependencies": {"pad-core": "^1"},
            },
            "node_modules/pad-core": {"version": "1.0.0", "integrity": "sha512-ccc"},
            "node_modules/right-pad": {"version": "1.0.1", "integrity": "sha512-bbb"},
        },
    }
    _write(root / "package-lock.json", lock)
    if turbo is not None:
        _write(root / "turbo.json", turbo)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


def hashes(
    root: Path, process_env: dict[str, str] | None = None, **cache: object
) -> dict[str, str]:
    settings = load_settings(root, env={}, overrides={"cache": cache} if cache else None)
    graph = discover_workspace(root)
    _, out = hash_packages(WorkingTree(root), graph.packages, settings, env=process_env or {})
    return {n: h.build for n, h in out.items()} | {f"{n}#test": h.test for n, h in out.items()}


def test_hash_is_path_independent_and_ignores_untracked_outputs(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "one")
    other = tmp_path / "elsewhere" / "two"
    other.parent.mkdir()
    git(tmp_path, "clone", "-q", str(repo), str(other))
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"))
    before = hashes(repo)
    assert hashes(other) == before == hashes(tmp_path / "wt")
    _write(repo / "pkgs/a/dist/index.js", "built")  # an output lying around
    assert hashes(repo) == before


def test_a_change_moves_the_package_and_its_dependents_only(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    before = hashes(repo)
    (repo / "pkgs/a/src/index.js").write_text("module.exports = 'A';\n")
    after = hashes(repo)
    assert {k for k in before if before[k] != after[k]} == {
        "@x/a",
        "@x/b",
        "@x/a#test",
        "@x/b#test",
    }
    _write(repo / "pkgs/c/src/new.js", "untracked source counts")
    assert hashes(repo)["@x/c"] != after["@x/c"]


def test_env_allowlist_and_command_text_are_inputs(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    base = hashes(repo, {"MODE": "a"})
    assert hashes(repo, {"MODE": "b"}) == base  # not in the allowlist
    one = hashes(repo, {"MODE": "a"}, env=["MODE"])
    assert one != hashes(repo, {"MODE": "b"}, env=["MODE"])
    assert one["@x/a"] != base["@x/a"]
    pj = repo / "pkgs/c/package.json"
    pj.write_text(pj.read_text().replace("node build.js", "node build.js --prod"))
    changed = hashes(repo, {"MODE": "a"})
    assert changed["@x/c"] != base["@x/c"] and changed["@x/a"] == base["@x/a"]


def test_lockfile_entries_are_per_package(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    before = hashes(repo)
    lock = json.loads((repo / "package-lock.json").read_text())
    lock["packages"]["node_modules/pad-core"]["integrity"] = "sha512-new"  # transitive of a
    _write(repo / "package-lock.json", lock)
    after = hashes(repo)
    assert after["@x/a"] != before["@x/a"] and after["@x/c"] == before["@x/c"]


def test_yarn_and_pnpm_lockfiles() -> None:
    yarn = Lockfile(
        "yarn.lock",
        b"""# yarn lockfile v1

"left-pad@^1.0.0":
  version "1.3.0"
  dependencies:
    pad-core "^1"

pad-core@^1:
  version "1.0.0"

right-pad@^1.0.0:
  version "1.0.1"
""",
    )
    entries = yarn.entries("pkgs/a", ["left-pad"])
    assert set(entries) == {'"left-pad@^1.0.0"', "pad-core@^1"}
    pnpm = Lockfile(
        "pnpm-lock.yaml",
        b"""lockfileVersion: '9.0'
importers:
  pkgs/a:
    dependencies:
      left-pad:
        specifier: ^1.0.0
        version: 1.3.0
packages:
  left-pad@1.3.0:
    resolution: {integrity: sha512-aaa}
  pad-core@1.0.0:
    resolution: {integrity: sha512-ccc}
snapshots:
  left-pad@1.3.0:
    dependencies:
      pad-core: 1.0.0
  pad-core@1.0.0: {}
""",
    )
    assert set(pnpm.entries("pkgs/a", ["left-pad"])) == {"left-pad@1.3.0", "pad-core@1.0.0"}
    assert list(Lockfile("yarn.lock", b"\xff garbage").entries("p", ["x"])) == ["x (unresolved)"]


def test_turbo_json_outputs_inputs_env_and_depends_on(tmp_path: Path) -> None:
    turbo = {
        "tasks": {
            "build": {
                "outputs": ["out/**"],
                "inputs": ["src/**"],
                "env": ["API_URL"],
                "dependsOn": [],
            }
        }
    }
    repo = make_repo(tmp_path / "r", turbo)
    settings = load_settings(repo, env={})
    graph = discover_workspace(repo)
    hasher, out = hash_packages(WorkingTree(repo), graph.packages, settings, env={"API_URL": "x"})
    m = hasher.manifest("@x/b")
    assert m.outputs == ["out/**"] and out["@x/b"].outputs == ["out/**"]
    assert m.dependencies == {}  # no ^build in dependsOn
    assert list(m.env) == ["API_URL"] and "turbo.json" in m.global_files
    before = hashes(repo)
    _write(repo / "pkgs/a/README.md", "not an input")
    assert hashes(repo) == before


def test_manifest_diff_names_what_changed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    settings = load_settings(repo, env={})
    graph = discover_workspace(repo)
    old, _ = hash_packages(WorkingTree(repo), graph.packages, settings)
    (repo / "pkgs/a/src/index.js").write_text("changed")
    new, _ = hash_packages(WorkingTree(repo), graph.packages, settings)
    diff = diff_manifests(old.manifest("@x/b"), new.manifest("@x/b"))
    assert diff.changes == ["dependency changed: @x/a"]
    assert diff_manifests(old.manifest("@x/a"), new.manifest("@x/a")).changes == [
        "file changed: src/index.js"
    ]


def test_affected_between_two_commits_and_bad_refs(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    settings = load_settings(repo, env={})
    graph = discover_workspace(repo)
    (repo / "pkgs/a/src/index.js").write_text("changed")
    git(repo, "commit", "-qam", "change a")
    assert affected_packages(repo, graph, settings, "HEAD~1", "HEAD") == ["@x/a", "@x/b"]
    assert affected_packages(repo, graph, settings, "HEAD") == []
    assert set(GitTree(repo, "HEAD~1").files) >= {"pkgs/a/src/index.js"}
    with pytest.raises(UserError, match="not a known git ref"):
        affected_packages(repo, graph, settings, "no-such-ref")
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow))
    with pytest.raises(UserError, match="shallow clone"):
        affected_packages(shallow, discover_workspace(shallow), settings, "HEAD~1")


# -- archives -----------------------------------------------------------------------------


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        meta = json.dumps({"result": {}}).encode()
        info = tarfile.TarInfo("meta.json")
        info.size = len(meta)
        tf.addfile(info, io.BytesIO(meta))
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def test_pack_and_extract_round_trip(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    _write(pkg / "dist/index.js", "out")
    _write(pkg / "dist/sub/x.js", "x")
    os.symlink("index.js", pkg / "dist/alias.js")
    _write(pkg / "src/index.js", "not an output")
    log = tmp_path / "build.log"
    log.write_text("the build said hello")
    data = archive.pack(pkg, ["dist/**"], {"build.log": log}, {"hash": "h"})
    target = tmp_path / "restored"
    target.mkdir()
    meta = archive.extract(data, target, tmp_path / "logs")
    assert meta["files"] == ["dist/alias.js", "dist/index.js", "dist/sub/x.js"]
    assert (target / "dist/sub/x.js").read_text() == "x"
    assert os.readlink(target / "dist/alias.js") == "index.js"
    assert not (target / "src").exists()
    assert (tmp_path / "logs/build.log").read_text() == "the build said hello"


def test_restoring_unchanged_outputs_writes_nothing(tmp_path: Path) -> None:
    """A file already holding the cached bytes and mode is left alone (its mtime stays); a
    changed file, a changed mode and a link standing where a file belongs are restored."""
    pkg = tmp_path / "pkg"
    _write(pkg / "dist/index.js", "out")
    _write(pkg / "dist/cli.js", "#!/usr/bin/env node")
    (pkg / "dist/cli.js").chmod(0o755)
    _write(pkg / "dist/other.js", "other")
    data = archive.pack(pkg, ["dist/**"], {}, {"hash": "h"})
    old = 1_000_000_000
    for name in ("index.js", "cli.js", "other.js"):
        os.utime(pkg / "dist" / name, (old, old))
    (pkg / "dist/other.js").write_text("edited")
    os.utime(pkg / "dist/other.js", (old, old))
    (pkg / "dist/cli.js").chmod(0o644)
    os.utime(pkg / "dist/cli.js", (old, old))
    outside = tmp_path / "outside.js"
    outside.write_text("out")
    (pkg / "dist/index.js").rename(tmp_path / "moved.js")
    os.symlink(outside, pkg / "dist/index.js")
    archive.extract(data, pkg, None)
    assert not (pkg / "dist/index.js").is_symlink()
    assert (pkg / "dist/index.js").read_text() == "out"
    assert (pkg / "dist/other.js").read_text() == "other"
    assert (pkg / "dist/cli.js").stat().st_mode & 0o777 == 0o755
    assert outside.read_text() == "out"
    for name in ("index.js", "cli.js", "other.js"):
        os.utime(pkg / "dist" / name, (old, old))
    archive.extract(data, pkg, None)
    assert all(
        (pkg / "dist" / name).stat().st_mtime == old for name in ("index.js", "cli.js", "other.js")
    )


@pytest.mark.parametrize(
    "members, reason",
    [
        ([(_member("out/../../evil"), b"x")], "'..'"),
        ([(_member("/etc/evil"), b"x")], "absolute"),
        ([(_member("out/link", tarfile.SYMTYPE, "../../outside"), None)], "outside the package"),
        ([(_member("out/link", tarfile.SYMTYPE, "/etc/passwd"), None)], "absolute path"),
        ([(_member("out/hard", tarfile.LNKTYPE, "/etc/passwd"), None)], "hard link"),
        ([(_member("out/dev", tarfile.CHRTYPE), None)], "device"),
        ([(_member("out/fifo", tarfile.FIFOTYPE), None)], "device or FIFO"),
        ([(_member("elsewhere/x"), b"x")], "outside meta.json"),
        ([(_member("out/big"), b"x" * 5000)], "size cap"),
    ],
)
def test_hostile_archives_are_refused_with_nothing_written(
    tmp_path: Path, members: list, reason: str
) -> None:
    data = _tar([(_member("out/dist/ok.js"), b"fine"), *members])
    target = tmp_path / "pkg"
    target.mkdir()
    with pytest.raises(ArchiveRejected, match=reason):
        archive.extract(
            data,
            target,
            tmp_path / "logs",
            Limits(max_archive_bytes=10_000, max_unpacked_bytes=4000),
        )
    assert list(target.iterdir()) == [] and not (tmp_path / "logs").exists()


def test_corrupt_and_link_redirected_archives_are_refused(tmp_path: Path) -> None:
    target = tmp_path / "pkg"
    target.mkdir()
    with pytest.raises(ArchiveRejected, match="not a readable archive"):
        archive.extract(b"\x1f\x8b garbage", target, None)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, target / "dist")  # an existing link must not redirect a write
    with pytest.raises(ArchiveRejected, match="through a link"):
        archive.extract(_tar([(_member("out/dist/x.js"), b"x")]), target, None)
    assert list(outside.iterdir()) == []


# -- store and engine ---------------------------------------------------------------------


def test_store_prunes_least_recently_used(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "c", max_bytes=250)
    for i, h in enumerate(["a" * 32, "b" * 32, "c" * 32]):
        store.put(h, bytes(100))
        os.utime(store._artifact(h), (1000 + i, 1000 + i))
    assert store.get("a" * 32) is not None  # used now: the most recent
    assert store.prune() == (1, 100)
    assert store.has("a" * 32) and not store.has("b" * 32) and store.has("c" * 32)
    assert store.status().artifacts == 2


def test_store_prunes_after_a_save_at_most_once_an_interval(tmp_path: Path) -> None:
    """A save prunes only when the last scan is older than the interval (the marker's time),
    so a large cache is not scanned once per built package."""
    store = LocalStore(tmp_path / "c", max_bytes=150)
    store.put("a" * 32, bytes(100))
    assert store.prune_if_due() == (0, 0)  # never pruned: scans, fits
    store.put("b" * 32, bytes(100))  # now over the cap
    assert store.prune_if_due() is None  # scanned a moment ago: skipped
    assert store.status().artifacts == 2
    marker = tmp_path / "c" / "artifacts" / ".pruned"
    past = time.time() - 61
    os.utime(marker, (past, past))
    os.utime(store._artifact("a" * 32), (1000, 1000))  # the least recently used
    assert store.prune_if_due() == (1, 100)
    assert store.has("b" * 32) and not store.has("a" * 32)
    assert store.status().artifacts == 1  # the marker is not an artifact


def _steps() -> CachedSteps:
    return CachedSteps(
        build=StepResult(step="build", ok=True, duration_ms=50),
        test=StepResult(step="test", ok=True, duration_ms=70, coverage_percent=91.0),
    )


def test_engine_restores_a_hit_and_treats_a_corrupt_artifact_as_a_reported_miss(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "r")
    settings = load_settings(repo, env={}, overrides={"cache": {"dir": str(tmp_path / "c")}})
    graph = discover_workspace(repo)
    _write(repo / "pkgs/a/dist/index.js", "built a")
    _, hs = hash_packages(WorkingTree(repo), graph.packages, settings, ["@x/a"])
    node = graph.by_name()["@x/a"]
    saved = save(
        SaveCacheInput(
            workspace_root=str(repo),
            package=node,
            hashes=hs["@x/a"],
            steps=_steps(),
            settings=settings,
        )
    )
    assert saved.stored and not saved.uploaded
    shutil.rmtree(repo / "pkgs/a/dist")
    inp = ResolveCacheInput(
        workspace_root=str(repo),
        packages=graph.packages,
        names=["@x/a", "@x/c"],
        settings=settings,
        build_id="b1",
    )
    res = resolve(inp)
    hit, miss = res.lookups
    assert hit.hit and hit.steps and hit.steps.test.coverage_percent == 91.0
    assert (repo / "pkgs/a/dist/index.js").read_text() == "built a"
    assert not miss.hit and "no cache entry" in (miss.reason or "")
    store = LocalStore.from_settings(settings.cache)
    assert store.build_hashes("b1") == {
        n: {"build": h.build, "test": h.test}
        for n, h in hash_packages(WorkingTree(repo), graph.packages, settings, ["@x/a", "@x/c"])[
            1
        ].items()
    }
    store.put(hs["@x/a"].build, b"\x1f\x8b not really")  # corrupt on disk
    res = resolve(inp)
    assert not res.lookups[0].hit and "rejected" in (res.lookups[0].reason or "")
    assert any("rejected" in w for w in res.warnings)
    assert not store.has(hs["@x/a"].build)  # discarded, not tried again


def test_cache_flag_syntax() -> None:
    assert cache_spec_overrides("local:rw,remote:r") == {
        "cache": {"localRead": True, "localWrite": True, "remote": {"read": True, "write": False}}
    }
    assert cache_spec_overrides("remote:r")["cache"]["localRead"] is False
    with pytest.raises(UserError):
        cache_spec_overrides("disk:rw")
