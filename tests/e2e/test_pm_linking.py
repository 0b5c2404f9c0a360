"""Which workspace dependencies the package manager really links (pm/linking.py), npm's
semver ranges (pm/semver.py) and the install fingerprint (pm/fingerprint.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pkgbuilder.steps.install import manifest_fingerprint
from pkgbuilder.workspace.discovery import DependencyCycleError, discover_workspace
from pkgbuilder.workspace.pm import install_inputs
from pkgbuilder.workspace.pm.semver import satisfies


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("version", "spec", "expected"),
    [
        ("16.0.3", "^15.0.0", False),
        ("16.0.3", "^16.0.0", True),
        ("1.2.3", "~1.2.0", True),
        ("1.3.0", "~1.2.0", False),
        ("0.2.5", "^0.2.3", True),
        ("0.3.0", "^0.2.3", False),
        ("0.0.4", "^0.0.3", False),
        ("1.2.3", "1.x", True),
        ("2.0.0", "1.x", False),
        ("1.2.3", "*", True),
        ("1.2.3", "", True),
        ("1.2.3", ">=1.0.0 <1.2.3", False),
        ("1.2.3", ">=1.0.0 <=1.2.3", True),
        ("1.2.3", "1.0.0 - 1.2", True),
        ("1.3.0", "1.0.0 - 1.2", False),
        ("3.1.0", "^1.0.0 || ^3.0.0", True),
        ("2.0.0-beta.1", "^2.0.0-alpha", True),
        ("2.0.0-beta.1", "^1.0.0", False),
        ("2.1.0-beta.1", ">=2.0.0", False),  # prereleases only match their own triple
        ("1.2.3", "=1.2.3", True),
        ("1.2.3", "v1.2.3", True),
        ("1.2.4", "> 1.2.3", True),
        ("1.2.3", "latest", None),
        ("1.2.3", "github:a/b", None),
        ("1.2.3", "npm:other@^1", None),
    ],
)
def test_npm_semver_ranges(version: str, spec: str, expected: bool | None) -> None:
    assert satisfies(version, spec) is expected


def _mono(root: Path, manager_files: dict[str, str] | None = None, **root_extra: Any) -> Path:
    """a@16.0.3 and b@1.0.0 (b depends on a with the given ranges), c depends on a via
    workspace:*."""
    write_json(root / "package.json", {"name": "r", "private": True, **root_extra})
    write_json(root / "packages/a/package.json", {"name": "@x/a", "version": "16.0.3"})
    for name, text in (manager_files or {}).items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def _b(root: Path, deps: dict[str, str], field: str = "dependencies") -> None:
    write_json(root / "packages/b/package.json", {"name": "@x/b", "version": "1.0.0", field: deps})


def _edges(root: Path) -> dict[str, list[str]]:
    return {p.name: p.dependencies for p in discover_workspace(root).packages}


def test_npm_links_only_satisfied_ranges(tmp_path: Path) -> None:
    root = _mono(tmp_path, workspaces=["packages/*"])
    _b(root, {"@x/a": "^15.0.0"})
    assert _edges(root)["@x/b"] == []
    _b(root, {"@x/a": "^16.0.0"}, "devDependencies")
    assert _edges(root)["@x/b"] == ["@x/a"]
    _b(root, {"@x/a": "latest"})
    assert _edges(root)["@x/b"] == ["@x/a"]  # npm links a dist-tag to the workspace copy
    _b(root, {"@x/a": "file:../a"})
    assert _edges(root)["@x/b"] == ["@x/a"]
    _b(root, {"@x/a": "github:x/a"})
    assert _edges(root)["@x/b"] == []


def test_npm_lockfile_is_the_truth(tmp_path: Path) -> None:
    root = _mono(tmp_path, workspaces=["packages/*"])
    _b(root, {"@x/a": "*"})
    lock = {
        "lockfileVersion": 3,
        "packages": {
            "": {"workspaces": ["packages/*"]},
            "node_modules/@x/a": {"resolved": "packages/a", "link": True},
            "packages/b/node_modules/@x/a": {
                "version": "15.1.0",
                "resolved": "https://registry.npmjs.org/@x/a/-/a.tgz",
            },
        },
    }
    write_json(root / "package-lock.json", lock)
    assert _edges(root)["@x/b"] == []  # the lockfile installs @x/a for b from the registry
    del lock["packages"]["packages/b/node_modules/@x/a"]
    write_json(root / "package-lock.json", lock)
    assert _edges(root)["@x/b"] == ["@x/a"]


def test_pnpm_links_plain_ranges_only_with_link_workspace_packages(tmp_path: Path) -> None:
    root = _mono(
        tmp_path,
        {"pnpm-workspace.yaml": "packages: ['packages/*']\n"},
        packageManager="pnpm@9.15.9",
    )
    _b(root, {"@x/a": "^16.0.0"})
    assert _edges(root)["@x/b"] == []  # pnpm 9+: link-workspace-packages is off by default
    _b(root, {"@x/a": "workspace:^"})
    assert _edges(root)["@x/b"] == ["@x/a"]
    _b(root, {"@x/a": "^16.0.0"})
    (root / ".npmrc").write_text("link-workspace-packages=true\n")
    assert _edges(root)["@x/b"] == ["@x/a"]
    _b(root, {"@x/a": "^15.0.0"})
    assert _edges(root)["@x/b"] == []  # not satisfied: from the registry even when linking
    (root / ".npmrc").unlink()
    (root / "pnpm-workspace.yaml").write_text(
        "packages: ['packages/*']\nlinkWorkspacePackages: true\n"
    )
    _b(root, {"@x/a": "16"})
    assert _edges(root)["@x/b"] == ["@x/a"]


def test_pnpm_lockfile_link_entries_are_the_truth(tmp_path: Path) -> None:
    root = _mono(tmp_path, {"pnpm-workspace.yaml": "packages: ['packages/*']\n"})
    _b(root, {"@x/a": "^16.0.0"})
    (root / "pnpm-lock.yaml").write_text(
        "lockfileVersion: '9.0'\nimporters:\n  .: {}\n  packages/a: {}\n  packages/b:\n"
        "    dependencies:\n      '@x/a':\n        specifier: ^16.0.0\n"
        "        version: link:../a\n"
    )
    assert _edges(root)["@x/b"] == ["@x/a"]
    (root / "pnpm-lock.yaml").write_text(
        "lockfileVersion: '9.0'\nimporters:\n  packages/b:\n    dependencies:\n"
        "      '@x/a':\n        specifier: ^16.0.0\n        version: 16.0.1\n"
    )
    assert _edges(root)["@x/b"] == []


def test_unlinked_ranges_do_not_make_a_cycle(tmp_path: Path) -> None:
    """The issue's case: @x/b asks for an older @x/a, which the registry provides."""
    root = _mono(
        tmp_path,
        {"pnpm-workspace.yaml": "packages: ['packages/*']\n"},
        packageManager="pnpm@9.15.9",
    )
    write_json(
        root / "packages/a/package.json",
        {"name": "@x/a", "version": "16.0.3", "devDependencies": {"@x/b": "workspace:*"}},
    )
    _b(root, {"@x/a": "^15.0.0"})
    graph = discover_workspace(root)
    assert graph.topological_order == ["@x/b", "@x/a"]
    _b(root, {"@x/a": "workspace:*"})
    with pytest.raises(DependencyCycleError) as info:
        discover_workspace(root)
    assert str(info.value) == "Dependency cycle: @x/a → @x/b → @x/a."


