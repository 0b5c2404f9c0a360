"""The fix loop's file rules without Temporal: which package files the model is shown, in
what order and within what budget, and where a fix may act at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from pkgbuilder.llm.fix import FixInputError, collect_context_files, package_dirs
from pkgbuilder.models.build import Failure, FailureType


def _package(root: Path) -> Path:
    pkg = root / "packages" / "a"
    for rel, text in {
        "package.json": "{}",
        "tsconfig.json": "{}",
        "notes.txt": "not shown",
        "src/index.ts": "export const a = 1;\n",
        "src/util.ts": "export const u = 2;\n",
        "src/logo.png": "png",
        "src/node_modules/x/index.js": "skipped",
        "dist/index.js": "build output",
    }.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    return pkg


def test_files_named_in_failures_come_first_then_config_then_sources(tmp_path: Path) -> None:
    pkg = _package(tmp_path)
    failures = [
        Failure(
            type=FailureType.TEST,
            message="boom",
            output_tail=f"at {pkg}/src/util.ts:3\nsee packages/a/src/index.ts and ../../etc/x.ts",
        )
    ]
    files, omitted = collect_context_files(pkg, "packages/a", failures, 10_000, 1_000)
    assert [rel for rel, _ in files] == [
        "src/util.ts",
        "src/index.ts",
        "package.json",
        "tsconfig.json",
    ]
    assert omitted == []


def test_the_budget_omits_what_does_not_fit_and_files_are_cut(tmp_path: Path) -> None:
    pkg = _package(tmp_path)
    (pkg / "src" / "index.ts").write_text("x" * 500)
    files, omitted = collect_context_files(pkg, "packages/a", [], 30, 100)
    shown = dict(files)
    assert list(shown) == ["package.json", "tsconfig.json", "src/util.ts"]
    assert omitted == ["src/index.ts"]
    files, _ = collect_context_files(pkg, "packages/a", [], 10_000, 100)
    assert dict(files)["src/index.ts"].endswith("[... truncated ...]")


def test_a_fix_acts_only_on_a_package_directory_inside_the_workspace(tmp_path: Path) -> None:
    _package(tmp_path)
    workspace, pkg = package_dirs(str(tmp_path), "packages/a")
    assert pkg == workspace / "packages" / "a"
    for bad in ("../elsewhere", "packages/missing", "packages/a/package.json"):
        with pytest.raises(FixInputError, match="is not a directory inside"):
            package_dirs(str(tmp_path), bad)
