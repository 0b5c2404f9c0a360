"""Pure functions over the package dependency graph (no I/O, no Temporal).

Safe to import from workflow code: only the standard library's ``graphlib`` and ``heapq``.
Edges point from a package to the workspace packages it depends on; "dependents" are the
reverse direction (packages that must wait for it).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from graphlib import CycleError, TopologicalSorter

from pkgbuilder.errors import UserError
from pkgbuilder.models.build import PackageNode

DEFAULT_WEIGHT = 1.0


class WorkspaceError(UserError):
    """A workspace, master plan or dependency graph the user must fix (one clear sentence)."""


def validate_graph(nodes: Iterable[PackageNode]) -> dict[str, PackageNode]:
    """Index nodes by name, rejecting duplicate names and dependencies on unknown packages.

    Raises:
        WorkspaceError: two nodes share a name, or a node depends on a name that is not a node.
    """
    by_name: dict[str, PackageNode] = {}
    for node in nodes:
        if node.name in by_name:
            raise WorkspaceError(
                f"Two packages are named {node.name}: {by_name[node.name].path} and {node.path}."
            )
        by_name[node.name] = node
    for node in by_name.values():
        for dep in node.dependencies:
            if dep not in by_name:
                raise WorkspaceError(
                    f"{node.name} depends on {dep}, which is not a package of the workspace."
                )
    return by_name


class DependencyCycleError(WorkspaceError):
    """The graph has a cycle; ``cycle`` is ``[a, b, ..., a]``, each depending on the next."""

    def __init__(self, cycle: list[str]) -> None:
        super().__init__(format_cycle(cycle))
        self.cycle = cycle


def format_cycle(cycle: list[str]) -> str:
    """``["a", "b", "a"]`` -> ``"Dependency cycle: a → b → a."`` (rotated to start at the
    smallest name so the message is the same on every run)."""
    ring = cycle[:-1] if len(cycle) > 1 and cycle[0] == cycle[-1] else list(cycle)
    start = ring.index(min(ring))
    ring = ring[start:] + ring[:start]
    return "Dependency cycle: " + " → ".join([*ring, ring[0]]) + "."


def _prepared_sorter(by_name: Mapping[str, PackageNode]) -> TopologicalSorter[str]:
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for name in sorted(by_name):
        sorter.add(name, *sorted(by_name[name].dependencies))
    try:
        sorter.prepare()
    except CycleError as e:
        # graphlib walks a cycle from each dependency to its dependent; reversed, each
        # entry depends on the next, which is how users read "a → b".
        raise DependencyCycleError(list(reversed(e.args[1]))) from None
    return sorter


def find_cycle(nodes: Iterable[PackageNode]) -> list[str] | None:
    """A dependency cycle as ``[a, b, ..., a]`` where each package depends on the next, or None."""
    try:
        _prepared_sorter(validate_graph(nodes))
    except DependencyCycleError as e:
        return e.cycle
    return None


def topological_order(nodes: Iterable[PackageNode]) -> list[str]:
    """Names in dependency order: dependencies first, ties broken by (layer, declaration
    order, name).

    The order is deterministic: among packages whose dependencies are all placed, the one
    with the lowest layer, then the one the workspace declares first, comes next.

    Raises:
        DependencyCycleError: the graph has a cycle (named in the message).
        WorkspaceError: a duplicate name or a dependency on an unknown package.
    """
    by_name = validate_graph(nodes)
    sorter = _prepared_sorter(by_name)
    ready: list[tuple[int, int, str]] = []
    for name in sorter.get_ready():
        heapq.heappush(ready, (by_name[name].layer, by_name[name].order, name))
    order: list[str] = []
    while ready:
        _, _, name = heapq.heappop(ready)
        order.append(name)
        sorter.done(name)
        for nxt in sorter.get_ready():
            heapq.heappush(ready, (by_name[nxt].layer, by_name[nxt].order, nxt))
    return order


def dependents_map(nodes: Iterable[PackageNode]) -> dict[str, list[str]]:
    """Direct dependents of every package (sorted), including packages with none."""
    by_name = validate_graph(nodes)
    out: dict[str, list[str]] = {name: [] for name in by_name}
    for node in by_name.values():
        for dep in set(node.dependencies):
            out[dep].append(node.name)
    return {name: sorted(deps) for name, deps in out.items()}


def _reach(start: str, edges: Mapping[str, Iterable[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(edges[start])
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(edges[name])
    seen.discard(start)
    return seen


def _require(by_name: Mapping[str, object], name: str) -> None:
    if name not in by_name:
        raise WorkspaceError(f"Unknown package {name}: it is not part of the workspace.")


def transitive_dependents(nodes: Iterable[PackageNode], name: str) -> set[str]:
    """Every package that depends on ``name`` directly or indirectly (what a failure blocks)."""
    deps = dependents_map(nodes)
    _require(deps, name)
    return _reach(name, deps)


def transitive_dependencies(nodes: Iterable[PackageNode], name: str) -> set[str]:
    """Every package ``name`` depends on directly or indirectly."""
    by_name = validate_graph(nodes)
    _require(by_name, name)
    return _reach(name, {n: node.dependencies for n, node in by_name.items()})


def _weight(weights: Mapping[str, float] | None, name: str) -> float:
    if weights is None:
        return DEFAULT_WEIGHT
    return float(weights.get(name, DEFAULT_WEIGHT))


def critical_path_priority(
    nodes: Iterable[PackageNode], weights: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Longest downstream chain per package: its own weight plus the largest priority among
    its dependents.

    Starting ready packages in descending priority (list scheduling on the critical path)
    keeps the makespan close to ``max(W / concurrency, L)``. Missing weights default to 1.0,
    so without durations the priority is the length of the longest chain of dependents.

    Raises:
        WorkspaceError: as :func:`topological_order`.
    """
    node_list = list(nodes)
    order = topological_order(node_list)
    dependents = dependents_map(node_list)
    priority: dict[str, float] = {}
    for name in reversed(order):
        downstream = max((priority[d] for d in dependents[name]), default=0.0)
        priority[name] = _weight(weights, name) + downstream
    return priority


