#!/usr/bin/env python3
"""pkgbuilder beside its peers on one DAG: `pnpm -r run build`, `turbo run build` (cache off)
and pkgbuilder (server up, and embedded), alternating, N rounds (issue 17).

One seeded DAG (bench/suite_makespan.py's generator: build scripts that sleep known times, no
test step, so every runner does the same work) is written twice: as npm workspaces for
pkgbuilder and as pnpm workspaces (``workspace:*`` ranges, turbo.json with the build task's
cache off) for pnpm and turbo. pnpm 9 and turbo 2 are installed from the npm registry into a
tools directory on first use. Prints each runner's median wall and bound/wall, and
pkgbuilder's per-package orchestration cost broken down from the workflows' own history
timestamps (server-up runs):

    child span        child workflow start -> close
    activity run      time inside activities (the scripts run here)
    overhead          span - activity run (workflow tasks, dispatch, report)
    wf tasks          workflow task scheduled -> completed, summed per child
    dispatch          activity scheduled -> started, summed per child
    after deps        a child's start - its last dependency's close (the parent's reaction,
                      plus any wait for a free slot under the concurrency limit)
    fixed...          the build's one-time costs: CLI start -> suite start, suite start ->
                      first child, last child -> suite end, suite end -> CLI exit

Usage::

    python bench/peers.py [--packages 88] [--concurrency 4] [--min-ms 200] [--max-ms 1200]
        [--rounds 3] [--runners pkgbuilder-server,pkgbuilder-embedded,pnpm,turbo] [--json]

The issue's two DAGs: ``--min-ms 200 --max-ms 1200`` and ``--min-ms 800 --max-ms 4800``.
"""

from __future__ import annotations

import argparse
import asyncio
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite_makespan import (
    BenchPackage,
    compile_sources,
    dag_figures,
    free_port,
    generate_dag,
    start_server,
    write_monorepo,
)

TOOLS = Path(os.environ.get("PKGBUILDER_BENCH_TOOLS", Path.home() / ".cache" / "pkgbuilder-bench"))
PEER_VERSIONS = {"pnpm": "9", "turbo": "2"}
RUNNERS = ("pkgbuilder-server", "pkgbuilder-embedded", "pnpm", "turbo")


def ensure_tools() -> dict[str, Path]:
    """pnpm and turbo from the npm registry, once, into TOOLS."""
    bins = {name: TOOLS / "node_modules" / ".bin" / name for name in PEER_VERSIONS}
    if not all(b.exists() for b in bins.values()):
        TOOLS.mkdir(parents=True, exist_ok=True)
        specs = [f"{name}@{v}" for name, v in PEER_VERSIONS.items()]
        subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
                str(TOOLS),
                *specs,
            ],
            check=True,
        )
    return bins


def pnpm_version(pnpm: Path) -> str:
    return subprocess.run(
        [str(pnpm), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()


def write_pnpm_copy(npm_root: Path, dest: Path, packages: list[BenchPackage], pnpm: Path) -> None:
    """The same DAG as pnpm workspaces, with turbo.json (build task, cache off)."""
    shutil.copytree(
        npm_root,
        dest,
        ignore=shutil.ignore_patterns(
            ".git", "node_modules", "package-lock.json", "pkgbuilder.toml"
        ),
    )
    root_manifest = json.loads((dest / "package.json").read_text())
    root_manifest.pop("workspaces", None)
    root_manifest["packageManager"] = f"pnpm@{pnpm_version(pnpm)}"
    (dest / "package.json").write_text(json.dumps(root_manifest, indent=2) + "\n")
    (dest / "pnpm-workspace.yaml").write_text("packages:\n  - 'packages/*/*'\n")
    (dest / "turbo.json").write_text(
        json.dumps(
            {
                "$schema": "https://turbo.build/schema.json",
                "tasks": {"build": {"dependsOn": ["^build"], "cache": False}},
            },
            indent=2,
        )
        + "\n"
    )
    for package in packages:
        path = dest / package.path / "package.json"
        manifest = json.loads(path.read_text())
        manifest["dependencies"] = {dep: "workspace:*" for dep in package.dependencies}
        manifest["scripts"] = {"build": manifest["scripts"]["build"]}
        path.write_text(json.dumps(manifest, indent=2) + "\n")
    env = {**os.environ, "PATH": f"{pnpm.parent}:{os.environ['PATH']}"}
    subprocess.run([str(pnpm), "install", "--offline", "--silent"], cwd=dest, env=env, check=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=dest, check=True)
    subprocess.run(["git", "add", "."], cwd=dest, check=True)
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "bench"],
        cwd=dest,
        check=True,
    )


