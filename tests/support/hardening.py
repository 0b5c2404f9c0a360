"""Small workspaces and a suite runner for the hardening tests."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client

from pkgbuilder.config import load_settings
from pkgbuilder.models.build import BuildReport, SuiteBuildInput
from pkgbuilder.runtime.worker import running_workers
from pkgbuilder.workflows.suite import SuiteBuildWorkflow
from tests.conftest import git


def make_workspace(
    root: Path,
    packages: dict[str, dict[str, Any]],
    config: str = "",
    workspaces: list[str] | None = None,
) -> Path:
    """A git monorepo at ``root``: ``packages`` maps a directory (relative) to its
    package.json; scripts default to a trivial build and test."""
    root.mkdir(parents=True)
    (root / "package.json").write_text(
        json.dumps({"name": "ws-root", "private": True, "workspaces": workspaces or ["packages/*"]})
    )
    for rel, manifest in packages.items():
        d = root / rel
        d.mkdir(parents=True, exist_ok=True)
        manifest = {
            "version": "1.0.0",
            "scripts": {"build": "mkdir -p dist", "test": "true"},
            **manifest,
        }
        (d / "package.json").write_text(json.dumps(manifest, indent=2))
    if config:
        (root / "pkgbuilder.toml").write_text(config)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "fixture")
    return root


async def run_suite(
    client: Client,
    workspace: Path,
    build_id: str | None = None,
    overrides: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> BuildReport:
    tq = f"tq-{uuid.uuid4()}"
    settings = load_settings(
        workspace,
        env=env or {},
        overrides={"temporal": {"taskQueue": tq, "llmTaskQueue": f"{tq}-llm"}, **(overrides or {})},
    )
    build_id = build_id or f"h{uuid.uuid4().hex[:8]}"
    async with running_workers(client, settings):
        result: BuildReport = await client.execute_workflow(
            SuiteBuildWorkflow.run,
            SuiteBuildInput(build_id=build_id, workspace_root=str(workspace), config=settings),
            id=f"suite-{build_id}",
            task_queue=tq,
        )
    return result


async def history_text(client: Client, workflow_id: str) -> str:
    """A workflow's whole history as text, payloads decoded (they are base64 in the JSON)."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "data" and isinstance(v, str):
                    try:
                        parts.append(base64.b64decode(v).decode("utf-8", "replace"))
                    except (binascii.Error, ValueError):
                        parts.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str):
            parts.append(node)

    walk(json.loads(history.to_json()))
    return "\n".join(parts)
