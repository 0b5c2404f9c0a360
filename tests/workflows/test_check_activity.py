"""The check_package activity for real: one activity per check run in the child, its
heartbeat details naming the running step (what the Temporal UI's pending activity shows),
one report span per step that ran, and a cache store that fails being only a warning."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from pkgbuilder.activities.build import check_package
from pkgbuilder.config import load_settings
from pkgbuilder.models.build import PackageBuildInput, PackageBuildResult, PackageNode
from pkgbuilder.models.cache_info import PackageHashes
from pkgbuilder.models.checks import CheckInput
from pkgbuilder.runtime.worker import running_workers
from pkgbuilder.workflows.package_build import PackageBuildWorkflow

SLEEP = "node -e \"require('fs').mkdirSync('dist',{recursive:true});setTimeout(()=>{},1500)\""


def workspace(tmp_path: Path) -> tuple[Path, PackageNode]:
    root = tmp_path / "ws"
    pkg = root / "packages" / "a"
    pkg.mkdir(parents=True)
    (root / "package.json").write_text(json.dumps({"private": True, "workspaces": ["packages/*"]}))
    scripts = {"build": SLEEP, "test": SLEEP}
    (pkg / "package.json").write_text(
        json.dumps({"name": "@c/a", "version": "1.0.0", "scripts": scripts})
    )
    return root, PackageNode(name="@c/a", path="packages/a", scripts=sorted(scripts))


async def test_one_activity_whose_heartbeat_names_the_step(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    root, node = workspace(tmp_path)
    settings = load_settings(
        root,
        env={},
        overrides={
            "temporal": {"taskQueue": task_queue, "llmTaskQueue": f"{task_queue}-llm"},
            "cache": {"enabled": False},
            "fix": {"enabled": False},
            # the SDK sends heartbeats at most every 0.8 x the heartbeat timeout
            "timeouts": {"heartbeatSeconds": 1},
        },
    )
    seen: list[str] = []
    async with running_workers(client, settings):
        handle = await client.start_workflow(
            PackageBuildWorkflow.run,
            PackageBuildInput(
                build_id=f"c{uuid.uuid4().hex[:6]}",
                package=node,
                workspace_root=str(root),
                config=settings,
                workspace_installed=True,
            ),
            id=f"check-{uuid.uuid4().hex[:6]}",
            task_queue=task_queue,
        )
        task = asyncio.ensure_future(handle.result())
        while not task.done():
            desc = await handle.describe()
            for pending in desc.raw_description.pending_activities:
                if pending.heartbeat_details.payloads:
                    details = await client.data_converter.decode(pending.heartbeat_details.payloads)
                    if details and (not seen or seen[-1] != details[0]):
                        seen.append(details[0])
            await asyncio.sleep(0.1)
        result: PackageBuildResult = await task
    assert result.success, result.error
    assert seen == ["build", "test"]
    assert [s.name for s in result.report.steps] == ["build", "test"]
    assert result.report.build_metrics.build_time >= 1500
    assert result.report.build_metrics.test_time >= 1500
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == ["check_package"]


async def test_a_failing_cache_store_is_a_warning(tmp_path: Path) -> None:
    root, node = workspace(tmp_path)
    not_a_dir = tmp_path / "cache-file"
    not_a_dir.write_text("a file where the cache directory should be\n")
    settings = load_settings(root, env={}, overrides={"cache": {"dir": str(not_a_dir)}})
    hashes = PackageHashes(package=node.name, build="b" * 64, test="t" * 64, outputs=["dist"])
    result = await check_package(
        CheckInput(workspace_root=str(root), package=node, settings=settings, cache_hashes=hashes)
    )
    assert result.ok and result.cache is not None and not result.cache.stored
    assert any("could not store @c/a in the cache" in w for w in result.cache.warnings)
    # sources a fix attempt changed are never stored, whatever hashes the caller passes
    unsandboxed = settings.model_copy(
        update={"fix": settings.fix.model_copy(update={"allow_unsandboxed": True})}
    )
    changed = await check_package(
        CheckInput(
            workspace_root=str(root),
            package=node,
            settings=unsandboxed,
            cache_hashes=hashes,
            model_changed=True,
        )
    )
    assert changed.ok and changed.cache is None