def timed(
    argv: list[str], cwd: Path, env: dict[str, str]
) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    proc = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600, check=False
    )
    return time.monotonic() - started, proc


def run_peer(name: str, root: Path, bins: dict[str, Path], concurrency: int) -> float:
    env = {
        **os.environ,
        "PATH": f"{bins['pnpm'].parent}:{os.environ['PATH']}",
        "TURBO_TELEMETRY_DISABLED": "1",
        "DO_NOT_TRACK": "1",
        "TURBO_NO_UPDATE_NOTIFIER": "1",
    }
    if name == "pnpm":
        argv = [str(bins["pnpm"]), "-r", f"--workspace-concurrency={concurrency}", "run", "build"]
    else:
        argv = [
            str(bins["turbo"]),
            "run",
            "build",
            f"--concurrency={concurrency}",
            "--output-logs=none",
            "--log-order=stream",
        ]
    wall, proc = timed(argv, root, env)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed: {(proc.stderr or proc.stdout)[-800:]}")
    return wall


class Server:
    """A `pkgbuilder server` kept up across rounds (the team setup)."""

    def __init__(self, home: Path) -> None:
        self.home, self.port = home, free_port()
        exe = Path(sys.executable).with_name("pkgbuilder")
        self.exe = str(exe) if exe.exists() else "pkgbuilder"
        self.env = {
            **os.environ,
            "PKGBUILDER_HOME": str(home),
            "TEMPORAL_ADDRESS": f"localhost:{self.port}",
            "PKGBUILDER_HEADLESS": "1",
        }
        self.proc = start_server([self.exe], home, self.port, self.env)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def run_pkgbuilder(
    root: Path, concurrency: int, env: dict[str, str], exe: str, build_id: str
) -> float:
    argv = [
        exe,
        "build",
        str(root),
        "--json",
        "--concurrency",
        str(concurrency),
        "--build-id",
        build_id,
        "--force",
        "--rebuild",
    ]
    wall, proc = timed(argv, root, env)
    if proc.returncode == 2 and "no such option" in proc.stderr:  # older flags
        argv = [a for a in argv if a not in ("--force", "--rebuild")]
        wall, proc = timed(argv, root, env)
    if proc.returncode != 0:
        raise RuntimeError(
            f"pkgbuilder failed ({proc.returncode}): {_failed_packages(proc.stdout)}"
            f"{proc.stderr[-800:]}"
        )
    return wall


def _failed_packages(stdout: str) -> str:
    """The failed packages' errors and first failure, from the build's --json summary."""
    try:
        reports = json.loads(stdout).get("packageReports", [])
    except ValueError:
        return ""
    lines = [
        f"{r.get('packageName')}: {r.get('error')} {(r.get('failures') or [{}])[0]}\n"
        for r in reports
        if r.get("status") == "failed"
    ]
    return "".join(lines)