def test_yarn_berry_pnp_is_refused_in_one_sentence(tmp_path: Path) -> None:
    root = _mono(
        tmp_path,
        {".yarnrc.yml": "enableTelemetry: false\n"},
        workspaces=["packages/*"],
        packageManager="yarn@4.18.1",
    )
    _b(root, {"@x/a": "^16.0.0"})
    with pytest.raises(Exception, match=r"Plug'n'Play .* set 'nodeLinker: node-modules'"):
        discover_workspace(root)
    (root / ".yarnrc.yml").write_text("nodeLinker: node-modules\n")
    assert _edges(root)["@x/b"] == ["@x/a"]


def test_declaration_order_breaks_ties(tmp_path: Path) -> None:
    write_json(tmp_path / "package.json", {"name": "r", "workspaces": ["tools/*", "apps/*"]})
    for rel, name in [("apps/a", "a-app"), ("tools/z", "z-tool"), ("tools/m", "m-tool")]:
        write_json(tmp_path / rel / "package.json", {"name": name})
    assert discover_workspace(tmp_path).topological_order == ["m-tool", "z-tool", "a-app"]


def test_fingerprint_reads_only_the_manifests_that_matter(tmp_path: Path) -> None:
    root = _mono(tmp_path, workspaces=["packages/*"])
    _b(root, {"@x/a": "*"})
    # A test fixture that is a *directory* named package.json, fixtures deeper down,
    # node_modules and pkgbuilder's own state: none of them count, none of them crash.
    (root / "packages/b/test/fixtures/package.json").mkdir(parents=True)
    write_json(root / "packages/b/test/fixtures/app/package.json", {"name": "fixture"})
    write_json(root / "node_modules/x/package.json", {"name": "x"})
    write_json(root / ".pkgbuilder/publishing/registry/package.json", {"name": "verdaccio-install"})
    (root / "package-lock.json").write_text("{}")
    assert install_inputs(root, ["packages/a", "packages/b"]) == [
        "package-lock.json",
        "package.json",
        "packages/a/package.json",
        "packages/b/package.json",
    ]
    before = manifest_fingerprint(root)
    write_json(root / "packages/b/test/fixtures/app/package.json", {"name": "changed"})
    write_json(root / ".pkgbuilder/publishing/registry/package.json", {"name": "changed"})
    assert manifest_fingerprint(root) == before
    _b(root, {"@x/a": "^16.0.0"})
    assert manifest_fingerprint(root) != before