def critical_path_length(
    nodes: Iterable[PackageNode], weights: Mapping[str, float] | None = None
) -> float:
    """L: the weight of the heaviest dependency chain (0 for an empty graph)."""
    return max(critical_path_priority(nodes, weights).values(), default=0.0)


def critical_path(
    nodes: Iterable[PackageNode], weights: Mapping[str, float] | None = None
) -> list[str]:
    """The heaviest dependency chain itself, dependencies first (ties broken by name)."""
    node_list = list(nodes)
    priority = critical_path_priority(node_list, weights)
    if not priority:
        return []
    dependents = dependents_map(node_list)
    by_name = {n.name: n for n in node_list}
    # A chain starts at a package without dependencies; the heaviest chain starts at the
    # highest-priority root and always continues to the highest-priority dependent.
    roots = [n for n in priority if not by_name[n].dependencies]
    current = min(roots, key=lambda n: (-priority[n], n))
    chain = [current]
    while dependents[current]:
        current = min(dependents[current], key=lambda n: (-priority[n], n))
        chain.append(current)
    return chain


def total_work(nodes: Iterable[PackageNode], weights: Mapping[str, float] | None = None) -> float:
    """W: the sum of all package weights."""
    return sum(_weight(weights, n.name) for n in nodes)


def makespan_lower_bound(
    nodes: Iterable[PackageNode], weights: Mapping[str, float] | None, concurrency: int
) -> float:
    """``max(W / concurrency, L)``: no schedule on ``concurrency`` slots can finish sooner."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    node_list = list(nodes)
    return max(
        total_work(node_list, weights) / concurrency, critical_path_length(node_list, weights)
    )


def simulate_list_schedule(
    nodes: Iterable[PackageNode], weights: Mapping[str, float] | None, concurrency: int
) -> float:
    """Makespan of ideal list scheduling by critical-path priority with zero overhead.

    What the suite scheduler achieves if starting a package cost nothing; the gap between
    this and a measured wall time is pkgbuilder's own overhead.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    node_list = list(nodes)
    priority = critical_path_priority(node_list, weights)
    remaining = {n.name: len(set(n.dependencies)) for n in node_list}
    dependents = dependents_map(node_list)
    ready = [(-priority[n], n) for n, count in remaining.items() if count == 0]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []  # (finish time, name)
    now = 0.0
    while ready or running:
        while ready and len(running) < concurrency:
            _, name = heapq.heappop(ready)
            heapq.heappush(running, (now + _weight(weights, name), name))
        now, finished = heapq.heappop(running)
        for dep in dependents[finished]:
            remaining[dep] -= 1
            if remaining[dep] == 0:
                heapq.heappush(ready, (-priority[dep], dep))
    return now
