#!/usr/bin/env python3
"""Suite makespan benchmark: how close does ``pkgbuilder build`` get to the best possible
schedule?

Generates a seeded random layered DAG of N packages as an npm-workspaces monorepo whose
``build`` scripts sleep known durations (``test`` is trivial), runs
``pkgbuilder build DIR --json --concurrency C`` on an embedded Temporal server, and prints

    W      total work (sum of build sleeps)
    L      critical path (heaviest dependency chain)
    bound  max(W / C, L): no schedule on C slots can be faster
    wall   wall-clock time of the whole command (server boot included)
    span   first package start to last package end, from the suite summary
    efficiency = bound / wall and bound / span

Usage::

    python bench/suite_makespan.py [--packages 88] [--concurrency 4] [--seed 7]
        [--min-ms 2000] [--max-ms 8000] [--keep DIR] [--generate-only] [--build-only]
        [--server embedded|running] [--repeat N] [--json]

Issue 2 asks for efficiency >= 0.90 at 88 packages / concurrency 4 (pnpm -r measured
0.75-0.80 and turbo 0.47 on the same kind of DAG).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pkgbuilder.models.build import PackageNode
from pkgbuilder.models.common import Category
from pkgbuilder.workspace.graph import (
    critical_path,
    critical_path_length,
    simulate_list_schedule,
    total_work,
)

SCOPE = "@bench"
# Share of packages per category (layer order); validators have no dependencies.
CATEGORY_SHARES: list[tuple[Category, float]] = [
    (Category.VALIDATOR, 0.15),
    (Category.CORE, 0.20),
    (Category.UTILITY, 0.30),
    (Category.SERVICE, 0.20),
    (Category.UI, 0.10),
    (Category.SUITE, 0.05),
]
# How many dependencies a non-validator package picks from lower layers, and how likely.
DEPENDENCY_COUNTS = ([0, 1, 2, 3], [0.1, 0.35, 0.35, 0.2])

SLEEP_JS = """\
'use strict';
// Benchmark build step: block for exactly argv[2] milliseconds (no CPU burned).
const ms = Number(process.argv[2]);
if (!Number.isInteger(ms) || ms < 0) {
  process.stderr.write(`sleep.js: expected milliseconds, got ${process.argv[2]}\\n`);
  process.exit(2);
}
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
"""


@dataclass(frozen=True)
class BenchPackage:
    """One generated package: its build sleeps ``duration_ms``."""

    name: str
    category: Category
    dependencies: tuple[str, ...]
    duration_ms: int

    @property
    def path(self) -> str:
        return f"packages/{self.category.value}/{self.name.split('/')[-1]}"

    def node(self) -> PackageNode:
        return PackageNode(
            name=self.name,
            path=self.path,
            category=self.category,
            layer=self.category.layer,
            dependencies=list(self.dependencies),
        )


def generate_dag(count: int, seed: int, min_ms: int, max_ms: int) -> list[BenchPackage]:
    """A seeded random layered DAG: every dependency points to a lower layer."""
    if count < 1 or min_ms < 0 or max_ms < min_ms:
        raise ValueError("need count >= 1 and 0 <= min_ms <= max_ms")
    rng = random.Random(seed)
    sizes = [max(1, round(count * share)) for _, share in CATEGORY_SHARES]
    while sum(sizes) > count:  # rounding (or a tiny count) overshoots: trim the top layers
        sizes[max(i for i, s in enumerate(sizes) if s > 0)] -= 1
    sizes[2] += count - sum(sizes)
    packages: list[BenchPackage] = []
    for (category, _), size in zip(CATEGORY_SHARES, sizes, strict=True):
        lower = [p.name for p in packages]
        for index in range(size):
            wanted = rng.choices(*DEPENDENCY_COUNTS)[0] if category.layer and lower else 0
            deps = tuple(sorted(rng.sample(lower, min(wanted, len(lower)))))
            packages.append(
                BenchPackage(
                    name=f"{SCOPE}/{category.value}-{index:03d}",
                    category=category,
                    dependencies=deps,
                    duration_ms=rng.randint(min_ms, max_ms),
                )
            )
    return packages


@dataclass(frozen=True)
class DagFigures:
    """Seconds."""

    packages: int
    concurrency: int
    work: float  # W
    critical_path: float  # L
    bound: float  # max(W / C, L)
    list_schedule: float  # ideal critical-path list scheduling with zero overhead
    critical_chain: list[str]


def dag_figures(packages: list[BenchPackage], concurrency: int) -> DagFigures:
    nodes = [p.node() for p in packages]
    weights = {p.name: p.duration_ms / 1000 for p in packages}
    work = total_work(nodes, weights)
    length = critical_path_length(nodes, weights)
    return DagFigures(
        packages=len(packages),
        concurrency=concurrency,
        work=work,
        critical_path=length,
        bound=max(work / concurrency, length),
        list_schedule=simulate_list_schedule(nodes, weights, concurrency),
        critical_chain=critical_path(nodes, weights),
    )


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_monorepo(
    root: Path, packages: list[BenchPackage], concurrency: int, test_script: bool = True
) -> None:
    """Write the npm-workspaces monorepo, its lockfile and a git repo with one commit.

    Each package's ``build`` sleeps its duration; ``test`` (unless ``test_script`` is False)
    is a trivial script, so the test step costs only the package manager's start-up.
    """
    trivial_test = {"test": "node ../../../scripts/sleep.js 0"} if test_script else {}
    root.mkdir(parents=True, exist_ok=True)
    _write_json(
        root / "package.json",
        {"name": "bench-monorepo", "private": True, "workspaces": ["packages/*/*"]},
    )
    (root / "scripts").mkdir(exist_ok=True)
    (root / "scripts" / "sleep.js").write_text(SLEEP_JS, encoding="utf-8")
    (root / ".gitignore").write_text("node_modules/\nproduction/reports/\n.pkgbuilder/\n")
    (root / "pkgbuilder.toml").write_text(
        f"maxConcurrentBuilds = {concurrency}\n\n[testing]\nenableCoverage = false\n"
    )
    for package in packages:
        _write_json(
            root / package.path / "package.json",
            {
                "name": package.name,
                "version": "1.0.0",
                "private": True,
                "scripts": {
                    "build": f"node ../../../scripts/sleep.js {package.duration_ms}",
                    **trivial_test,
                },
                "dependencies": {dep: "1.0.0" for dep in package.dependencies},
            },
        )
    _run(["npm", "install", "--package-lock-only", "--offline", "--no-audit", "--no-fund"], root)
    _run(["git", "init", "-q", "-b", "main"], root)
    _run(["git", "add", "."], root)
    _run(["git", "commit", "-q", "-m", "bench monorepo"], root)


def _run(argv: list[str], cwd: Path) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed in {cwd}: {proc.stderr.strip()[-500:]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@dataclass(frozen=True)
class Measured:
    """What the suite summary says happened (seconds)."""

    span: float | None  # first startTime to last endTime
    statuses: dict[str, int]
    order_violations: list[str]  # "dependent started before dependency ended"
    mean_overhead: float | None  # per package: (end - start) - build sleep
    slot_busy: float | None  # sum of package durations / (concurrency * span)
    # Mean per package: npm run build minus the sleep, the test step, and everything else
    # inside the child (dependency check, install, reports, workflow/activity latency).
    overhead_breakdown: dict[str, float]


def measure(summary: dict[str, Any], packages: list[BenchPackage], concurrency: int) -> Measured:
    """Span, status counts, ordering check and overhead breakdown from ``--json`` output."""
    reports = {r["packageName"]: r for r in summary.get("packageReports", [])}
    statuses: dict[str, int] = {}
    for report in reports.values():
        statuses[report["status"]] = statuses.get(report["status"], 0) + 1
    starts = {n: _parse_time(r.get("startTime")) for n, r in reports.items()}
    ends = {n: _parse_time(r.get("endTime")) for n, r in reports.items()}
    known_starts = [t for t in starts.values() if t]
    known_ends = [t for t in ends.values() if t]
    span = (
        (max(known_ends) - min(known_starts)).total_seconds()
        if known_starts and known_ends
        else None
    )
    violations: list[str] = []
    overheads: list[float] = []
    busy = 0.0
    parts: dict[str, list[float]] = {"buildScript": [], "test": [], "other": []}
    for package in packages:
        start, end = starts.get(package.name), ends.get(package.name)
        if start and end:
            took = (end - start).total_seconds()
            busy += took
            overheads.append(took - package.duration_ms / 1000)
            metrics = reports[package.name].get("buildMetrics")
            if metrics:
                build_s = metrics.get("buildTime", 0) / 1000
                test_s = metrics.get("testTime", 0) / 1000
                parts["buildScript"].append(build_s - package.duration_ms / 1000)
                parts["test"].append(test_s)
                parts["other"].append(took - build_s - test_s)
        for dep in package.dependencies:
            dep_end = ends.get(dep)
            if start and (dep_end is None or start < dep_end):
                violations.append(f"{package.name} started before {dep} ended")
    mean = sum(overheads) / len(overheads) if overheads else None
    slot_busy = busy / (concurrency * span) if span else None
    breakdown = {k: sum(v) / len(v) for k, v in parts.items() if v}
    return Measured(span, statuses, violations, mean, slot_busy, breakdown)


def _wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no server on port {port} after {timeout:.0f}s")


def compile_sources() -> None:
    """Write pkgbuilder's ``.pyc`` files once, as ``pip install`` does for a regular install.

    An editable install leaves them to the first import, and where ``PYTHONDONTWRITEBYTECODE``
    is set (it is on some CI machines) every ``pkgbuilder`` command would compile its whole
    source again: about 0.3 s per command start here, which no user with a normal install
    pays. ``compileall`` writes them even then; Python reads them either way."""
    import compileall

    import pkgbuilder

    compileall.compile_dir(str(Path(pkgbuilder.__file__).parent), quiet=1)


def start_server(
    command: list[str], home: Path, port: int, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """A headless ``pkgbuilder server`` on ``port`` with its database in ``home``, once it
    accepts connections (the benches' "server up" setup)."""
    home.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [*command, "server", "--port", str(port), "--headless", "--db", str(home / "temporal.db")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for_port(port)
    time.sleep(1.0)  # namespace registration
    return proc


def run_build(
    root: Path, concurrency: int, home: Path, server: str = "embedded"
) -> tuple[float, int, str, str]:
    """Run ``pkgbuilder build``; returns (wall s, rc, stdout, stderr).

    ``server="embedded"``: nothing listens, so the build boots (and stops) its own dev server
    inside the measured wall time. ``server="running"``: a ``pkgbuilder server`` is started
    first, as in a team's setup, and only the build itself (with its in-process worker) is
    measured.
    """
    exe = Path(sys.executable).with_name("pkgbuilder")
    command = [str(exe) if exe.exists() else "pkgbuilder"]
    port = free_port()
    env = {
        **os.environ,
        "PKGBUILDER_HOME": str(home),
        "TEMPORAL_ADDRESS": f"localhost:{port}",
        "PKGBUILDER_HEADLESS": "1",
    }
    server_proc = start_server(command, home, port, env) if server == "running" else None
    # --force: the makespan is about builds that run, never cache hits of an earlier run.
    argv = [*command, "build", str(root), "--json", "--concurrency", str(concurrency), "--force"]
    try:
        started = time.monotonic()
        proc = subprocess.run(
            argv, cwd=root, env=env, capture_output=True, text=True, timeout=3600, check=False
        )
        return time.monotonic() - started, proc.returncode, proc.stdout, proc.stderr
    finally:
        if server_proc is not None:
            server_proc.terminate()
            server_proc.wait(timeout=30)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", type=int, default=88)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--min-ms", type=int, default=2000)
    parser.add_argument("--max-ms", type=int, default=8000)
    parser.add_argument("--keep", type=Path, help="write the monorepo here and keep it")
    parser.add_argument("--generate-only", action="store_true", help="do not run pkgbuilder")
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="no test script (what `pnpm -r run build` compares against)",
    )
    parser.add_argument(
        "--server",
        choices=["embedded", "running"],
        default="embedded",
        help="embedded: the build boots its own server (in the wall time); running: a "
        "pkgbuilder server is started before the measurement",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure N runs, each on a fresh copy of the monorepo and a fresh PKGBUILDER_HOME "
        "(a reused one would let later runs schedule by earlier runs' durations)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.repeat < 1 or (args.repeat > 1 and (args.keep or args.generate_only)):
        parser.error("--repeat needs N >= 1 and cannot be combined with --keep/--generate-only")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    compile_sources()
    packages = generate_dag(args.packages, args.seed, args.min_ms, args.max_ms)
    figures = dag_figures(packages, args.concurrency)
    if args.keep and args.keep.exists() and any(args.keep.iterdir()):
        print(f"{args.keep} is not empty: pass an empty or new --keep directory.", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="pkgbuilder-bench-"))
    try:
        runs: list[dict[str, Any]] = []
        kept = str(args.keep.resolve()) if args.keep else None
        for index in range(args.repeat):
            root = args.keep.resolve() if args.keep else scratch / f"monorepo-{index}"
            write_monorepo(root, packages, args.concurrency, test_script=not args.build_only)
            if args.generate_only:
                break
            run = _measure_run(root, packages, figures, args, scratch / f"home-{index}")
            if run is None:
                return 1
            runs.append(run)
            if args.repeat > 1 and not args.json:
                print(
                    f"run {index + 1}/{args.repeat}: wall {run['wall']:.1f} s, "
                    f"efficiency {run['efficiency']:.3f}",
                    file=sys.stderr,
                )
        result: dict[str, Any] = {"dag": asdict(figures), "monorepo": kept}
        if runs:
            result["run"] = runs[0] if len(runs) == 1 else _aggregate(runs)
            if len(runs) > 1:
                result["runs"] = runs
        _report(result, args.json)
        return 0 if all(r["exitCode"] == 0 for r in runs) else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _measure_run(
    root: Path,
    packages: list[BenchPackage],
    figures: DagFigures,
    args: argparse.Namespace,
    home: Path,
) -> dict[str, Any] | None:
    wall, rc, stdout, stderr = run_build(root, args.concurrency, home, args.server)
    try:
        summary = json.loads(stdout)
    except json.JSONDecodeError:
        print(f"pkgbuilder build exited {rc} without JSON:\n{stderr[-3000:]}", file=sys.stderr)
        return None
    measured = measure(summary, packages, args.concurrency)
    return {
        "exitCode": rc,
        "wall": wall,
        "efficiency": figures.bound / wall,
        **asdict(measured),
        "spanEfficiency": figures.bound / measured.span if measured.span else None,
    }