def test_extra_edges_from_config_package_json_and_turbo(tmp_path: Path) -> None:
    """Undeclared build-order needs (a relative import of a sibling's output) are made
    explicit: graph.dependsOn in the config, pkgbuilder.dependsOn, turbo.json."""
    write_json(tmp_path / "package.json", {"name": "r", "workspaces": ["packages/*"]})
    for name in ("a", "b", "c", "d"):
        write_json(tmp_path / f"packages/{name}/package.json", {"name": f"@x/{name}"})
    assert all(not p.dependencies for p in discover_workspace(tmp_path).packages)
    write_json(
        tmp_path / "packages/b/package.json",
        {"name": "@x/b", "pkgbuilder": {"dependsOn": ["@x/a"]}},
    )
    write_json(
        tmp_path / "turbo.json",
        {
            "tasks": {
                "build": {"dependsOn": ["^build"]},
                "@x/c#build": {"dependsOn": ["@x/b#build", "//#codegen", "@x/ghost#build"]},
                "test": {"dependsOn": ["^test"]},
            }
        },
    )
    write_json(
        tmp_path / "packages/d/turbo.json",
        {"extends": ["//"], "tasks": {"build": {"dependsOn": ["@x/a#build"]}}},
    )
    graph = discover_workspace(tmp_path, only=["@x/c"])
    assert graph.topological_order == ["@x/a", "@x/b", "@x/c"]  # the closure follows them
    assert graph.by_name()["@x/c"].dependencies == ["@x/b"]
    assert graph.tests_gate is True
    graph = discover_workspace(tmp_path, depends_on={"@x/b": ["@x/d"]})
    assert graph.by_name()["@x/b"].dependencies == ["@x/a", "@x/d"]
    assert graph.by_name()["@x/d"].dependencies == ["@x/a"]
    with pytest.raises(DependencyCycleError):  # d needs a (turbo) and a needs d (config)
        discover_workspace(tmp_path, depends_on={"@x/a": ["@x/d"]})
    with pytest.raises(
        Exception,
        match=r"^graph.dependsOn of @x/a in the config names "
        r"@x/zz, which is not a package of the workspace\.$",
    ):
        discover_workspace(tmp_path, depends_on={"@x/a": ["@x/zz"]})


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (
            "npm warn EBADENGINE x\nnpm error code EUSAGE\nnpm error\nnpm error `npm ci` can only "
            "install packages when your package.json and package-lock.json are in sync.\nnpm error "
            "Missing: encoding@0.1.14 from lock file\nnpm error A complete log of this run can be "
            "found in: /x.log\n",
            "`npm ci` can only install packages when your package.json and package-lock.json "
            "are in sync.",
        ),
        (
            "Scope: all 3 workspace projects\n ERR_PNPM_OUTDATED_LOCKFILE  Cannot install with "
            '"frozen-lockfile" because pnpm-lock.yaml is not up to date\n\nNote that in CI ...\n',
            'ERR_PNPM_OUTDATED_LOCKFILE  Cannot install with "frozen-lockfile" because '
            "pnpm-lock.yaml is not up to date",
        ),
        (
            "yarn install v1.22.22\n[1/4] Resolving packages...\nerror Your lockfile needs to be "
            "updated, but yarn was run with `--frozen-lockfile`.\ninfo Visit https://x for docs.\n",
            "Your lockfile needs to be updated, but yarn was run with `--frozen-lockfile`.",
        ),
        (
            "➤ YN0000: · Yarn 4.18.1\n➤ YN0028: │ The lockfile would have been modified by this "
            "install, which is explicitly forbidden.\n➤ YN0000: · Failed with errors in 0s 80ms\n",
            "➤ YN0028: │ The lockfile would have been modified by this install, which is "
            "explicitly forbidden.",
        ),
        ("something odd\nKilled\n", "Killed"),
    ],
)
def test_install_failure_reason_picks_the_line_that_says_why(tail: str, expected: str) -> None:
    from pkgbuilder.steps.install import install_failure_reason

    assert install_failure_reason(tail) == expected


def test_tool_on_path_is_used_only_at_the_requested_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PATH first when it is the version packageManager asks for; else the tool cache
    (here pre-seeded, so nothing is downloaded), never silently another version."""
    from pkgbuilder.models.common import PackageManager
    from pkgbuilder.workspace.pm import resolve_tool

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "pnpm"
    fake.write_text("#!/bin/sh\necho 9.15.9\n")
    fake.chmod(0o755)
    cache = tmp_path / "tools"
    cached = cache / "pnpm@10.0.0" / "node_modules" / ".bin" / "pnpm"
    cached.parent.mkdir(parents=True)
    cached.write_text("#!/bin/sh\necho 10.0.0\n")
    cached.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("PKGBUILDER_TOOLS_CACHE", str(cache))
    on_path = resolve_tool(tmp_path, PackageManager.PNPM, {"packageManager": "pnpm@9.15.9"})
    assert on_path.describe() == "pnpm 9.15.9 from PATH" and on_path.argv == (str(fake),)
    other = resolve_tool(tmp_path, PackageManager.PNPM, {"packageManager": "pnpm@10.0.0+sha1.x"})
    assert other.describe() == "pnpm 10.0.0 from tool cache"
    assert resolve_tool(tmp_path, PackageManager.PNPM, {}).source == "PATH"  # any version
