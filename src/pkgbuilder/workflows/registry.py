"""Every workflow the worker hosts. Each feature adds its workflow class here."""

from __future__ import annotations

from pkgbuilder.workflows.package_build import PackageBuildWorkflow
from pkgbuilder.workflows.suite import SuiteBuildWorkflow

ALL_WORKFLOWS: list[type] = [
    SuiteBuildWorkflow,
    PackageBuildWorkflow,
]