async def breakdown(
    address: str, build_id: str, packages: list[BenchPackage], run_ms: tuple[float, float]
) -> dict[str, float]:
    """Per-package means (ms) from the children's histories, plus the suite's hand-over.

    span: the child's first to last event; activity: inside activities; overhead: the rest
    (orchestration inside the child); wft: workflow-task latency (scheduled to completed);
    toFirstActivity: child start to its first activity starting (the child's start-up);
    afterLastActivity: the last activity's end to the child's completion (its last workflow
    task with the report write); handover: in the suite, the last child completion before
    a child's start to that start being recorded (the median over the build); afterDeps:
    a package's start minus its last dependency's end (includes waiting for a free slot);
    ``run_ms``: the CLI run's (start, end) in epoch ms, for the fixed costs."""
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import Client

    from pkgbuilder.models.common import name_slug

    client = await Client.connect(address)
    deps = {p.name: p.dependencies for p in packages}
    spans: dict[str, tuple[float, float]] = {}
    sums: dict[str, list[float]] = {
        "span": [],
        "activity": [],
        "overhead": [],
        "wft": [],
        "dispatch": [],
        "toFirstActivity": [],
        "afterLastActivity": [],
    }
    by_id: dict[str, str] = {}
    async for wf in client.list_workflows(
        f'WorkflowType="PackageBuildWorkflow" AND WorkflowId STARTS_WITH "build-{build_id}-"'
    ):
        history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        events = list(history.events)
        t = [e.event_time.ToMicroseconds() / 1000 for e in events]
        start, end = t[0], t[-1]
        act_run = wft = dispatch = 0.0
        first_act: float | None = None
        last_act = start
        scheduled: dict[int, float] = {}
        started: dict[int, float] = {}
        for e, ts in zip(events, t, strict=True):
            kind = e.event_type
            if kind in (
                EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
                EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
            ):
                scheduled[e.event_id] = ts
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                wft += ts - scheduled.get(
                    e.workflow_task_completed_event_attributes.scheduled_event_id, ts
                )
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                sid = e.activity_task_started_event_attributes.scheduled_event_id
                dispatch += ts - scheduled.get(sid, ts)
                started[sid] = ts
                first_act = ts if first_act is None else first_act
            elif kind in (
                EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
                EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
            ):
                attrs = (
                    e.activity_task_completed_event_attributes
                    if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
                    else e.activity_task_failed_event_attributes
                )
                act_run += ts - started.get(attrs.scheduled_event_id, ts)
                last_act = ts
        name = next(
            (p.name for p in packages if wf.id == f"build-{build_id}-{name_slug(p.name)}"), wf.id
        )
        by_id[wf.id] = name
        spans[name] = (start, end)
        sums["span"].append(end - start)
        sums["activity"].append(act_run)
        sums["overhead"].append(end - start - act_run)
        sums["wft"].append(wft)
        sums["dispatch"].append(dispatch)
        if first_act is not None:
            sums["toFirstActivity"].append(first_act - start)
            sums["afterLastActivity"].append(end - last_act)
    handover = [
        spans[n][0] - max(spans[d][1] for d in deps[n])
        for n in spans
        if deps.get(n) and all(d in spans for d in deps[n])
    ]
    out = {k: statistics.mean(v) for k, v in sums.items() if v}
    if handover_ms := await _suite_handover(client, f"suite-{build_id}"):
        out["handover"] = handover_ms
    out.update(await _fixed_costs(client, f"suite-{build_id}", spans, run_ms))
    if handover:
        out["afterDeps"] = statistics.median(handover)
    out["children"] = float(len(spans))
    return out


async def _suite_handover(client: Any, suite_id: str) -> float | None:
    """Median ms from a child's completion to the next child's start in the suite's history
    (the parent's workflow task plus the server starting the child): the completion taken
    is the last one before that start, the one that freed the slot or the dependency."""
    from temporalio.api.enums.v1 import EventType

    history = await client.get_workflow_handle(suite_id).fetch_history()
    gaps: list[float] = []
    done: float | None = None
    for e in history.events:
        ts = e.event_time.ToMicroseconds() / 1000
        if e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
            done = ts
        elif e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED and done:
            gaps.append(ts - done)
            done = None
    return statistics.median(gaps) if gaps else None


