"""The layer map of docs/architecture.md is enforced: import-linter's contracts (in
pyproject.toml) must hold, and they must be able to fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def lint_imports_argv() -> list[str]:
    return [shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"]


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*lint_imports_argv(), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_import_contracts_hold() -> None:
    proc = lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout or "broken" not in proc.stdout.split("Contracts:")[-1]
    assert proc.stdout.count("KEPT") >= 4


def test_a_violation_breaks_a_contract(tmp_path: Path) -> None:
    """A copy of the package where a domain module imports Temporal fails the check."""
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    graph = tmp_path / "src" / "pkgbuilder" / "workspace" / "graph.py"
    graph.write_text("import temporalio.workflow  # a violation\n" + graph.read_text())
    proc = subprocess.run(
        [*lint_imports_argv(), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "src")},
    )
    assert proc.returncode != 0
    assert "Domain modules are Temporal-free BROKEN" in proc.stdout
    assert "pkgbuilder.workspace.graph -> temporalio (l.1)" in proc.stdout


# Top-level modules allowed to use Temporal: the Temporal layers, plus one adapter.
TEMPORAL_SIDE = {"activities", "cli", "runtime", "workflows", "search_attributes"}


def test_every_top_level_module_is_classified() -> None:
    """A new domain package must be added to the Temporal-free contract (or to the Temporal
    side above, with a reason): nothing escapes the layer map by being new."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
    domain = next(c for c in contracts if c["name"] == "Domain modules are Temporal-free")
    listed = {m.removeprefix("pkgbuilder.") for m in domain["source_modules"]}
    package = ROOT / "src" / "pkgbuilder"
    found = {
        p.stem if p.is_file() else p.name
        for p in package.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    }
    unclassified = found - listed - TEMPORAL_SIDE
    assert not unclassified, f"add to a contract in pyproject.toml: {sorted(unclassified)}"


def git_violations(source: str) -> list[str]:
    """Where ``source`` runs git itself: GitPython imported, or an argv literal starting with
    ``"git"`` (what subprocess, ``run_command`` or an argv variable would be given)."""
    import ast

    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and any(
            a.name == "git" or a.name.startswith("git.") for a in node.names
        ):
            found.append(f"l.{node.lineno}: import git")
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module
            and (node.module == "git" or node.module.startswith("git."))
        ):
            found.append(f"l.{node.lineno}: from {node.module} import")
        elif isinstance(node, (ast.List, ast.Tuple)) and node.elts:
            first = node.elts[0]
            if isinstance(first, ast.Constant) and first.value == "git":
                found.append(f"l.{node.lineno}: argv starting with 'git'")
    return found


def test_only_vcs_runs_git() -> None:
    """Every git process starts in pkgbuilder.vcs (scrubbed environment, one error type)."""
    package = ROOT / "src" / "pkgbuilder"
    offenders = {
        str(path.relative_to(package)): hits
        for path in sorted(package.rglob("*.py"))
        if path.relative_to(package).parts[0] != "vcs"
        and (hits := git_violations(path.read_text(encoding="utf-8")))
    }
    assert not offenders, f"run git through pkgbuilder.vcs instead: {offenders}"


@pytest.mark.parametrize(
    "source",
    [
        "import subprocess\nsubprocess.run(['git', 'status'], check=False)\n",
        "argv = ('git', 'log')\n",
        "import git\n",
        "from git import Repo\n",
        "from git.cmd import Git\n",
    ],
)
def test_the_git_check_can_fail(source: str) -> None:
    assert git_violations(source)


def test_the_git_check_ignores_words() -> None:
    assert not git_violations("from pkgbuilder.vcs import Repository\nx = ['gitignore']\n")
