"""What ``pkgbuilder build`` loads before it starts the suite (issue 17): the libraries that
only some features use stay unloaded, and the CLI loads with the garbage collector paused.
Each check runs in a fresh interpreter, so that this test process's imports do not count."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import copy_workspace

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo-monorepo"

# Loaded on first use only; what each costs a command's start here (2-core machine).
OPTIONAL = {
    "anthropic": "the model SDK (~1.3 s): LLM worker only",
    "git": "GitPython (~45 ms and two `git version` processes): object-model reads only",
    "yaml": "the YAML parser (~8 ms): pnpm workspaces only",
    "urllib.request": "the HTTP client (~5 ms): remote cache and registries only",
    "http.client": "the HTTP client (~5 ms): remote cache and registries only",
    "sqlite3": "the queue database: 'pkgbuilder queue' only",
    "webbrowser": "'pkgbuilder report --open' only",
}

BUILD_PATH = """
import json, sys
from pathlib import Path
from pkgbuilder.cli.entry import load
load()  # what the executable loads: every command's module
from pkgbuilder.runtime.worker import make_main_worker  # the in-process worker
from pkgbuilder.activities.catalog import build_activities
from pkgbuilder.cache.engine import hash_packages
from pkgbuilder.cache.sources import WorkingTree
from pkgbuilder.config import load_settings
from pkgbuilder.vcs import Repository
from pkgbuilder.workspace.discovery import discover_workspace

root = Path(sys.argv[1])
settings = load_settings(root)
build_activities(settings)
graph = discover_workspace(root, None)  # the CLI's check and the suite's INITIALIZE
hash_packages(WorkingTree(root), graph.packages, settings)  # the suite's PLAN (git, lockfile)
Repository(root).toplevel()
loaded = sorted(m for m in sys.argv[2:] if m in sys.modules)
Repository(root).head_commit()  # read by GitPython's object model: loads it
print(json.dumps({"loaded": loaded, "gitAfterObjectRead": "git" in sys.modules}))
"""


def test_the_build_path_loads_no_optional_library(tmp_path: Path) -> None:
    root = copy_workspace(DEMO, tmp_path / "demo")
    proc = subprocess.run(
        [sys.executable, "-c", BUILD_PATH, str(root), *OPTIONAL],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(proc.stdout)
    assert result["loaded"] == [], {m: OPTIONAL[m] for m in result["loaded"]}
    assert result["gitAfterObjectRead"] is True  # the check sees a library that does load


LOAD = """
import gc, json
from pkgbuilder.cli.entry import load
before = sum(s["collections"] for s in gc.get_stats())
run = load()
print(json.dumps({
    "collections": sum(s["collections"] for s in gc.get_stats()) - before,
    "frozen": gc.get_freeze_count(),
    "enabled": gc.isenabled(),
    "entry": f"{run.__module__}:{run.__name__}",
}))
"""


def test_the_executable_loads_the_cli_with_the_collector_paused() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["pkgbuilder"] == "pkgbuilder.cli.entry:main"
    proc = subprocess.run(
        [sys.executable, "-c", LOAD], capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(proc.stdout)
    assert result["entry"] == "pkgbuilder.cli.app:main"
    assert result["collections"] == 0  # no collection while the CLI loaded
    assert result["frozen"] > 20_000  # what was loaded is out of later collections' sight
    assert result["enabled"] is True  # and the command runs with the collector on
