"""The cache's commands as a user runs them (no server needed: they run nothing):
``build --dry[=json]``, ``build --affected``, ``hash`` and ``cache status``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import git, pkgbuilder_cli
from tests.support.cache_builds import NAMES, passing_workspace


def run(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PKGBUILDER_")}
    env["PKGBUILDER_HOME"] = str(home)
    return subprocess.run(
        [pkgbuilder_cli(), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_dry_json_hash_affected_and_status(tmp_path: Path) -> None:
    ws = passing_workspace(tmp_path / "ws")
    home = tmp_path / "home"
    dry = run(["build", str(ws), "--dry=json"], home)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)  # exactly one JSON document
    assert plan["dryRun"] is True and plan["cacheDir"] == str(home / "cache")
    assert {p["name"] for p in plan["packages"]} == NAMES
    for p in plan["packages"]:
        assert set(p) == {"name", "buildHash", "testHash", "cache", "wouldRun", "reason"}
        assert p["cache"] == "miss" and p["wouldRun"] and "no cache entry" in p["reason"]
    mid = next(p for p in plan["packages"] if p["name"] == "@fx/mid")
    hashed = run(["hash", "@fx/mid", "--workspace", str(ws), "--json", "--explain"], home)
    assert hashed.returncode == 0, hashed.stderr
    doc = json.loads(hashed.stdout)
    assert doc["hash"] == mid["buildHash"]
    assert "src/index.js" in doc["manifest"]["files"]

    (ws / "packages/core/other/src/index.js").write_text("module.exports = {};\n")
    git(ws, "commit", "-qam", "change other")
    affected = run(
        ["build", str(ws), "--affected", "--base", "HEAD~1", "--head", "HEAD", "--dry=json"], home
    )
    assert affected.returncode == 0, affected.stderr
    names = {p["name"] for p in json.loads(affected.stdout)["packages"]}
    assert names == {"@fx/other", "@fx/base"}  # the change, plus what it builds against
    bad = run(["build", str(ws), "--affected", "--base", "no-such-ref", "--dry"], home)
    assert bad.returncode == 2 and "not a known git ref" in bad.stderr
    assert "Traceback" not in bad.stderr + bad.stdout
    status = run(["cache", "status", "--workspace", str(ws), "--json"], home)
    assert status.returncode == 0 and json.loads(status.stdout)["artifacts"] == 0


def test_hash_against_a_build_names_the_changed_input(tmp_path: Path) -> None:
    from pkgbuilder.cache.engine import resolve
    from pkgbuilder.config import load_settings
    from pkgbuilder.models.cache import ResolveCacheInput
    from pkgbuilder.workspace.discovery import discover_workspace

    ws = passing_workspace(tmp_path / "ws")
    home = tmp_path / "home"
    settings = load_settings(ws, env={}, overrides={"cache": {"dir": str(home / "cache")}})
    graph = discover_workspace(ws)
    # what a build records: the hashes and manifests it used
    resolve(
        ResolveCacheInput(
            workspace_root=str(ws),
            packages=graph.packages,
            names=sorted(NAMES),
            settings=settings,
            build_id="b1",
        )
    )
    same = run(["hash", "@fx/top", "--workspace", str(ws), "--against", "b1"], home)
    assert same.returncode == 0 and "no input changed" in same.stdout
    src = ws / "packages/utility/mid/src/index.js"
    src.write_text(src.read_text() + "// changed\n")
    mid = run(["hash", "@fx/mid", "--workspace", str(ws), "--against", "b1"], home)
    assert "file changed: src/index.js" in mid.stdout, mid.stdout + mid.stderr
    top = run(["hash", "@fx/top", "--workspace", str(ws), "--against", "b1", "--json"], home)
    assert json.loads(top.stdout)["against"]["changes"] == ["dependency changed: @fx/mid"]
    missing = run(["hash", "@fx/top", "--workspace", str(ws), "--against", "nope"], home)
    assert missing.returncode == 2 and "No hashes were recorded for build nope" in missing.stderr
