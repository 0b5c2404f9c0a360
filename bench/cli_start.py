#!/usr/bin/env python3
"""The fixed cost of ``pkgbuilder build``: what the CLI pays before and around any package work
(issue 17), server up, N runs.

One seeded DAG (bench/suite_makespan.py's generator, every build script sleeping 0 ms) is
written once; a headless ``pkgbuilder server`` is started; then ``pkgbuilder build --json
--force --rebuild`` runs N times on one package of it without dependencies (``--only``), so
that the wall time is nearly all fixed cost (``--all`` builds every package instead). From
the suite's own history (event times, the server's clock) and the run's start and end:

    cliToSuite        the CLI process starting -> the suite's start event (imports, config,
                      workspace discovery, client connect, the start call)
    suiteToFirstChild the suite's start -> its first child's start (the in-process worker
                      starting, the suite's INITIALIZE and PLAN)
    cliToFirstChild   the sum of both: everything before the first package's build
    lastChildToEnd    the last child's end -> the suite's end (VERIFY, summary)
    endToExit         the suite's end -> the CLI process exiting (summary printed, shutdown)
    wall              the whole run
    cpu               the CPU time (user + system) of the run and the processes it started

Usage::

    python bench/cli_start.py [--runs 7] [--packages 88] [--all] [--json] [--against DIR]
        [--pause 1.0]

Each checkout's ``src`` goes first on ``PYTHONPATH`` and its ``pkgbuilder`` entry point (from
its ``pyproject.toml``) is run by this interpreter. ``--against DIR``: also run the sources of
DIR (a checkout, e.g. ``git worktree add DIR main``; byte-compiled first), alternating with
this one run by run (in turns first), so that both see the same machine load; medians of
each. ``--pause`` seconds pass before each run: the server still settles the previous build
for a while after its command exits, and a run starting into that pays for it.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite_makespan import compile_sources, free_port, generate_dag, start_server, write_monorepo

FIGURES = (
    "cliToSuite",
    "suiteToFirstChild",
    "cliToFirstChild",
    "lastChildToEnd",
    "endToExit",
    "wall",
    "cpu",
)


async def history_figures(address: str, build_id: str, start_ms: float, end_ms: float) -> dict:
    """The run's figures (ms) from the suite's and its children's start and close times."""
    from temporalio.client import Client

    client = await Client.connect(address)
    suite = await client.get_workflow_handle(f"suite-{build_id}").describe()
    starts: list[float] = []
    ends: list[float] = []
    query = f'WorkflowType="PackageBuildWorkflow" AND WorkflowId STARTS_WITH "build-{build_id}-"'
    async for wf in client.list_workflows(query):
        starts.append(wf.start_time.timestamp() * 1000)
        if wf.close_time is not None:
            ends.append(wf.close_time.timestamp() * 1000)
    suite_start = suite.start_time.timestamp() * 1000
    suite_end = suite.close_time.timestamp() * 1000 if suite.close_time else end_ms
    out = {
        "cliToSuite": suite_start - start_ms,
        "endToExit": end_ms - suite_end,
        "wall": end_ms - start_ms,
    }
    if starts:
        out["suiteToFirstChild"] = min(starts) - suite_start
        out["cliToFirstChild"] = min(starts) - start_ms
    if ends:
        out["lastChildToEnd"] = suite_end - max(ends)
    return out


def launcher(checkout: Path) -> list[str]:
    """The ``pkgbuilder`` executable of ``checkout`` as its ``pyproject.toml`` declares it,
    run by this interpreter (a checkout's entry point may differ from the installed one)."""
    scripts = tomllib.loads((checkout / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["pkgbuilder"].partition(":")
    code = f"import sys; sys.argv[0] = 'pkgbuilder'; from {module} import {function} as m; m()"
    return [sys.executable, "-c", code]


def one_run(
    command: list[str],
    root: Path,
    env: dict[str, str],
    port: int,
    build_id: str,
    only: list[str],
) -> dict[str, float]:
    """One ``pkgbuilder build`` and its figures."""
    argv = [*command, "build", str(root), "--json", "--force", "--rebuild", "--build-id", build_id]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start_ms = time.time() * 1000
    proc = subprocess.run(
        [*argv, *only], cwd=root, env=env, capture_output=True, text=True, check=False
    )
    end_ms = time.time() * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"build failed ({proc.returncode}): {proc.stderr[-800:]}")
    json.loads(proc.stdout)  # --json: exactly one JSON document
    figures = asyncio.run(history_figures(f"localhost:{port}", build_id, start_ms, end_ms))
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {**figures, "cpu": cpu * 1000}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--packages", type=int, default=88)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--all", action="store_true", help="build every package, not one")
    parser.add_argument("--against", type=Path, help="a checkout to compare with")
    parser.add_argument(
        "--pause", type=float, default=1.0, help="seconds between runs (the server settles)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    compile_sources()
    here = Path(__file__).resolve().parent.parent
    variants = {"this": (launcher(here), str(here / "src"))}
    if args.against is not None:
        checkout = args.against.resolve()
        if not (checkout / "src" / "pkgbuilder").is_dir():
            parser.error(f"{args.against} has no src/pkgbuilder")
        compileall.compile_dir(str(checkout / "src" / "pkgbuilder"), quiet=1)
        variants["against"] = (launcher(checkout), str(checkout / "src"))
    packages = generate_dag(args.packages, args.seed, 0, 0)
    leaf = next(p.name for p in packages if not p.dependencies)
    only = [] if args.all else ["--only", leaf]
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="pkgbuilder-cli-start-") as tmp:
        root, home = Path(tmp) / "repo", Path(tmp) / "home"
        write_monorepo(root, packages, 4, test_script=False)
        subprocess.run(
            ["npm", "ci", "--offline", "--no-audit", "--no-fund", "--silent"], cwd=root, check=True
        )
        port = free_port()
        env = {
            **os.environ,
            "PKGBUILDER_HOME": str(home),
            "TEMPORAL_ADDRESS": f"localhost:{port}",
            "PKGBUILDER_HEADLESS": "1",
        }
        server = start_server(variants["this"][0], home, port, env)
        try:
            for name, (command, src) in variants.items():  # the server's and page cache
                one_run(command, root, {**env, "PYTHONPATH": src}, port, f"warm-{name}", only)
            for run in range(args.runs):
                order = list(variants.items())  # ABBA: neither always runs right after the other
                for name, (command, src) in order if run % 2 == 0 else reversed(order):
                    time.sleep(args.pause)
                    run_env = {**env, "PYTHONPATH": src}
                    figures = one_run(command, root, run_env, port, f"{name}{run}", only)
                    runs[name].append(figures)
                    shown = ", ".join(f"{k} {figures[k]:.0f}" for k in FIGURES if k in figures)
                    print(f"run {run + 1} {name}: {shown}", file=sys.stderr)
        finally:
            server.terminate()
            server.wait(timeout=30)
    medians = {
        name: {k: statistics.median(r[k] for r in rs if k in r) for k in FIGURES}
        for name, rs in runs.items()
    }
    if args.json:
        print(json.dumps({"runs": runs, "medianMs": medians}, indent=2))
        return 0
    print(
        f"pkgbuilder build, server up, {'all' if args.all else 'one'} of {args.packages} "
        f"packages, median of {args.runs} runs (ms):"
    )
    print(f"  {'':<18}" + "".join(f"{name:>9}" for name in medians))
    for k in FIGURES:
        print(f"  {k:<18}" + "".join(f"{m[k]:>9.0f}" for m in medians.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
