"""Queued package names looked up in the workspace (pure: the graph is passed in)."""

from __future__ import annotations

from pkgbuilder.models.build import WorkspaceGraph
from pkgbuilder.models.orchestrator import ResolvedPackage, ResolvePackagesResult


def resolve_names(graph: WorkspaceGraph, names: list[str]) -> ResolvePackagesResult:
    """The nodes of ``names`` with their workspace dependencies' nodes, in the order asked;
    names that are not packages of the workspace come back in ``missing``."""
    nodes = graph.by_name()
    result = ResolvePackagesResult(package_manager=graph.package_manager)
    for name in names:
        node = nodes.get(name)
        if node is None:
            result.missing.append(name)
            continue
        result.packages.append(
            ResolvedPackage(
                node=node,
                dependency_nodes=[nodes[d] for d in node.dependencies if d in nodes],
            )
        )
    return result
