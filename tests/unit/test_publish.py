"""Publish activities against a real Verdaccio with real npm: idempotence, the bump rule,
dry run, credentials and the refusals. Temporal's retry is exercised through the SDK's
ActivityEnvironment (attempt number and schedule time of a retry); the end-to-end suite runs
live in test_publish_e2e.py."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from pkgbuilder.activities.publish import check_published, publish_package
from pkgbuilder.config import PublishingSettings
from pkgbuilder.models.build import PackageNode, PublishOutcome, WorkspaceGraph
from pkgbuilder.models.publish import PublishCheckInput, PublishPackageInput
from pkgbuilder.publishing import registry as reg
from pkgbuilder.publishing.pack import TMP_PREFIX
from tests.support.registry import build_demo, make_demo, npm_view, running_registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with running_registry(tmp_path_factory.mktemp("registry-home")) as rt:
        yield rt


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo(tmp_path_factory.mktemp("template") / "demo")


@pytest.fixture
def demo(demo_template: Path, tmp_path: Path) -> tuple[Path, WorkspaceGraph]:
    return make_demo(demo_template, tmp_path / "demo")


@pytest.fixture
def token_env(registry: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("NPM_TOKEN", registry[1])
    return registry[1]


def _inp(root: Path, node: PackageNode, url: str, **publishing: object) -> PublishPackageInput:
    return PublishPackageInput(
        build_id="test",
        workspace_root=str(root),
        package=node,
        registry=url,
        publishing=PublishingSettings(enabled=True, **publishing),  # type: ignore[arg-type]
    )


def _ordered(graph: WorkspaceGraph) -> list[PackageNode]:
    by_name = graph.by_name()
    return [by_name[n] for n in graph.topological_order]


async def test_first_run_publishes_all_second_run_skips_all(
    registry: tuple[str, str], token_env: str, demo: tuple[Path, WorkspaceGraph], tmp_path: Path
) -> None:
    url, token = registry
    root, graph = demo
    nodes = _ordered(graph)
    assert len(nodes) == 7
    first = [await publish_package(_inp(root, n, url)) for n in nodes]
    assert [r.outcome for r in first] == [PublishOutcome.PUBLISHED] * 7, [r.message for r in first]
    for r in (first[0], first[-1]):
        assert npm_view(url, token, f"{r.package_name}@1.0.0", "version", tmp_path) == '"1.0.0"'
    for r in first:
        published = reg.fetch_version(url, r.package_name, "1.0.0", token)
        assert published is not None and published.integrity == r.integrity

    check = await check_published(
        PublishCheckInput(workspace_root=str(root), packages=nodes, registry=url)
    )
    assert sorted(check.identical) == sorted(n.name for n in nodes) and check.error is None

    second = [await publish_package(_inp(root, n, url)) for n in nodes]
    assert [r.outcome for r in second] == [PublishOutcome.SKIPPED] * 7
    assert all("identical content" in r.message for r in second)
    versions = npm_view(url, token, nodes[0].name, "versions", tmp_path)
    assert json.loads(versions) in (["1.0.0"], "1.0.0")


async def test_changed_package_with_same_version_fails_with_bump_message(
    registry: tuple[str, str], token_env: str, demo: tuple[Path, WorkspaceGraph]
) -> None:
    url, token = registry
    root, graph = demo
    node = _ordered(graph)[0]
    original = await publish_package(_inp(root, node, url))
    assert original.outcome is PublishOutcome.PUBLISHED
    dist = root / node.path / "dist" / "index.js"
    dist.write_text(dist.read_text() + "\n// changed\n")
    changed = await publish_package(_inp(root, node, url))
    assert changed.outcome is PublishOutcome.FAILED
    assert changed.message == (
        f"{node.name}@1.0.0 is already published with different content; bump the version."
    )
    check = await check_published(
        PublishCheckInput(workspace_root=str(root), packages=[node], registry=url)
    )
    assert check.identical == [] and check.checks[0].decision.value == "conflict"
    still = reg.fetch_version(url, node.name, "1.0.0", token)
    assert still is not None and still.integrity == original.integrity


async def test_retry_after_a_completed_publish_records_one_published_version(
    registry: tuple[str, str], token_env: str, demo: tuple[Path, WorkspaceGraph], tmp_path: Path
) -> None:
    """Attempt 1 published and the worker died before reporting it; attempt 2 must not fail
    (nor publish again) and must record the package as published."""
    url, token = registry
    root, graph = demo
    node = _ordered(graph)[0]
    scheduled = datetime.now(UTC) - timedelta(seconds=5)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=1, scheduled_time=scheduled)
    first = await env.run(publish_package, _inp(root, node, url))
    assert first.outcome is PublishOutcome.PUBLISHED
    env.info = dataclasses.replace(env.info, attempt=2, scheduled_time=scheduled)
    retried = await env.run(publish_package, _inp(root, node, url))
    assert retried.outcome is PublishOutcome.PUBLISHED
    assert "earlier attempt" in retried.message
    assert json.loads(npm_view(url, token, node.name, "versions", tmp_path)) in (["1.0.0"], "1.0.0")
    # A first attempt finding it there (published by an earlier build) is a skip.
    env.info = dataclasses.replace(env.info, attempt=1, scheduled_time=datetime.now(UTC))
    assert (await env.run(publish_package, _inp(root, node, url))).outcome is (
        PublishOutcome.SKIPPED
    )


async def test_dry_run_reports_and_publishes_nothing(
    registry: tuple[str, str], token_env: str, demo: tuple[Path, WorkspaceGraph]
) -> None:
    url, token = registry
    root, graph = demo
    for node in _ordered(graph):
        result = await publish_package(_inp(root, node, url, dry_run=True))
        assert result.outcome is PublishOutcome.DRY_RUN
        assert result.size and result.integrity and result.integrity in result.message
        assert result.message.startswith(f"Would publish {node.name}@1.0.0 (")
        assert reg.fetch_version(url, node.name, "1.0.0", token) is None


async def test_missing_or_rejected_token_is_one_clear_sentence(
    registry: tuple[str, str],
    demo: tuple[Path, WorkspaceGraph],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, token = registry
    root, graph = demo
    node = _ordered(graph)[0]
    monkeypatch.delenv("NPM_TOKEN", raising=False)
    missing = await publish_package(_inp(root, node, url))
    assert missing.outcome is PublishOutcome.FAILED
    assert missing.message == (
        f"Reading from {url} needs a token: set NPM_TOKEN in the worker's environment."
    )
    check = await check_published(
        PublishCheckInput(workspace_root=str(root), packages=[node], registry=url)
    )
    assert check.identical == [] and check.error == missing.message
    monkeypatch.setenv("NPM_TOKEN", "npm_SENTINEL_rejected_0123456789")
    rejected = await publish_package(_inp(root, node, url))
    assert rejected.outcome is PublishOutcome.FAILED
    assert rejected.message.startswith(f"The registry at {url} rejected NPM_TOKEN")
    assert "SENTINEL" not in rejected.model_dump_json()
    assert reg.fetch_version(url, node.name, "1.0.0", token) is None


async def test_dirty_tree_and_missing_tests_are_refused(
    registry: tuple[str, str], token_env: str, demo: tuple[Path, WorkspaceGraph]
) -> None:
    url, token = registry
    root, graph = demo
    a, b = _ordered(graph)[:2]
    src = root / a.path / "src" / "index.js"
    src.write_text(src.read_text() + "\n// uncommitted\n")
    dirty = await publish_package(_inp(root, a, url, require_clean_working_directory=True))
    assert dirty.outcome is PublishOutcome.FAILED
    assert dirty.message.startswith(f"Refusing to publish {a.name}: {a.path} has uncommitted")
    assert reg.fetch_version(url, a.name, "1.0.0", token) is None
    # Only the package's own directory counts.
    clean = await publish_package(_inp(root, b, url, require_clean_working_directory=True))
    assert clean.outcome is PublishOutcome.PUBLISHED, clean.message
    # requireTests: a package without a test script is not published.
    untested = a.model_copy(update={"scripts": ["build"]})
    refused = await publish_package(_inp(root, untested, url, require_tests=True))
    assert refused.outcome is PublishOutcome.FAILED and "no test script" in refused.message
    # Not a git repository at all.
    plain = root.parent / "plain"
    shutil.copytree(root, plain, ignore=shutil.ignore_patterns(".git"))
    nogit = await publish_package(_inp(plain, a, url, require_clean_working_directory=True))
    assert nogit.outcome is PublishOutcome.FAILED and "not a git repository" in nogit.message


async def test_private_packages_are_never_published(
    registry: tuple[str, str], token_env: str, demo: tuple[Path, WorkspaceGraph]
) -> None:
    url, token = registry
    root, graph = demo
    node = _ordered(graph)[0]
    pj = root / node.path / "package.json"
    pj.write_text(json.dumps({**json.loads(pj.read_text()), "private": True}))
    result = await publish_package(_inp(root, node, url))
    assert result.outcome is PublishOutcome.NOT_ATTEMPTED
    assert reg.fetch_version(url, node.name, "1.0.0", token) is None


@pytest.fixture
def npm_spy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[dict]]:
    """A pass-through ``npm`` first on PATH: records argv, environment and the userconfig's
    mode, then runs the real npm. Nothing is faked: the real publish happens."""
    real = shutil.which("npm")
    assert real
    spy_dir = tmp_path / "spy"
    spy_dir.mkdir()
    record = tmp_path / "npm-calls.jsonl"
    script = spy_dir / "npm"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, stat, sys\n"
        "argv = sys.argv[1:]\n"
        "mode = None\n"
        "if '--userconfig' in argv:\n"
        "    rc = argv[argv.index('--userconfig') + 1]\n"
        "    mode = stat.S_IMODE(os.stat(rc).st_mode)\n"
        f"with open({str(record)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'argv': argv, 'env': dict(os.environ), 'mode': mode}) + '\\n')\n"
        f"os.execv({real!r}, [{real!r}, *argv])\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{spy_dir}{os.pathsep}{os.environ['PATH']}")

    def calls() -> list[dict]:
        return [json.loads(ln) for ln in record.read_text().splitlines()] if record.exists() else []

    return calls


async def test_token_reaches_npm_only_through_a_private_userconfig(
    registry: tuple[str, str],
    token_env: str,
    demo: tuple[Path, WorkspaceGraph],
    npm_spy: Callable[[], list[dict]],
) -> None:
    url, token = registry
    root, graph = demo
    node = _ordered(graph)[0]
    result = await publish_package(_inp(root, node, url))
    assert result.outcome is PublishOutcome.PUBLISHED
    calls = npm_spy()
    publishes = [c for c in calls if c["argv"][:1] == ["publish"]]
    assert len(publishes) == 1 and any(c["argv"][:1] == ["pack"] for c in calls)
    for call in calls:
        assert "NPM_TOKEN" not in call["env"]
        assert all(token not in v for v in call["env"].values())
        assert all(token not in a for a in call["argv"])
    assert publishes[0]["mode"] == 0o600
    rc = publishes[0]["argv"][publishes[0]["argv"].index("--userconfig") + 1]
    assert not Path(rc).exists() and not Path(rc).parent.exists()
    assert token not in result.model_dump_json()
    leftovers = list(Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}{os.getpid()}-*"))
    assert leftovers == []
