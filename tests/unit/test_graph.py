"""Pure graph functions: order, cycles, reachability, critical-path priorities and bounds."""

from __future__ import annotations

import itertools
import random

import pytest

from pkgbuilder.errors import UserError
from pkgbuilder.models.build import PackageNode
from pkgbuilder.workspace.graph import (
    DependencyCycleError,
    WorkspaceError,
    critical_path,
    critical_path_length,
    critical_path_priority,
    dependents_map,
    find_cycle,
    format_cycle,
    makespan_lower_bound,
    simulate_list_schedule,
    topological_order,
    total_work,
    transitive_dependencies,
    transitive_dependents,
)


def node(name: str, *deps: str, layer: int = 2) -> PackageNode:
    return PackageNode(name=name, path=f"packages/{name}", layer=layer, dependencies=list(deps))


DIAMOND = [
    node("a", layer=0),
    node("b", "a", layer=1),
    node("c", "a", layer=1),
    node("d", "b", "c", layer=3),
    node("e", layer=2),
]


def test_topological_order_puts_dependencies_first_and_breaks_ties_by_layer_then_name() -> None:
    nodes = [
        node("z-validator", layer=0),
        node("a-service", "m-core", layer=3),
        node("m-core", "z-validator", layer=1),
        node("b-utility", layer=2),
        node("a-utility", layer=2),
    ]
    assert topological_order(nodes) == [
        "z-validator",
        "m-core",
        "a-utility",
        "b-utility",
        "a-service",
    ]


def test_topological_order_does_not_depend_on_input_order() -> None:
    expected = topological_order(DIAMOND)
    rng = random.Random(3)
    for _ in range(10):
        shuffled = list(DIAMOND)
        rng.shuffle(shuffled)
        assert topological_order(shuffled) == expected
    position = {name: i for i, name in enumerate(expected)}
    for n in DIAMOND:
        for dep in n.dependencies:
            assert position[dep] < position[n.name]


def test_empty_graph() -> None:
    assert topological_order([]) == []
    assert critical_path_length([]) == 0.0
    assert critical_path([]) == []
    assert simulate_list_schedule([], None, 4) == 0.0


def test_two_cycle_is_named_in_dependency_direction() -> None:
    nodes = [node("@a/y", "@a/x"), node("@a/x", "@a/y"), node("@a/ok")]
    with pytest.raises(DependencyCycleError) as info:
        topological_order(nodes)
    assert str(info.value) == "Dependency cycle: @a/x → @a/y → @a/x."
    assert info.value.cycle[0] == info.value.cycle[-1]


def test_three_cycle_reads_as_depends_on_chain_and_is_stable() -> None:
    # p depends on q, q on r, r on p; an acyclic branch hangs off it.
    nodes = [node("q", "r"), node("r", "p"), node("p", "q"), node("leaf", "p"), node("s")]
    with pytest.raises(WorkspaceError, match=r"^Dependency cycle: p → q → r → p\.$"):
        topological_order(nodes)
    with pytest.raises(WorkspaceError, match=r"p → q → r → p"):
        topological_order(list(reversed(nodes)))
    cycle = find_cycle(nodes)
    assert cycle is not None and set(cycle) == {"p", "q", "r"}
    # each entry depends on the next one
    by_name = {n.name: n for n in nodes}
    for here, nxt in itertools.pairwise(cycle):
        assert nxt in by_name[here].dependencies


def test_self_dependency_is_a_cycle() -> None:
    with pytest.raises(DependencyCycleError, match=r"^Dependency cycle: me → me\.$"):
        topological_order([node("me", "me")])


def test_find_cycle_none_for_a_dag() -> None:
    assert find_cycle(DIAMOND) is None


def test_format_cycle_rotates_to_smallest_name() -> None:
    assert format_cycle(["c", "a", "b", "c"]) == "Dependency cycle: a → b → c → a."


def test_unknown_dependency_and_duplicates_are_user_errors() -> None:
    with pytest.raises(WorkspaceError, match=r"^b depends on ghost, which is not a package"):
        topological_order([node("a"), node("b", "ghost")])
    dup = [node("a"), PackageNode(name="a", path="other/a")]
    with pytest.raises(WorkspaceError, match=r"Two packages are named a: packages/a and other/a"):
        topological_order(dup)
    err = WorkspaceError("x")
    assert isinstance(err, UserError) and err.exit_code == 2