def _aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run by wall time, with every run's wall and efficiency alongside."""
    ordered = sorted(runs, key=lambda r: r["wall"])
    median = dict(ordered[len(ordered) // 2])
    median["walls"] = [r["wall"] for r in runs]
    median["efficiencies"] = [r["efficiency"] for r in runs]
    return median


def _report(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    dag = result["dag"]
    print(f"packages      {dag['packages']}  (concurrency {dag['concurrency']})")
    print(f"W  total work {dag['work']:8.1f} s   W/C {dag['work'] / dag['concurrency']:8.1f} s")
    print(f"L  crit. path {dag['critical_path']:8.1f} s   ({len(dag['critical_chain'])} packages)")
    print(f"bound         {dag['bound']:8.1f} s   = max(W/C, L)")
    print(f"list schedule {dag['list_schedule']:8.1f} s   (ideal, zero overhead)")
    run = result.get("run")
    if result["monorepo"]:
        print(f"monorepo      {result['monorepo']}")
    if run is None:
        return
    print(f"wall          {run['wall']:8.1f} s   efficiency bound/wall = {run['efficiency']:.3f}")
    if "efficiencies" in run:
        effs = run["efficiencies"]
        print(
            f"runs          {len(effs)}: efficiency min {min(effs):.3f}, median "
            f"{run['efficiency']:.3f}, max {max(effs):.3f} (figures below: the median run)"
        )
    if run["span"] is not None:
        print(
            f"span          {run['span']:8.1f} s   efficiency bound/span = "
            f"{run['spanEfficiency']:.3f}  (first start to last end)"
        )
    if run["mean_overhead"] is not None:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in run["overhead_breakdown"].items())
        print(
            f"overhead      {run['mean_overhead']:8.2f} s per package (duration - sleep): {parts}"
        )
    if run["slot_busy"] is not None:
        print(f"slots busy    {run['slot_busy']:8.3f}     (package time / (C * span))")
    print(f"statuses      {run['statuses']}   exit code {run['exitCode']}")
    if run["order_violations"]:
        print(f"ORDER VIOLATIONS ({len(run['order_violations'])}): {run['order_violations'][:5]}")


if __name__ == "__main__":
    sys.exit(main())
