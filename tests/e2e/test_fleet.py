"""Many machines: two fleet workers (real ``pkgbuilder worker --workspace PATH --fleet``
processes) with separate git checkouts in different directories, standing for two hosts,
one real ``turborepo-remote-cache`` server and the session's Temporal dev server build one
12-package suite together. Worker B starts at another commit and refuses; A builds the
first package, then B (moved to the suite's commit) builds the rest while A drains, so B
must restore A's outputs from the remote cache. A second run, its starter with the remote cache
too, restores all 12 from it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from pkgbuilder.cli.fleet import suite_fleet
from pkgbuilder.config import load_settings
from pkgbuilder.models.build import BuildReport, PackageStatus, SuiteBuildInput
from pkgbuilder.runtime.worker import running_workers
from pkgbuilder.workflows.suite import SuiteBuildWorkflow
from tests.conftest import git, pkgbuilder_cli
from tests.support.remote_cache import RemoteCacheServer, running_remote_cache

# Each package's build reads every dependency's dist/index.txt (it fails without it) and
# writes its own, naming the worker that built it.
BUILD_JS = """\
const fs = require("fs");
const pkg = require("./package.json");
const lines = [`${pkg.name} built by ${process.env.FLEET_WORKER}`];
for (const dep of Object.keys(pkg.dependencies || {})) {
  lines.push(fs.readFileSync(`../${dep.split("/")[1]}/dist/index.txt`, "utf8"));
}
setTimeout(() => {
  fs.mkdirSync("dist", { recursive: true });
  fs.writeFileSync("dist/index.txt", lines.join("\\n"));
  fs.writeFileSync("dist/index.js", `module.exports = ${JSON.stringify(pkg.name)};\\n`);
}, 200);
"""
# One root (p01), so the first package built by B has a dependency A built.
DEPS = {
    1: [],
    2: [1],
    3: [1],
    4: [2, 3],
    5: [2],
    6: [4],
    7: [5, 6],
    8: [3],
    9: [7, 8],
    10: [9],
    11: [9],
    12: [10, 11],
}


def _name(i: int) -> str:
    return f"@fl/p{i:02d}"


def make_monorepo(root: Path) -> tuple[str, str]:
    """The 12-package workspace in two commits; returns (first commit, head)."""
    root.mkdir(parents=True)
    (root / "package.json").write_text(
        json.dumps({"name": "fleet-fixture", "private": True, "workspaces": ["packages/*"]})
    )
    (root / ".gitignore").write_text("node_modules/\ndist/\n")
    (root / "pkgbuilder.toml").write_text("[testing]\nenableCoverage = false\n")
    for i, deps in DEPS.items():
        pkg = root / "packages" / f"p{i:02d}"
        pkg.mkdir(parents=True)
        (pkg / "build.js").write_text(BUILD_JS)
        (pkg / "package.json").write_text(
            json.dumps(
                {
                    "name": _name(i),
                    "version": "1.0.0",
                    "main": "dist/index.js",
                    "scripts": {"build": "node build.js"},
                    "dependencies": {_name(d): "1.0.0" for d in deps},
                },
                indent=2,
            )
        )
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--package-lock-only", "--loglevel=error"],
        cwd=root,
        check=True,
        capture_output=True,
        timeout=120,
    )
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "twelve packages")
    first = git(root, "rev-parse", "HEAD").strip()
    (root / "README.md").write_text("fleet fixture\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "readme")
    return first, git(root, "rev-parse", "HEAD").strip()


def _worker_env(address: str, tq: str, server: RemoteCacheServer, home: Path, who: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PKGBUILDER_")}
    env.update(
        TEMPORAL_ADDRESS=address,
        TEMPORAL_TASK_QUEUE=tq,
        PKGBUILDER_HOME=str(home),
        REMOTE_CACHE_URL=server.url,
        REMOTE_CACHE_TOKEN=server.token,
        PKGBUILDER_CACHE_SIGNATURE_KEY="fleet-key",
        FLEET_WORKER=who,
    )
    return env


class FleetWorker:
    def __init__(self, checkout: Path, env: dict, log: Path) -> None:
        self.checkout, self.log = checkout, log
        self.proc = subprocess.Popen(
            [pkgbuilder_cli(), "worker", "--workspace", str(checkout), "--fleet"],
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    async def wait_for(self, fragment: str, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while fragment not in self.text():
            assert self.proc.poll() is None, self.text()
            assert time.monotonic() < deadline, f"no {fragment!r} in:\n{self.text()}"
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RemoteCacheServer]:
    with running_remote_cache(tmp_path / "remote") as srv:
        yield srv


@pytest.mark.slow
async def test_two_workers_on_two_checkouts_build_one_suite_through_the_remote_cache(
    client: Client, server: RemoteCacheServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin = tmp_path / "starter" / "repo"
    first, head = make_monorepo(origin)
    host_a, host_b = tmp_path / "host-a" / "repo", tmp_path / "host-b" / "src" / "repo"
    for checkout in (host_a, host_b):
        checkout.parent.mkdir(parents=True)
        git(checkout.parent, "clone", "-q", str(origin), str(checkout))
    git(host_b, "checkout", "-q", first)  # B is behind: it must refuse

    tq = f"tq-{uuid.uuid4()}"
    address = client.service_client.config.target_host
    settings = load_settings(
        origin, env={}, overrides={"temporal": {"taskQueue": tq, "llmTaskQueue": f"{tq}-llm"}}
    )
    spec = suite_fleet(settings, origin)
    assert spec.checkout.commit == head and spec.checkout.clean
    env = {who: _worker_env(address, tq, server, tmp_path / f"home-{who}", who) for who in "AB"}
    b = FleetWorker(host_b, env["B"], tmp_path / "worker-b.log")
    a: FleetWorker | None = None
    try:
        await b.wait_for("polling")
        async with running_workers(client, settings):
            handle = await client.start_workflow(
                SuiteBuildWorkflow.run,
                SuiteBuildInput(
                    build_id="fleet", workspace_root=str(origin), config=settings, fleet=spec
                ),
                id=f"suite-fleet-{uuid.uuid4().hex[:6]}",
                task_queue=tq,
                result_type=BuildReport,
            )
            await b.wait_for(f"the suite was started at {head[:12]}")
            a = FleetWorker(host_a, env["A"], tmp_path / "worker-a.log")
            deadline = time.monotonic() + 60
            while True:
                state = await handle.query(SuiteBuildWorkflow.get_state)
                if any(p.status is PackageStatus.SUCCESS for p in state.packages):
                    break
                assert time.monotonic() < deadline, a.text()
                await asyncio.sleep(0.1)
            git(host_b, "checkout", "-q", "main")  # B catches up; A drains and leaves
            a.stop()
            report = await asyncio.wait_for(handle.result(), 120)
    finally:
        for w in (a, b):
            if w is not None:
                w.stop()

    reports = {r.package_name: r for r in report.package_reports}
    assert {n: r.status for n, r in reports.items()} == {
        _name(i): PackageStatus.SUCCESS for i in DEPS
    }, {n: r.error for n, r in reports.items()}
    builder = {n: ("A" if str(host_a) in (r.built_by or "") else "B") for n, r in reports.items()}
    assert all(
        str(host_a) in (r.built_by or "") or str(host_b) in (r.built_by or "")
        for r in reports.values()
    ), {n: r.built_by for n, r in reports.items()}
    crossed = [
        (_name(i), _name(d))
        for i, deps in DEPS.items()
        for d in deps
        if builder[_name(i)] == "B" and builder[_name(d)] == "A"
    ]
    assert crossed, builder
    # B built the dependent against A's outputs, restored from the remote cache.
    for pkg, dep in crossed:
        built = (host_b / "packages" / pkg.split("/")[1] / "dist" / "index.txt").read_text()
        assert f"{pkg} built by B" in built and f"{dep} built by A" in built
    assert builder[_name(1)] == "A"
    assert "refused @fl/p01" in b.text() and f"is at {first[:12]}" in b.text()

    # Again, the starter now with the remote cache too: every package is a hit from the
    # remote (the only cache a fleet suite takes hits from), no worker needed.
    monkeypatch.setenv("REMOTE_CACHE_TOKEN", server.token)
    monkeypatch.setenv("PKGBUILDER_CACHE_SIGNATURE_KEY", "fleet-key")
    remote = settings.model_copy(
        update={
            "cache": settings.cache.model_copy(
                update={"remote": settings.cache.remote.model_copy(update={"url": server.url})}
            )
        }
    )
    async with running_workers(client, remote):
        again: BuildReport = await client.execute_workflow(
            SuiteBuildWorkflow.run,
            SuiteBuildInput(
                build_id="fleet2", workspace_root=str(origin), config=remote, fleet=spec
            ),
            id=f"suite-fleet2-{uuid.uuid4().hex[:6]}",
            task_queue=tq,
        )
    assert {r.package_name: r.status for r in again.package_reports} == {
        _name(i): PackageStatus.CACHED for i in DEPS
    }
    assert {r.cache.source.value for r in again.package_reports if r.cache and r.cache.source} == {
        "remote"
    }
    assert "built by A" in (origin / "packages/p01/dist/index.txt").read_text()


def test_fleet_mode_refuses_what_it_cannot_do_in_one_sentence(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "packages" / "a").mkdir(parents=True)
    (ws / "package.json").write_text(json.dumps({"name": "r", "workspaces": ["packages/*"]}))
    (ws / "packages" / "a" / "package.json").write_text(json.dumps({"name": "a"}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PKGBUILDER_")}
    env["TEMPORAL_ADDRESS"] = "127.0.0.1:1"  # nothing is started: refused before connecting

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [pkgbuilder_cli(), *args], env=env, capture_output=True, text=True, timeout=60
        )

    for proc, fragment in (
        (cli("build", str(ws), "--fleet"), "--fleet needs a git checkout"),
        (cli("worker", "--workspace", str(ws), "--fleet"), "a fleet worker serves a git checkout"),
    ):
        assert proc.returncode == 2, proc.stderr
        assert fragment in proc.stderr and "Traceback" not in proc.stderr + proc.stdout
    (ws / "pkgbuilder.toml").write_text('[verify]\ncommand = ["node", "-v"]\n')
    proc = cli("build", str(ws), "--fleet")
    assert proc.returncode == 2 and "--fleet cannot run verify.command" in proc.stderr
