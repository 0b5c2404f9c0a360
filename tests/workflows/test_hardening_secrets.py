"""Hardening: credentials in a registry URL and secret-looking keys in verbatim config
sections never reach a workflow history (issue 15 item 12)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from temporalio.client import Client

from pkgbuilder.config import load_settings
from pkgbuilder.models.build import PackageStatus, PublishOutcome
from pkgbuilder.models.common import name_slug
from pkgbuilder.util.urls import strip_userinfo
from tests.support.hardening import history_text, make_workspace, run_suite

SECRETS = ("s3cr3t-url", "s3cr3t-npmauth", "s3cr3t-anthropic", "s3cr3t-file-url")
CONFIG = """
[orchestrator]
npmAuth = "s3cr3t-npmauth"
pollLimit = 30

[turnBasedGeneration]
anthropicKey = "s3cr3t-anthropic"
"""


def test_userinfo_is_stripped_and_other_urls_kept() -> None:
    assert strip_userinfo("http://u:p@h:4873/x/") == "http://h:4873/x/"
    assert strip_userinfo("https://registry.npmjs.org/") == "https://registry.npmjs.org/"
    warnings: list[str] = []
    s = load_settings(
        None,
        env={},
        overrides={
            "registry": "http://u:s3cr3t-file-url@h/",
            "orchestrator": {"x": {"apiKey": "k"}},
        },
        warnings=warnings,
    )
    assert s.registry == "http://h/" and s.orchestrator == {"x": {}}
    assert any("NPM_REGISTRY" in w for w in warnings)


async def test_no_credential_reaches_any_history(client: Client, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", {"packages/a": {"name": "@s/a"}}, config=CONFIG)
    env = {"NPM_REGISTRY": "http://user:s3cr3t-url@127.0.0.1:9/"}
    report = await run_suite(client, ws, env=env)
    assert report.package_reports[0].status is PackageStatus.SUCCESS
    for wf_id in (f"suite-{report.build_id}", f"build-{report.build_id}-{name_slug('@s/a')}"):
        history = await history_text(client, wf_id)
        assert "127.0.0.1:9" in history  # the URL travelled, without its userinfo
        assert "pollLimit" in history  # and the section, without its secret key
        for secret in SECRETS:
            assert secret not in history, (wf_id, secret)


async def test_registry_userinfo_reaches_npm_through_the_worker_environment(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NPM_REGISTRY=http://user:pw@host/ publishes (basic auth from the worker's own
    environment) while the password is in no history."""
    from tests.support.registry import npm_view, running_registry

    with running_registry(tmp_path / "reg-home") as (url, token):
        creds = json.loads((tmp_path / "reg-home" / "registry" / "credentials.json").read_text())
        user, password = creds["user"], creds["password"]
        host = url.split("://", 1)[1]
        with_userinfo = f"http://{quote(user)}:{quote(password)}@{host}"
        monkeypatch.setenv("NPM_REGISTRY", with_userinfo)  # the in-process worker's env
        monkeypatch.delenv("NPM_TOKEN", raising=False)
        name = f"@hb{uuid.uuid4().hex[:6]}/a"
        ws = make_workspace(tmp_path / "ws", {"packages/a": {"name": name}})
        report = await run_suite(
            client,
            ws,
            env={"NPM_REGISTRY": with_userinfo},
            overrides={"publishing": {"enabled": True}},
        )
        pkg = report.package_reports[0]
        assert pkg.publish is PublishOutcome.PUBLISHED, (pkg.error, pkg.failures)
        assert npm_view(url, token, f"{name}@1.0.0", "version", tmp_path) == '"1.0.0"'
        for wf_id in (f"suite-{report.build_id}", pkg.workflow_id or ""):
            assert password not in await history_text(client, wf_id)
