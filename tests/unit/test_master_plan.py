"""Master plan parsing and plan-driven discovery (packages that may not exist yet)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pkgbuilder.models.common import Category
from pkgbuilder.workspace.discovery import WorkspaceError, discover_workspace
from pkgbuilder.workspace.master_plan import (
    confined_relative_path,
    parse_master_plan,
    parse_master_plan_text,
)

PLAN = """\
# Master plan: acme

Intro prose with a bullet that is not in the section:
- @acme/not-a-package (core)

## Packages

### Layer 0
- @acme/backoff (validator)
* `@acme/validators` (validators) — depends on: none

### Layer 1
- @acme/retry-policy (core) — depends on: @acme/backoff, `@acme/validators`
  - indented notes are ignored (core)
- @acme/http-client (Utility) -- depends on: @acme/retry-policy -- path: libs/http-client/
+ @acme/api (services) \u2013 deps: @acme/http-client @acme/retry-policy

```
- @acme/in-a-code-block (core)
```

## Next steps
- @acme/later (suite)
"""


def write_plan(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "master-plan.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_parse_the_documented_format() -> None:
    plan = parse_master_plan_text(PLAN, "plan.md")
    assert [p.name for p in plan.packages] == [
        "@acme/backoff",
        "@acme/validators",
        "@acme/retry-policy",
        "@acme/http-client",
        "@acme/api",
    ]
    by = {p.name: p for p in plan.packages}
    assert by["@acme/validators"].category is Category.VALIDATOR
    assert by["@acme/validators"].dependencies == []
    assert by["@acme/retry-policy"].dependencies == ["@acme/backoff", "@acme/validators"]
    assert by["@acme/retry-policy"].line == 13
    assert by["@acme/http-client"].category is Category.UTILITY
    assert by["@acme/http-client"].path == "libs/http-client"
    assert by["@acme/api"].category is Category.SERVICE
    assert by["@acme/api"].dependencies == ["@acme/http-client", "@acme/retry-policy"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# Plan\n- @a/x (core)\n", "plan.md has no '## Packages' section"),
        ("## Packages\n\nNothing yet.\n", "plan.md lists no packages"),
        ("## Packages\n- @a/x core\n", "plan.md line 2: expected '- @scope/name (category)"),
        ("## Packages\n- @a/x (widget)\n", "plan.md line 2: unknown category 'widget' for @a/x"),
        ("## Packages\n- @A/Bad (core)\n", "plan.md line 2: '@A/Bad' is not a valid npm package"),
        ("## Packages\n- @a/x (core)\n- @a/x (ui)\n", "plan.md lists @a/x twice (lines 2 and 3)."),
        (
            "## Packages\n- @a/x (core) — owner: me\n",
            "plan.md line 2: unknown clause 'owner: me' (expected 'depends on:' or 'path:').",
        ),
        (
            "## Packages\n- @a/x (core) — path: ../outside\n",
            "plan.md line 2: path '../outside' of @a/x must be a relative path inside",
        ),
        (
            "## Packages\n- @a/x (core) — path: /etc\n",
            "plan.md line 2: path '/etc' of @a/x must be a relative path inside",
        ),
        (
            "## Packages\n- @a/x (core) — depends on: @a/y, Not Valid\n",
            "plan.md line 2: dependency 'Not' of @a/x is not a valid npm package name.",
        ),
    ],
)
def test_plan_errors_are_one_sentence_with_line(text: str, expected: str) -> None:
    with pytest.raises(WorkspaceError) as info:
        parse_master_plan_text(text, "plan.md")
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


def test_missing_plan_file(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match=r"Master plan .*nope.md does not exist\."):
        parse_master_plan(tmp_path / "nope.md")


def test_confined_relative_path() -> None:
    assert confined_relative_path("./packages//core/x/") == "packages/core/x"
    for bad in ("", ".", "/abs", "~/x", "a/../../b", "a\\b", "../x"):
        assert confined_relative_path(bad) is None


def test_plan_packages_that_do_not_exist_yet(tmp_path: Path) -> None:
    plan = write_plan(
        tmp_path,
        "## Packages\n- @n/base (validator)\n- @n/tool (utility) — depends on: @n/base\n",
    )
    (tmp_path / "plans/packages/utility").mkdir(parents=True)
    (tmp_path / "plans/packages/utility/tool.md").write_text("# Package: @n/tool\n")
    graph = discover_workspace(tmp_path, plan=plan)
    assert graph.topological_order == ["@n/base", "@n/tool"]
    tool = graph.by_name()["@n/tool"]
    assert not tool.exists
    assert tool.path == "packages/utility/tool"
    assert tool.plan_path == "plans/packages/utility/tool.md"
    assert (tool.category, tool.layer, tool.dependencies) == (Category.UTILITY, 2, ["@n/base"])


def test_plan_merges_with_existing_packages(tmp_path: Path) -> None:
    root = tmp_path
    (root / "package.json").write_text(json.dumps({"name": "r", "workspaces": ["libs/*"]}))
    for rel, data in {
        "libs/shared": {"name": "@m/shared", "version": "2.0.0"},
        "libs/core": {"name": "@m/core", "dependencies": {"@m/shared": "*"}},
        "libs/unrelated": {"name": "@m/unrelated"},
    }.items():
        (root / rel).mkdir(parents=True)
        (root / rel / "package.json").write_text(json.dumps(data))
    plan = write_plan(
        root,
        "## Packages\n"
        "- @m/core (core)\n"  # path taken from the workspace
        "- @m/app (suite) — depends on: @m/core — path: apps/app\n",
    )
    graph = discover_workspace(root, plan=plan)
    # @m/shared comes along because @m/core depends on it; @m/unrelated is not in scope.
    assert graph.topological_order == ["@m/shared", "@m/core", "@m/app"]
    by = graph.by_name()
    assert by["@m/core"].category is Category.CORE  # from the plan, not the path
    assert by["@m/core"].path == "libs/core"
    assert by["@m/core"].dependencies == ["@m/shared"]  # from package.json
    assert by["@m/shared"].version == "2.0.0" and by["@m/shared"].exists
    assert by["@m/app"].path == "apps/app" and not by["@m/app"].exists


def test_plan_dependency_on_unknown_package(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, "## Packages\n- @u/a (core)\n- @u/b (service) — deps: @u/zz\n")
    with pytest.raises(WorkspaceError) as info:
        discover_workspace(tmp_path, plan=plan)
    assert str(info.value) == (
        "@u/b depends on @u/zz (master plan line 3), which is neither in the master plan nor "
        "in the workspace."
    )


def test_plan_cycle(tmp_path: Path) -> None:
    plan = write_plan(
        tmp_path, "## Packages\n- @y/a (core) — deps: @y/b\n- @y/b (core) — deps: @y/a\n"
    )
    with pytest.raises(WorkspaceError, match=r"^Dependency cycle: @y/a → @y/b → @y/a\.$"):
        discover_workspace(tmp_path, plan=plan)


def test_plan_name_mismatch_and_path_conflict(tmp_path: Path) -> None:
    (tmp_path / "packages/core/x").mkdir(parents=True)
    (tmp_path / "packages/core/x/package.json").write_text('{"name": "@z/other"}')
    plan = write_plan(tmp_path, "## Packages\n- @z/x (core)\n")
    with pytest.raises(WorkspaceError) as info:
        discover_workspace(tmp_path, plan=plan)
    assert str(info.value) == (
        "packages/core/x/package.json is named @z/other, but the master plan (line 2) expects "
        "@z/x there."
    )
    (tmp_path / "package.json").write_text('{"workspaces": ["packages/*/*"]}')
    plan = write_plan(tmp_path, "## Packages\n- @z/other (core) — path: elsewhere/other\n")
    with pytest.raises(WorkspaceError, match="puts @z/other at elsewhere/other, but the workspace"):
        discover_workspace(tmp_path, plan=plan)


def test_plan_path_through_symlink_outside_workspace(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "package.json").write_text('{"name": "@s/x"}')
    root = tmp_path / "ws"
    (root / "packages/core").mkdir(parents=True)
    (root / "packages/core/x").symlink_to(outside)
    plan = write_plan(root, "## Packages\n- @s/x (core)\n")
    with pytest.raises(WorkspaceError, match="must be a directory inside the workspace"):
        discover_workspace(root, plan=plan)