def test_reachability() -> None:
    assert transitive_dependents(DIAMOND, "a") == {"b", "c", "d"}
    assert transitive_dependents(DIAMOND, "b") == {"d"}
    assert transitive_dependents(DIAMOND, "d") == set()
    assert transitive_dependencies(DIAMOND, "d") == {"a", "b", "c"}
    assert transitive_dependencies(DIAMOND, "e") == set()
    assert dependents_map(DIAMOND) == {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": [], "e": []}
    with pytest.raises(WorkspaceError, match="Unknown package nope"):
        transitive_dependents(DIAMOND, "nope")
    with pytest.raises(WorkspaceError, match="Unknown package nope"):
        transitive_dependencies(DIAMOND, "nope")


def test_duplicate_dependency_entries_count_once() -> None:
    nodes = [node("a"), node("b", "a", "a")]
    assert dependents_map(nodes)["a"] == ["b"]
    assert simulate_list_schedule(nodes, None, 2) == 2.0


def test_critical_path_priority_is_longest_downstream_chain() -> None:
    weights = {"a": 1.0, "b": 5.0, "c": 2.0, "d": 3.0, "e": 4.0}
    prio = critical_path_priority(DIAMOND, weights)
    assert prio == {"d": 3.0, "b": 8.0, "c": 5.0, "a": 9.0, "e": 4.0}
    assert critical_path_length(DIAMOND, weights) == 9.0
    assert critical_path(DIAMOND, weights) == ["a", "b", "d"]
    # default weight 1.0: priority counts the packages on the longest chain of dependents
    assert critical_path_priority(DIAMOND) == {"a": 3.0, "b": 2.0, "c": 2.0, "d": 1.0, "e": 1.0}
    assert critical_path_length(DIAMOND, {"e": 10.0}) == 10.0
    assert critical_path(DIAMOND, {"e": 10.0}) == ["e"]


def test_bounds() -> None:
    weights = {"a": 1.0, "b": 5.0, "c": 2.0, "d": 3.0, "e": 4.0}
    assert total_work(DIAMOND, weights) == 15.0
    assert makespan_lower_bound(DIAMOND, weights, 1) == 15.0
    assert makespan_lower_bound(DIAMOND, weights, 4) == 9.0  # L dominates
    assert makespan_lower_bound(DIAMOND, weights, 2) == 9.0
    with pytest.raises(ValueError):
        makespan_lower_bound(DIAMOND, weights, 0)
    with pytest.raises(ValueError):
        simulate_list_schedule(DIAMOND, weights, 0)


def test_list_schedule_starts_the_critical_package_first() -> None:
    # Two slots. x (1s) unlocks y (4s); z1, z2 (2s each) are independent. Starting x at
    # once finishes at 5 = L; starting z1 and z2 first would finish at 7.
    nodes = [node("x"), node("y", "x"), node("z1"), node("z2"), node("a-first-by-name")]
    weights = {"x": 1.0, "y": 4.0, "z1": 2.0, "z2": 2.0, "a-first-by-name": 0.5}
    assert critical_path_length(nodes, weights) == 5.0
    assert simulate_list_schedule(nodes, weights, 2) == 5.0


def test_list_schedule_matches_simple_cases() -> None:
    independent = [node(f"p{i}") for i in range(8)]
    assert simulate_list_schedule(independent, None, 4) == 2.0
    assert simulate_list_schedule(independent, None, 1) == 8.0
    chain = [node("c0")] + [node(f"c{i}", f"c{i - 1}") for i in range(1, 5)]
    assert simulate_list_schedule(chain, None, 4) == 5.0


@pytest.mark.parametrize("seed", range(8))
def test_list_schedule_between_lower_bound_and_graham_bound(seed: int) -> None:
    rng = random.Random(seed)
    nodes: list[PackageNode] = []
    for i in range(40):
        earlier = [n.name for n in nodes]
        deps = rng.sample(earlier, k=min(len(earlier), rng.randint(0, 3)))
        nodes.append(node(f"p{i:02d}", *deps))
    weights = {n.name: rng.uniform(1, 8) for n in nodes}
    concurrency = rng.randint(1, 6)
    makespan = simulate_list_schedule(nodes, weights, concurrency)
    lower = makespan_lower_bound(nodes, weights, concurrency)
    work = total_work(nodes, weights)
    length = critical_path_length(nodes, weights)
    assert lower - 1e-9 <= makespan <= work / concurrency + length * (1 - 1 / concurrency) + 1e-9
