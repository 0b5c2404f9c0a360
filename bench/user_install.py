#!/usr/bin/env python3
"""`pkgbuilder build` right after the user's own `npm ci` (issue 17): trusted vs installed.

One seeded DAG (bench/suite_makespan.py's generator, npm workspaces, no test step). Each
round runs `npm ci` as a user would, then `pkgbuilder build` with a server up, twice in
alternating order:

    trusted     as is: pkgbuilder reads npm's record (node_modules/.package-lock.json),
                finds it matches the lockfile and manifests, and skips the install
    installed   npm's record removed first: pkgbuilder runs `npm ci` again, which is what
                every build right after the user's install did before

Before each build the install step alone (steps/install.py, what the install activity
runs) is timed the same way, on its own `npm ci`: the build's wall is noisy on a shared
machine, the step's time is the saving itself. Prints each variant's median step time,
median build wall and the install the build reported.

Usage::

    python bench/user_install.py [--packages 88] [--concurrency 4] [--min-ms 200]
        [--max-ms 1200] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import Server, timed
from suite_makespan import compile_sources, generate_dag, write_monorepo

from pkgbuilder.models.common import PackageManager
from pkgbuilder.steps.install import install
from pkgbuilder.steps.shell import RunOptions

VARIANTS = ("trusted", "installed")


def users_npm_ci(root: Path) -> None:
    subprocess.run(
        ["npm", "ci", "--offline", "--no-audit", "--no-fund", "--silent"], cwd=root, check=True
    )


def prepare(root: Path, variant: str) -> None:
    users_npm_ci(root)
    if variant == "installed":
        os.unlink(root / "node_modules" / ".package-lock.json")


def install_step(root: Path) -> float:
    started = time.monotonic()
    result = asyncio.run(install(root, PackageManager.NPM, timeout=600, options=RunOptions()))
    if not result.ok:
        raise RuntimeError(f"install failed: {result.output_tail[-800:]}")
    return time.monotonic() - started


def build(root: Path, server: Server, concurrency: int, build_id: str) -> tuple[float, Any]:
    argv = [server.exe, "build", str(root), "--json", "--concurrency", str(concurrency)]
    argv += ["--build-id", build_id, "--force", "--rebuild"]
    wall, proc = timed(argv, root, server.env)
    if proc.returncode != 0:
        raise RuntimeError(f"pkgbuilder failed ({proc.returncode}): {proc.stderr[-800:]}")
    return wall, json.loads(proc.stdout).get("install")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=88)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--min-ms", type=int, default=200)
    parser.add_argument("--max-ms", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    compile_sources()
    packages = generate_dag(args.packages, args.seed, args.min_ms, args.max_ms)
    walls: dict[str, list[float]] = {v: [] for v in VARIANTS}
    steps: dict[str, list[float]] = {v: [] for v in VARIANTS}
    installs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pkgbuilder-user-install-") as tmp:
        root = Path(tmp) / "npm"
        write_monorepo(root, packages, args.concurrency, test_script=False)
        server = Server(Path(tmp) / "home")
        try:
            for rnd in range(args.rounds):
                order = VARIANTS if rnd % 2 == 0 else tuple(reversed(VARIANTS))
                for variant in order:
                    prepare(root, variant)
                    steps[variant].append(install_step(root))
                    prepare(root, variant)
                    wall, installs[variant] = build(
                        root, server, args.concurrency, f"{variant}{rnd}"
                    )
                    walls[variant].append(wall)
                    print(
                        f"round {rnd + 1} {variant}: step {steps[variant][-1] * 1000:.0f} ms, "
                        f"build {wall:.2f}s",
                        file=sys.stderr,
                    )
        finally:
            server.stop()
    result = {
        v: {
            "stepMs": [round(t * 1000, 1) for t in steps[v]],
            "stepMedianMs": round(statistics.median(steps[v]) * 1000, 1),
            "walls": w,
            "median": statistics.median(w),
            "install": installs[v],
        }
        for v, w in walls.items()
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{args.packages} packages, builds {args.min_ms}-{args.max_ms} ms, concurrency "
        f"{args.concurrency}, {args.rounds} rounds, each right after `npm ci`:"
    )
    for v, r in result.items():
        inst = r["install"] or {}
        how = inst.get("reason") if inst.get("skipped") else f"{inst.get('durationMs', 0)} ms"
        rounds = " ".join(f"{w:.2f}" for w in r["walls"])
        print(
            f"  {v:<10} install step {r['stepMedianMs']:.0f} ms, build median "
            f"{r['median']:.2f}s ({rounds}), install: {how}"
        )
    step = result["installed"]["stepMedianMs"] - result["trusted"]["stepMedianMs"]
    wall = result["installed"]["median"] - result["trusted"]["median"]
    print(f"  saved by trusting npm's record: {step:.0f} ms of install step, {wall:.2f}s of wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