async def _fixed_costs(
    client: Any, suite_id: str, spans: dict[str, tuple[float, float]], run_ms: tuple[float, float]
) -> dict[str, float]:
    """The build's costs paid once (ms): the CLI's start to the suite's start (imports, the
    in-process worker, the client), the suite's start to its first child's, its last child's
    end to the suite's end (verify, summary) and the suite's end to the CLI's exit."""
    history = await client.get_workflow_handle(suite_id).fetch_history()
    events = list(history.events)
    first = events[0].event_time.ToMicroseconds() / 1000
    last = events[-1].event_time.ToMicroseconds() / 1000
    out = {"fixedCliToSuite": first - run_ms[0]}
    if spans:
        out["fixedSuiteToFirstChild"] = min(s for s, _ in spans.values()) - first
        out["fixedLastChildToSuiteEnd"] = last - max(e for _, e in spans.values())
    out["fixedSuiteEndToExit"] = run_ms[1] - last
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", type=int, default=88)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--min-ms", type=int, default=200)
    parser.add_argument("--max-ms", type=int, default=1200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runners", default=",".join(RUNNERS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    compile_sources()
    runners = [r for r in args.runners.split(",") if r]
    if unknown := set(runners) - set(RUNNERS):
        parser.error(f"unknown runners: {sorted(unknown)}")
    packages = generate_dag(args.packages, args.seed, args.min_ms, args.max_ms)
    fig = dag_figures(packages, args.concurrency)
    bins = ensure_tools() if {"pnpm", "turbo"} & set(runners) else {}
    walls: dict[str, list[float]] = {r: [] for r in runners}
    costs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="pkgbuilder-peers-") as tmp:
        base = Path(tmp)
        npm_root = base / "npm"
        write_monorepo(npm_root, packages, args.concurrency, test_script=False)
        subprocess.run(
            ["npm", "ci", "--offline", "--no-audit", "--no-fund", "--silent"],
            cwd=npm_root,
            check=True,
        )
        pnpm_root = base / "pnpm"
        if bins:
            write_pnpm_copy(npm_root, pnpm_root, packages, bins["pnpm"])
        server = Server(base / "home-server") if "pkgbuilder-server" in runners else None
        try:
            for rnd in range(args.rounds):
                order = runners if rnd % 2 == 0 else list(reversed(runners))
                for runner in order:
                    if runner == "pkgbuilder-server":
                        assert server is not None
                        build_id = f"peers{rnd}"
                        wall = run_pkgbuilder(
                            npm_root, args.concurrency, server.env, server.exe, build_id
                        )
                        walls[runner].append(wall)
                        ended = time.time() * 1000  # the run's window, for its fixed costs
                        run_ms = (ended - wall * 1000, ended)
                        address = f"localhost:{server.port}"
                        costs.append(asyncio.run(breakdown(address, build_id, packages, run_ms)))
                    elif runner == "pkgbuilder-embedded":
                        home = base / f"home-embedded-{rnd}"
                        env = {
                            **os.environ,
                            "PKGBUILDER_HOME": str(home),
                            "TEMPORAL_ADDRESS": f"localhost:{free_port()}",
                            "PKGBUILDER_HEADLESS": "1",
                        }
                        exe = str(Path(sys.executable).with_name("pkgbuilder"))
                        walls[runner].append(
                            run_pkgbuilder(npm_root, args.concurrency, env, exe, f"emb{rnd}")
                        )
                    else:
                        walls[runner].append(run_peer(runner, pnpm_root, bins, args.concurrency))
                    print(f"round {rnd + 1} {runner}: {walls[runner][-1]:.1f}s", file=sys.stderr)
        finally:
            if server is not None:
                server.stop()
    result: dict[str, Any] = {
        "dag": {
            "packages": fig.packages,
            "concurrency": fig.concurrency,
            "work": fig.work,
            "criticalPath": fig.critical_path,
            "bound": fig.bound,
            "listSchedule": fig.list_schedule,
            "buildMs": [args.min_ms, args.max_ms],
        },
        "runners": {
            r: {
                "walls": w,
                "median": statistics.median(w),
                "boundOverWall": fig.bound / statistics.median(w),
            }
            for r, w in walls.items()
            if w
        },
    }
    if costs:
        result["pkgbuilderPerPackageMs"] = {
            k: statistics.median(c[k] for c in costs if k in c) for k in costs[0]
        }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    d = result["dag"]
    print(
        f"DAG: {d['packages']} packages, builds {args.min_ms}-{args.max_ms} ms, concurrency "
        f"{d['concurrency']}: W {d['work']:.1f}s, L {d['criticalPath']:.1f}s, bound "
        f"{d['bound']:.1f}s, ideal list schedule {d['listSchedule']:.1f}s"
    )
    print(f"{'runner':<22}{'median wall':>12}{'bound/wall':>12}   rounds")
    for r, v in result["runners"].items():
        rounds = " ".join(f"{w:.1f}" for w in v["walls"])
        print(f"{r:<22}{v['median']:>11.1f}s{v['boundOverWall']:>12.2f}   {rounds}")
    if costs:
        c = result["pkgbuilderPerPackageMs"]
        print(
            "pkgbuilder per package (server up, median of rounds, ms): "
            + ", ".join(f"{k} {v:.0f}" for k, v in c.items() if k != "children")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
