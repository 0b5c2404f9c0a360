"""Publish steps as the workflows call them (deterministic: only activity calls and data).

Publishing is on when ``publishing.enabled`` is true and a registry is configured; the CLI
turns it on for ``--registry`` and ``--dry-run``. A registry alone (e.g. ``NPM_REGISTRY`` in
the environment) never makes a build publish.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

from pkgbuilder.workflows.policies import PUBLISH_RETRY, heartbeat_timeout, publish_timeout

with workflow.unsafe.imports_passed_through():
    from pkgbuilder.activities import publish as publish_acts
    from pkgbuilder.config import BuildSettings
    from pkgbuilder.models.build import (
        PackageBuildResult,
        PackageNode,
        PackageStatus,
        PublishOutcome,
        SuiteBuildInput,
        SuiteState,
        WorkspaceGraph,
    )
    from pkgbuilder.models.common import PackageManager
    from pkgbuilder.models.publish import (
        PublishCheckInput,
        PublishCheckResult,
        PublishPackageInput,
        PublishPackageResult,
    )
    from pkgbuilder.workflows.common import failure_message

SUITE_DONE = (PackageStatus.SUCCESS, PackageStatus.SKIPPED, PackageStatus.CACHED)


def publishing_active(config: BuildSettings) -> bool:
    """Whether this build publishes (or dry-runs a publish) at all."""
    return config.publishing.enabled and bool(config.registry)


async def publish_package(
    config: BuildSettings,
    build_id: str,
    workspace_root: str,
    package: PackageNode,
    package_manager: PackageManager,
) -> PublishPackageResult:
    """Run the publish activity for one package (raises ActivityError after the retries)."""
    assert config.registry is not None
    result: PublishPackageResult = await workflow.execute_activity(
        publish_acts.publish_package,
        PublishPackageInput(
            build_id=build_id,
            workspace_root=workspace_root,
            package=package,
            package_manager=package_manager,
            registry=config.registry,
            publishing=config.publishing,
            timeout_seconds=config.publishing.timeout_seconds,
        ),
        retry_policy=PUBLISH_RETRY,
        summary=f"publish {package.name}@{package.version}",
        start_to_close_timeout=publish_timeout(config),
        heartbeat_timeout=heartbeat_timeout(config.timeouts.heartbeat_seconds),
    )
    return result


async def already_published(
    config: BuildSettings,
    workspace_root: str,
    packages: list[PackageNode],
    package_manager: PackageManager,
) -> PublishCheckResult:
    """PLAN: which packages are in the registry with identical content already."""
    assert config.registry is not None
    result: PublishCheckResult = await workflow.execute_activity(
        publish_acts.check_published,
        PublishCheckInput(
            workspace_root=workspace_root,
            packages=packages,
            package_manager=package_manager,
            registry=config.registry,
            timeout_seconds=config.publishing.timeout_seconds,
        ),
        retry_policy=PUBLISH_RETRY,
        summary="registry check",
        start_to_close_timeout=publish_timeout(config, len(packages)),
        heartbeat_timeout=heartbeat_timeout(config.timeouts.heartbeat_seconds),
    )
    return result


async def skip_published(
    inp: SuiteBuildInput, graph: WorkspaceGraph, state: SuiteState
) -> set[str]:
    """PLAN: mark packages whose exact version is already published with identical content
    ``skipped`` (they count as completed for their dependents); returns their names.

    Only identical packages are decided here. A package whose published content differs is
    left to build: its outputs on disk may be stale until it is built, and its publish step
    fails with the bump message if the difference remains.
    """
    if not publishing_active(inp.config):
        return set()
    pending = {p.name for p in state.packages if p.status is PackageStatus.PENDING}
    candidates = [n for n in graph.packages if n.exists and n.name in pending]
    if not candidates:
        return set()
    try:
        check = await already_published(
            inp.config, inp.workspace_root, candidates, graph.package_manager
        )
    except ActivityError as e:
        # The check only saves work: without it every package is built and its own publish
        # step asks the registry again.
        workflow.logger.warning("registry check skipped: %s", e.cause or e)
        return set()
    if check.error:
        workflow.logger.warning("registry check: %s", check.error)
    skipped = set(check.identical)
    for p in state.packages:
        if p.name in skipped:
            p.status = PackageStatus.SKIPPED
            p.error = None
    return skipped


async def publish_suite_package(
    inp: SuiteBuildInput,
    graph: WorkspaceGraph,
    state: SuiteState,
    results: dict[str, PackageBuildResult],
    skipped: set[str],
) -> PublishOutcome:
    """COMPLETE: publish ``suitePackage`` only when nothing failed or was blocked (seed design).

    A failed publish marks the suite package failed, so the build exits non-zero.
    """
    name = inp.config.suite_package
    if not publishing_active(inp.config) or not name:
        return PublishOutcome.NOT_ATTEMPTED
    if name in skipped:
        return PublishOutcome.SKIPPED
    node = graph.by_name().get(name)
    pkg_state = next((p for p in state.packages if p.name == name), None)
    if node is None or pkg_state is None:
        workflow.logger.warning("suitePackage %s is not a package of this build", name)
        return PublishOutcome.NOT_ATTEMPTED
    unfinished = [p.name for p in state.packages if p.status not in SUITE_DONE]
    if unfinished or state.error or state.verify_passed is False:
        return PublishOutcome.NOT_ATTEMPTED
    try:
        result = await publish_package(
            inp.config, inp.build_id, inp.workspace_root, node, graph.package_manager
        )
        outcome, message = result.outcome, result.message
    except ActivityError as e:
        outcome = PublishOutcome.FAILED
        message = failure_message(e)
    if name in results:
        results[name].report.publish = outcome
        results[name].report.publish_detail = message
    if outcome is PublishOutcome.FAILED:
        pkg_state.status = PackageStatus.FAILED
        pkg_state.error = f"publish: {message}"
    return outcome


def plan_skip_fields(
    name: str, skipped: set[str], graph: WorkspaceGraph | None
) -> dict[str, object]:
    """Report fields of a package that PLAN skipped (it has no child workflow report)."""
    if name not in skipped:
        return {}
    node = graph.by_name().get(name) if graph is not None else None
    version = node.version if node is not None else "0.0.0"
    return {
        "version": version,
        "publish": PublishOutcome.SKIPPED,
        "publish_detail": f"{name}@{version} is already published with identical content.",
    }
