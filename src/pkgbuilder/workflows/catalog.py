"""Every workflow the worker hosts. Each feature adds its workflow class here."""

from __future__ import annotations

from pkgbuilder.workflows.lifecycle import GenerationRunWorkflow
from pkgbuilder.workflows.orchestrator import ContinuousBuilderWorkflow
from pkgbuilder.workflows.package_build import PackageBuildWorkflow
from pkgbuilder.workflows.poller import PackageQueuePollerWorkflow
from pkgbuilder.workflows.session import TurnBasedGenerationWorkflow
from pkgbuilder.workflows.suite import SuiteBuildWorkflow

ALL_WORKFLOWS: tuple[type, ...] = (
    SuiteBuildWorkflow,
    PackageBuildWorkflow,
    ContinuousBuilderWorkflow,
    PackageQueuePollerWorkflow,
    TurnBasedGenerationWorkflow,
    GenerationRunWorkflow,
)
