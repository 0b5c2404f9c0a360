"""Relative imports into a sibling package without a declared edge are found and named."""

from __future__ import annotations

import json
from pathlib import Path

from pkgbuilder.workspace.discovery import discover_workspace
from pkgbuilder.workspace.sibling_imports import undeclared_sibling_imports


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _pkg(root: Path, rel: str, name: str, **extra: object) -> None:
    _write(root / rel / "package.json", json.dumps({"name": name, **extra}))


def test_undeclared_relative_import_of_a_sibling_is_named(tmp_path: Path) -> None:
    _write(tmp_path / "package.json", json.dumps({"name": "r", "workspaces": ["pkgs/*"]}))
    _pkg(tmp_path, "pkgs/other", "@x/other")
    _pkg(tmp_path, "pkgs/app", "@x/app")
    _pkg(tmp_path, "pkgs/lib", "@x/lib", dependencies={"@x/other": "*"})
    _write(
        tmp_path / "pkgs/app/src/index.ts",
        "import { a } from '../../other/esm/index.js';\nimport './local';\n"
        'const b = require("../../other/dist/b");\n',
    )
    _write(tmp_path / "pkgs/app/src/local.ts", "export {};\n")
    _write(tmp_path / "pkgs/lib/src/index.js", "export * from '../../other/esm/index.js';\n")
    # Ignored: declaration files, node_modules, build output, paths outside the workspace.
    _write(tmp_path / "pkgs/app/src/types.d.ts", "import '../../other/x';\n")
    _write(tmp_path / "pkgs/app/node_modules/y/i.js", "require('../../../other/x');\n")
    _write(tmp_path / "pkgs/app/dist/i.js", "require('../../other/x');\n")
    _write(tmp_path / "pkgs/app/src/up.js", "require('../../../../elsewhere');\n")
    graph = discover_workspace(tmp_path)
    warnings = undeclared_sibling_imports(tmp_path, graph.packages)
    assert warnings == [
        "@x/app imports '../../other/esm/index.js' (pkgs/app/src/index.ts) from @x/other "
        "without depending on it: declare it (pkgbuilder.dependsOn in its package.json, or "
        "[graph.dependsOn]) or its build order is left to chance."
    ]
    _pkg(tmp_path, "pkgs/app", "@x/app", pkgbuilder={"dependsOn": ["@x/other"]})
    assert undeclared_sibling_imports(tmp_path, discover_workspace(tmp_path).packages) == []


def test_tests_importing_sibling_sources_are_not_build_edges(tmp_path: Path) -> None:
    _write(tmp_path / "package.json", json.dumps({"name": "r", "workspaces": ["pkgs/*"]}))
    _pkg(tmp_path, "pkgs/cli", "@x/cli")
    _pkg(tmp_path, "pkgs/core", "@x/core")
    _write(tmp_path / "pkgs/core/src/__tests__/a.spec.ts", "import '../../../cli/src/a.js';\n")
    _write(tmp_path / "pkgs/core/src/b.test.ts", "import '../../cli/src/a.js';\n")
    _write(tmp_path / "pkgs/core/test/c.js", "require('../../cli/src/a.js');\n")
    assert undeclared_sibling_imports(tmp_path, discover_workspace(tmp_path).packages) == []
