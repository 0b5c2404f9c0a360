"""Workspace discovery on real directory trees: npm/yarn/pnpm layouts, globs, categories,
--only, and every user error (one sentence each)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pkgbuilder.models.common import Category, PackageManager
from pkgbuilder.workspace.discovery import DependencyCycleError, WorkspaceError, discover_workspace
from pkgbuilder.workspace.graph import transitive_dependents

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo-monorepo"
FAILING = REPO / "tests" / "fixtures" / "failing-monorepo"


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def pkg(root: Path, rel: str, name: str, deps: dict[str, str] | None = None, **extra: Any) -> None:
    data: dict[str, Any] = {"name": name, "version": "1.2.3", **extra}
    if deps:
        data["dependencies"] = deps
    write_json(root / rel / "package.json", data)


def npm_root(root: Path, workspaces: Any = None, **extra: Any) -> Path:
    write_json(
        root / "package.json",
        {"name": "root", "private": True, "workspaces": workspaces or ["packages/*/*"], **extra},
    )
    return root


def one_sentence(message: str) -> bool:
    return message.endswith((".", "?)", ")")) and "\n" not in message and "Traceback" not in message


# --- npm / yarn / pnpm layouts ---------------------------------------------------------------


def test_npm_workspaces_edges_categories_and_order(tmp_path: Path) -> None:
    root = npm_root(tmp_path)
    pkg(root, "packages/validator/rules", "@a/rules", scripts={"build": "x", "test": "y"})
    pkg(root, "packages/core/engine", "@a/engine", {"@a/rules": "^1.0.0", "left-pad": "^1"})
    write_json(
        root / "packages/services/api/package.json",
        {
            "name": "@a/api",
            "private": True,
            "devDependencies": {"@a/engine": "*"},
            "peerDependencies": {"@a/rules": "*"},
            "optionalDependencies": {"@a/utils": "*", "react": "^18"},
        },
    )
    pkg(root, "packages/utilities/utils", "@a/utils")
    pkg(root, "packages/misc/other", "@a/other")  # "misc" is no category -> utility
    (root / "plans/packages/core").mkdir(parents=True)
    (root / "plans/packages/core/engine.md").write_text("# Package: @a/engine\n")

    graph = discover_workspace(root)

    assert graph.package_manager is PackageManager.NPM
    assert graph.root == str(root.resolve())
    assert graph.topological_order == ["@a/rules", "@a/engine", "@a/other", "@a/utils", "@a/api"]
    assert [p.name for p in graph.packages] == graph.topological_order
    by = graph.by_name()
    assert by["@a/api"].dependencies == ["@a/engine", "@a/rules", "@a/utils"]
    assert by["@a/engine"].dependencies == ["@a/rules"]  # left-pad is external
    assert (by["@a/rules"].category, by["@a/rules"].layer) == (Category.VALIDATOR, 0)
    assert (by["@a/api"].category, by["@a/api"].layer) == (Category.SERVICE, 3)
    assert by["@a/utils"].category is Category.UTILITY
    assert by["@a/other"].category is Category.UTILITY
    assert by["@a/engine"].plan_path == "plans/packages/core/engine.md"
    assert by["@a/rules"].plan_path is None
    assert by["@a/rules"].scripts == ["build", "test"]
    assert by["@a/rules"].version == "1.2.3"
    assert by["@a/api"].version == "0.0.0" and by["@a/api"].private
    assert by["@a/api"].path == "packages/services/api"
    assert all(p.exists for p in graph.packages)


def test_yarn_object_workspaces_and_lockfile(tmp_path: Path) -> None:
    root = npm_root(tmp_path, {"packages": ["libs/*"], "nohoist": ["**/x"]})
    (root / "yarn.lock").write_text("")
    pkg(root, "libs/one", "one")
    pkg(root, "libs/two", "two", {"one": "1.2.3"})
    graph = discover_workspace(root)
    assert graph.package_manager is PackageManager.YARN
    assert graph.topological_order == ["one", "two"]


def test_pnpm_workspace_yaml_without_root_package_json(tmp_path: Path) -> None:
    (tmp_path / "pnpm-workspace.yaml").write_text("packages:\n  - 'packages/*'\n  - apps/web\n")
    pkg(tmp_path, "packages/core", "@p/core")
    pkg(tmp_path, "apps/web", "@p/web", {"@p/core": "workspace:*"})
    graph = discover_workspace(tmp_path)
    assert graph.package_manager is PackageManager.PNPM
    assert graph.by_name()["@p/web"].dependencies == ["@p/core"]


def test_package_manager_field_beats_lockfiles(tmp_path: Path) -> None:
    root = npm_root(tmp_path, ["packages/*"], packageManager="pnpm@9.1.0+sha512.abc")
    (root / "package-lock.json").write_text("{}")
    pkg(root, "packages/a", "a")
    assert discover_workspace(root).package_manager is PackageManager.PNPM
    (root / "package.json").unlink()
    npm_root(tmp_path, ["packages/*"])
    assert discover_workspace(root).package_manager is PackageManager.NPM
    (root / "package-lock.json").unlink()
    (root / "pnpm-lock.yaml").write_text("")
    assert discover_workspace(root).package_manager is PackageManager.PNPM


def test_globs_double_star_negation_braces_and_ignored_dirs(tmp_path: Path) -> None:
    root = npm_root(
        tmp_path,
        ["packages/**", "!packages/legacy/**", "packages/legacy/keep", "tools/{cli,lint}"],
    )
    pkg(root, "packages/a", "a")
    pkg(root, "packages/deep/nested/b", "b")
    pkg(root, "packages/legacy/old", "old")
    pkg(root, "packages/legacy/keep", "keep")
    pkg(root, "packages/a/node_modules/dep", "dep-in-node-modules")
    pkg(root, "packages/.hidden", "hidden")
    (root / "packages/empty-dir").mkdir()  # a glob match without package.json is ignored
    pkg(root, "tools/cli", "cli")
    pkg(root, "tools/lint", "lint")
    pkg(root, "tools/other", "other")
    names = set(discover_workspace(root).topological_order)
    assert names == {"a", "b", "keep", "cli", "lint"}


def test_single_star_does_not_descend(tmp_path: Path) -> None:
    root = npm_root(tmp_path, ["./packages/*/"])
    pkg(root, "packages/a", "a")
    pkg(root, "packages/a/inner", "inner")
    assert discover_workspace(root).topological_order == ["a"]


# --- categories --------------------------------------------------------------------------------


def test_category_from_package_json_beats_path(tmp_path: Path) -> None:
    root = npm_root(tmp_path)
    pkg(root, "packages/core/x", "x", pkgbuilder={"category": "ui"})
    pkg(root, "packages/suites/s", "s")
    graph = discover_workspace(root).by_name()
    assert (graph["x"].category, graph["x"].layer) == (Category.UI, 4)
    assert (graph["s"].category, graph["s"].layer) == (Category.SUITE, 5)


def test_unknown_category_in_package_json(tmp_path: Path) -> None:
    root = npm_root(tmp_path)
    pkg(root, "packages/core/x", "x", pkgbuilder={"category": "widget"})
    with pytest.raises(WorkspaceError, match=r"pkgbuilder.category to 'widget', which is not one"):
        discover_workspace(root)


# --- --only ----------------------------------------------------------------------------------


def test_only_keeps_transitive_dependencies(tmp_path: Path) -> None:
    root = npm_root(tmp_path)
    pkg(root, "packages/validator/v", "@o/v")
    pkg(root, "packages/core/c", "@o/c", {"@o/v": "*"})
    pkg(root, "packages/service/s", "@o/s", {"@o/c": "*"})
    pkg(root, "packages/service/t", "@o/t", {"@o/v": "*"})
    assert discover_workspace(root, only=["@o/s"]).topological_order == ["@o/v", "@o/c", "@o/s"]
    assert discover_workspace(root, only=["t", "@o/c"]).topological_order == [
        "@o/v",
        "@o/c",
        "@o/t",
    ]
    with pytest.raises(WorkspaceError) as info:
        discover_workspace(root, only=["@o/cc"])
    assert str(info.value) == (
        "--only names @o/cc, which is not a package of the workspace (did you mean @o/c?)."
    )


def test_only_builds_a_closure_even_with_a_cycle_elsewhere(tmp_path: Path) -> None:
    root = npm_root(tmp_path)
    pkg(root, "packages/core/a", "a")
    pkg(root, "packages/core/x", "x", {"y": "*"})
    pkg(root, "packages/core/y", "y", {"x": "*"})
    assert discover_workspace(root, only=["a"]).topological_order == ["a"]
    with pytest.raises(DependencyCycleError, match=r"^Dependency cycle: x → y → x\.$"):
        discover_workspace(root, only=["x"])
    with pytest.raises(DependencyCycleError, match=r"^Dependency cycle: x → y → x\.$"):
        discover_workspace(root)


# --- user errors -----------------------------------------------------------------------------


def test_cycle_through_dev_dependencies_is_named(tmp_path: Path) -> None:
    root = npm_root(tmp_path)
    pkg(root, "packages/core/a", "@c/a", {"@c/b": "*"})
    write_json(
        root / "packages/core/b/package.json",
        {"name": "@c/b", "devDependencies": {"@c/c": "*"}},
    )
    pkg(root, "packages/core/c", "@c/c", {"@c/a": "*"})
    with pytest.raises(WorkspaceError) as info:
        discover_workspace(root)
    assert str(info.value) == "Dependency cycle: @c/a → @c/b → @c/c → @c/a."


def test_malformed_package_json_names_file_and_line(tmp_path: Path) -> None:
    root = npm_root(tmp_path)
    bad = root / "packages/core/bad/package.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{\n  "name": "bad",\n  "version": "1.0.0"\n  "main": "x.js"\n}\n')
    with pytest.raises(WorkspaceError) as info:
        discover_workspace(root)
    message = str(info.value)
    assert message.startswith("packages/core/bad/package.json is not valid JSON (line 4")
    assert one_sentence(message)


def test_malformed_root_package_json(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"workspaces": [')
    with pytest.raises(WorkspaceError, match=r"^package.json is not valid JSON \(line 1"):
        discover_workspace(tmp_path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"version": "1.0.0"}', 'packages/core/x/package.json has no "name"'),
        ('{"name": ""}', 'packages/core/x/package.json has no "name"'),
        ('["not", "an", "object"]', "packages/core/x/package.json must hold a JSON object."),
        ('{"name": "x", "dependencies": ["y"]}', '"dependencies" in packages/core/x/package.json'),
    ],
)
def test_invalid_package_json_content(tmp_path: Path, content: str, expected: str) -> None:
    root = npm_root(tmp_path)
    (root / "packages/core/x").mkdir(parents=True)
    (root / "packages/core/x/package.json").write_text(content)
    with pytest.raises(WorkspaceError) as info:
        discover_workspace(root)
    assert str(info.value).startswith(expected)
    assert one_sentence(str(info.value))


def test_duplicate_names_name_both_paths(tmp_path: Path) -> None:
    root = npm_root(tmp_path)
    pkg(root, "packages/core/one", "@d/same")
    pkg(root, "packages/utility/two", "@d/same")
    with pytest.raises(WorkspaceError) as info:
        discover_workspace(root)
    assert str(info.value) == (
        "Two packages are named @d/same: packages/core/one and packages/utility/two."
    )


def test_empty_workspace(tmp_path: Path) -> None:
    root = npm_root(tmp_path, ["packages/*"])
    (root / "packages/nothing-here").mkdir(parents=True)
    with pytest.raises(WorkspaceError) as info:
        discover_workspace(root)
    assert "No packages found in" in str(info.value)
    assert "package.json (packages/*) match no directory with a package.json." in str(info.value)
    write_json(root / "package.json", {"name": "root", "workspaces": []})
    with pytest.raises(WorkspaceError, match="No packages found"):
        discover_workspace(root)


def test_literal_workspace_entry_without_package_json(tmp_path: Path) -> None:
    root = npm_root(tmp_path, ["packages/*", "apps/web"])
    pkg(root, "packages/a", "a")
    with pytest.raises(WorkspaceError) as info:
        discover_workspace(root)
    assert str(info.value) == (
        "Workspace entry 'apps/web' in package.json has no package.json at apps/web/package.json."
    )


def test_not_a_monorepo_root(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match=r"there is no package\.json and there is no pnpm"):
        discover_workspace(tmp_path)
    write_json(tmp_path / "package.json", {"name": "single"})
    with pytest.raises(WorkspaceError, match=r'package\.json declares no "workspaces"'):
        discover_workspace(tmp_path)
    with pytest.raises(WorkspaceError, match="is not a directory"):
        discover_workspace(tmp_path / "missing")


@pytest.mark.parametrize(
    ("workspaces", "expected"),
    [
        ("packages/*", '"workspaces" in package.json must be a list of globs'),
        ({"nohoist": []}, '"workspaces" in package.json must be a list of globs'),
        (["packages/*", 3], "Every workspace entry in package.json must be a non-empty string."),
    ],
)
def test_bad_workspaces_field(tmp_path: Path, workspaces: Any, expected: str) -> None:
    write_json(tmp_path / "package.json", {"name": "r", "workspaces": workspaces})
    with pytest.raises(WorkspaceError, match=expected):
        discover_workspace(tmp_path)


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "packages:\n  - 'a/*'\n - broken",
            r"^pnpm-workspace.yaml is not valid YAML \(line 3\)\.$",
        ),
        (
            "onlyBuiltDependencies: []\n",
            r"^pnpm-workspace.yaml has no 'packages:' list of globs\.$",
        ),
        ("", r"^pnpm-workspace.yaml has no 'packages:' list"),
    ],
)
def test_bad_pnpm_workspace_yaml(tmp_path: Path, yaml_text: str, expected: str) -> None:
    (tmp_path / "pnpm-workspace.yaml").write_text(yaml_text)
    with pytest.raises(WorkspaceError, match=expected):
        discover_workspace(tmp_path)


def test_workspace_protocol_dependency_on_unknown_package(tmp_path: Path) -> None:
    root = npm_root(tmp_path)
    pkg(root, "packages/core/a", "@w/a", {"@w/ghost": "workspace:^", "lodash": "^4"})
    with pytest.raises(WorkspaceError) as info:
        discover_workspace(root)
    assert str(info.value) == (
        "@w/a depends on @w/ghost via 'workspace:^', but no workspace package is named @w/ghost."
    )


def test_unsupported_package_manager(tmp_path: Path) -> None:
    root = npm_root(tmp_path, packageManager="bun@1.1.0")
    pkg(root, "packages/core/a", "a")
    with pytest.raises(WorkspaceError, match=r"packageManager 'bun@1.1.0' .* not supported"):
        discover_workspace(root)


# --- the repository's own monorepos --------------------------------------------------------------


def test_demo_monorepo_graph() -> None:
    graph = discover_workspace(DEMO)
    assert len(graph.packages) >= 6
    assert len({p.layer for p in graph.packages}) >= 3
    assert graph.package_manager is PackageManager.NPM
    by = graph.by_name()
    assert by["@demo/schema"].dependencies == ["@demo/number-rules", "@demo/string-rules"]
    assert by["@demo/schema"].plan_path == "plans/packages/core/schema.md"
    assert by["@demo/suite"].category is Category.SUITE
    assert graph.topological_order[-1] == "@demo/suite"
    assert all({"build", "test"} <= set(p.scripts) for p in graph.packages)
    assert sum("lint" in p.scripts for p in graph.packages) >= 2


def test_demo_master_plan_describes_the_same_graph() -> None:
    from_workspace = discover_workspace(DEMO)
    from_plan = discover_workspace(DEMO, plan=DEMO / "plans" / "master-plan.md")
    assert from_plan.topological_order == from_workspace.topological_order
    for a, b in zip(from_plan.packages, from_workspace.packages, strict=True):
        assert (a.path, a.category, a.dependencies, a.exists) == (
            b.path,
            b.category,
            b.dependencies,
            True,
        )


def test_failing_fixture_graph() -> None:
    graph = discover_workspace(FAILING)
    assert len(graph.packages) == 6
    assert transitive_dependents(graph.packages, "@fx/broken") == {"@fx/mid", "@fx/top"}
    independent = set(graph.topological_order) - {"@fx/broken", "@fx/mid", "@fx/top"}
    assert independent == {"@fx/base", "@fx/other", "@fx/solo"}
    planned = discover_workspace(FAILING, plan=FAILING / "plans" / "master-plan.md")
    assert planned.topological_order == graph.topological_order
