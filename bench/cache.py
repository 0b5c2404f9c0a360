#!/usr/bin/env python3
"""Build-cache benchmark: pkgbuilder next to ``turbo run build test`` (turbo 2, its local
cache on) on the bench's 88-package DAG, in one run:

    cold          empty caches
    no-op         nothing changed (everything cached)
    leaf changed  one source file of a package nothing depends on
    root changed  one source file of the package with the most dependents
    remote warm   a fresh clone at another path, empty local cache, the remote cache warm
                  (both against the same turborepo-remote-cache server, separate teams)

Each package's build sleeps a seeded duration and writes ``dist/index.js``; its test is
trivial. pkgbuilder runs against one ``pkgbuilder server`` started first (a team's setup;
each build brings its in-process worker). Also printed: the time to hash all packages
in-process and the mean per-hit restore cost from the no-op run's reports.

Usage::

    python bench/cache.py [--packages 88] [--concurrency 4] [--seed 7] [--min-ms 300]
        [--max-ms 1200] [--tools DIR] [--json]

The machine may be shared: figures are wall-clock and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.suite_makespan import (  # noqa: E402
    BenchPackage,
    _run,
    compile_sources,
    free_port,
    generate_dag,
    start_server,
    write_monorepo,
)
from tests.support.remote_cache import running_remote_cache  # noqa: E402

TURBO_VERSION = "2.11.11"
BUILD_JS = """\
'use strict';
// Benchmark build: sleep argv[2] ms, then write dist/index.js from src/index.js.
const fs = require('node:fs');
const ms = Number(process.argv[2]);
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
fs.mkdirSync('dist', { recursive: true });
fs.writeFileSync('dist/index.js', fs.readFileSync('src/index.js'));
"""


def prepare(root: Path, packages: list[BenchPackage], concurrency: int) -> None:
    """The suite_makespan monorepo, plus sources, outputs and a turbo.json."""
    write_monorepo(root, packages, concurrency)
    (root / "scripts" / "build.js").write_text(BUILD_JS)
    npm = subprocess.run(["npm", "--version"], capture_output=True, text=True).stdout.strip()
    pj = json.loads((root / "package.json").read_text())
    pj["packageManager"] = f"npm@{npm}"
    (root / "package.json").write_text(json.dumps(pj, indent=2) + "\n")
    (root / ".gitignore").write_text(
        "node_modules/\nproduction/reports/\n.pkgbuilder/\ndist/\n.turbo/\ncoverage/\n"
    )
    for p in packages:
        d = root / p.path
        (d / "src").mkdir(exist_ok=True)
        (d / "src" / "index.js").write_text(f"module.exports = {json.dumps(p.name)};\n")
        manifest = json.loads((d / "package.json").read_text())
        manifest["main"] = "dist/index.js"
        manifest["scripts"]["build"] = f"node ../../../scripts/build.js {p.duration_ms}"
        (d / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (root / "turbo.json").write_text(
        json.dumps(
            {
                "$schema": "https://turbo.build/schema.json",
                # signed artifacts, as pkgbuilder's (the server keeps tags for both)
                "remoteCache": {"signature": True},
                "tasks": {
                    "build": {"dependsOn": ["^build"], "outputs": ["dist/**"]},
                    "test": {"dependsOn": ["build"], "outputs": []},
                },
            },
            indent=2,
        )
    )
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-q", "-m", "sources, outputs, turbo.json"], root)


def ensure_turbo(tools: Path) -> Path:
    exe = tools / "node_modules" / ".bin" / "turbo"
    if not exe.exists():
        tools.mkdir(parents=True, exist_ok=True)
        (tools / "package.json").write_text(
            json.dumps(
                {"name": "bench-tools", "private": True, "dependencies": {"turbo": TURBO_VERSION}}
            )
        )
        _run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], tools)
    return exe


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"{argv[0]} {argv[1]} failed ({proc.returncode}): "
            f"{(proc.stderr or proc.stdout)[-2000:]}"
        )
    return wall, proc.stdout


def touch_source(root: Path, pkg: BenchPackage) -> None:
    src = root / pkg.path / "src" / "index.js"
    src.write_text(src.read_text() + f"// changed {time.time()}\n")


def pick_leaf_and_root(packages: list[BenchPackage]) -> tuple[BenchPackage, BenchPackage]:
    dependents: dict[str, int] = {p.name: 0 for p in packages}
    children: dict[str, set[str]] = {p.name: set() for p in packages}
    for p in packages:
        for d in p.dependencies:
            children[d].add(p.name)

    def closure(name: str) -> set[str]:
        out: set[str] = set()
        todo = [name]
        while todo:
            for c in children[todo.pop()]:
                if c not in out:
                    out.add(c)
                    todo.append(c)
        return out

    for name in dependents:
        dependents[name] = len(closure(name))
    leaf = next(p for p in packages if dependents[p.name] == 0)
    root = max(packages, key=lambda p: dependents[p.name])
    return leaf, root


def counts(stdout: str) -> dict[str, Any]:
    summary = json.loads(stdout)
    statuses: dict[str, int] = {}
    restores = []
    for r in summary["packageReports"]:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        cache = r.get("cache") or {}
        if cache.get("hit"):
            restores.append(cache.get("restoreMs", 0))
    return {
        "statuses": statuses,
        "restoreMs": restores,
        "warnings": summary.get("cacheWarnings", []),
    }


def hash_seconds(root: Path) -> float:
    from pkgbuilder.cache.engine import hash_packages
    from pkgbuilder.cache.sources import WorkingTree
    from pkgbuilder.config import load_settings
    from pkgbuilder.workspace.discovery import discover_workspace

    settings = load_settings(root, env={})
    graph = discover_workspace(root)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        hash_packages(WorkingTree(root), graph.packages, settings, env={})
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packages", type=int, default=88)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--min-ms", type=int, default=300)
    ap.add_argument("--max-ms", type=int, default=1200)
    ap.add_argument("--tools", type=Path, default=REPO_ROOT / ".pkgbuilder-test-cache" / "tools")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    compile_sources()
    packages = generate_dag(args.packages, args.seed, args.min_ms, args.max_ms)
    leaf, root_pkg = pick_leaf_and_root(packages)
    turbo = ensure_turbo(args.tools.resolve())
    scratch = Path(tempfile.mkdtemp(prefix="pkgbuilder-cache-bench-"))
    exe = Path(sys.executable).with_name("pkgbuilder")
    results: dict[str, Any] = {
        "packages": len(packages),
        "concurrency": args.concurrency,
        "leaf": leaf.name,
        "root": root_pkg.name,
        "pkgbuilder": {},
        "turbo": {},
    }
    server = None
    try:
        pb_ws, tb_ws = scratch / "pb" / "ws", scratch / "tb" / "ws"
        prepare(pb_ws, packages, args.concurrency)
        shutil.copytree(pb_ws, tb_ws, symlinks=True)
        with running_remote_cache(scratch / "remote") as rc:
            port = free_port()
            home = scratch / "pb-home"
            base_env = {
                **os.environ,
                "TURBO_TELEMETRY_DISABLED": "1",
                "TURBO_NO_UPDATE_NOTIFIER": "1",
                "DO_NOT_TRACK": "1",
            }
            base_env.pop("PKGBUILDER_CACHE_DIR", None)
            pb_env = {
                **base_env,
                "PKGBUILDER_HOME": str(home),
                "PKGBUILDER_HEADLESS": "1",
                "TEMPORAL_ADDRESS": f"localhost:{port}",
                "REMOTE_CACHE_URL": rc.url,
                "REMOTE_CACHE_TOKEN": rc.token,
                "REMOTE_CACHE_TEAM": "pkgbuilder",
                "PKGBUILDER_CACHE_SIGNATURE_KEY": "bench-key",
            }
            server = start_server([str(exe)], home, port, pb_env)
            tb_env = {
                **base_env,
                "TURBO_API": rc.url,
                "TURBO_TOKEN": rc.token,
                "TURBO_TEAM": "turbo",
                "TURBO_REMOTE_CACHE_SIGNATURE_KEY": "bench-key",
            }

            def pb(ws: Path, name: str, cache_dir: Path) -> None:
                env = {**pb_env, "PKGBUILDER_CACHE_DIR": str(cache_dir)}
                wall, out = timed(
                    [str(exe), "build", str(ws), "--json", "--concurrency", str(args.concurrency)],
                    ws,
                    env,
                )
                results["pkgbuilder"][name] = {"wall": wall, **counts(out)}

            def tb(ws: Path, name: str, cache_dir: Path) -> None:
                wall, out = timed(
                    [
                        str(turbo),
                        "run",
                        "build",
                        "test",
                        "--concurrency",
                        str(args.concurrency),
                        "--cache-dir",
                        str(cache_dir),
                        "--output-logs",
                        "none",
                    ],
                    ws,
                    tb_env,
                )
                cached = sum(1 for line in out.splitlines() if "cache hit" in line)
                results["turbo"][name] = {
                    "wall": wall,
                    "summary": next(
                        (line.strip() for line in out.splitlines() if "Cached:" in line), ""
                    ),
                    "hitLines": cached,
                }

            for tool, ws, run in (("pkgbuilder", pb_ws, pb), ("turbo", tb_ws, tb)):
                cache_dir = scratch / f"{tool}-cache"
                run(ws, "cold", cache_dir)
                run(ws, "noop", cache_dir)
                touch_source(ws, leaf)
                run(ws, "leafChanged", cache_dir)
                touch_source(ws, root_pkg)
                run(ws, "rootChanged", cache_dir)
                clone = scratch / tool / "elsewhere" / "clone"
                clone.parent.mkdir(parents=True)
                _run(["git", "clone", "-q", str(ws), str(clone)], scratch)
                run(clone, "remoteWarm", scratch / f"{tool}-cache-fresh")
        results["hashSeconds"] = hash_seconds(pb_ws)
        noop = results["pkgbuilder"]["noop"]["restoreMs"]
        results["meanRestoreMs"] = statistics.mean(noop) if noop else None
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"{results['packages']} packages, concurrency {results['concurrency']}; leaf "
        f"{results['leaf']}, root {results['root']} (shared machine: figures are noisy)"
    )
    print(f"{'scenario':14} {'pkgbuilder s':>13} {'turbo s':>9}   pkgbuilder statuses")
    for name in ("cold", "noop", "leafChanged", "rootChanged", "remoteWarm"):
        p, t = results["pkgbuilder"][name], results["turbo"][name]
        print(
            f"{name:14} {p['wall']:13.2f} {t['wall']:9.2f}   {p['statuses']}  turbo: {t['summary']}"
        )
    print(
        f"hashing {results['packages']} packages in-process: {results['hashSeconds'] * 1000:.0f} ms"
    )
    if results["meanRestoreMs"] is not None:
        print(f"per-hit restore (no-op run, mean over hits): {results['meanRestoreMs']:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
