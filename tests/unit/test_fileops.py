"""Applying the model's file operations: hostile input, confined, capped, all-or-nothing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pkgbuilder.llm.fileops import (
    FileOperationError,
    FileOpLimits,
    apply_file_operations,
    normalise_path,
    plan_operations,
)
from pkgbuilder.models.llm import FileOperation


def op(path: str, operation: str = "update", content: str | None = "x\n") -> FileOperation:
    return FileOperation(
        path=path, operation=operation, content=None if operation == "delete" else content
    )


def snapshot(root: Path) -> dict[str, tuple[str, bytes | str]]:
    """Every entry below ``root`` (symlinks not followed): kind + content or link target."""
    out: dict[str, tuple[str, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", b"")
            else:
                out[rel] = ("file", p.read_bytes())
    return out


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(tmp root, package dir, an outside directory with a secret) — snapshot ``tmp root``."""
    pkg = tmp_path / "ws" / "packages" / "core" / "alpha"
    (pkg / "src").mkdir(parents=True)
    (pkg / "package.json").write_text('{"name": "alpha"}\n')
    (pkg / "src" / "index.ts").write_text("export const a = 1;\n")
    (pkg / "node_modules" / "dep").mkdir(parents=True)
    (pkg / "node_modules" / "dep" / "index.js").write_text("module.exports = 1;\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("do not touch\n")
    return tmp_path, pkg, outside


# --- happy path ------------------------------------------------------------------------


def test_create_update_delete_and_report_changed(world: tuple[Path, Path, Path]) -> None:
    _, pkg, _ = world
    (pkg / "src" / "old.ts").write_text("old\n")
    changed = apply_file_operations(
        pkg,
        [
            op("src/index.ts", "update", "export const a = 2;\n"),
            op("src/deep/new/file.ts", "create", "export {};\n"),
            op("src/old.ts", "delete"),
        ],
    )
    assert changed == ["src/index.ts", "src/deep/new/file.ts", "src/old.ts"]
    assert (pkg / "src" / "index.ts").read_text() == "export const a = 2;\n"
    assert (pkg / "src" / "deep" / "new" / "file.ts").read_text() == "export {};\n"
    assert not (pkg / "src" / "old.ts").exists()
    leftovers = [p for p in pkg.rglob("*") if "pkgbuilder-tmp" in p.name]
    assert leftovers == []


def test_reapplying_is_a_no_op(world: tuple[Path, Path, Path]) -> None:
    _, pkg, _ = world
    ops = [op("src/index.ts", "update", "v2\n"), op("src/gone.ts", "delete")]
    assert apply_file_operations(pkg, ops) == ["src/index.ts"]
    assert apply_file_operations(pkg, ops) == []  # identical content, missing file


def test_paths_are_normalised(world: tuple[Path, Path, Path]) -> None:
    _, pkg, _ = world
    assert apply_file_operations(pkg, [op("./src//index.ts", "update", "n\n")]) == ["src/index.ts"]


def test_file_mode_is_kept(world: tuple[Path, Path, Path]) -> None:
    _, pkg, _ = world
    script = pkg / "bin.js"
    script.write_text("#!/usr/bin/env node\n")
    script.chmod(0o755)
    apply_file_operations(pkg, [op("bin.js", "update", "#!/usr/bin/env node\n1;\n")])
    assert stat.S_IMODE(script.stat().st_mode) == 0o755


def test_symlink_target_inside_package_writes_the_real_file(
    world: tuple[Path, Path, Path],
) -> None:
    _, pkg, _ = world
    (pkg / "alias.ts").symlink_to("src/index.ts")
    apply_file_operations(pkg, [op("alias.ts", "update", "via link\n")])
    assert (pkg / "alias.ts").is_symlink()
    assert (pkg / "src" / "index.ts").read_text() == "via link\n"


def test_package_dir_reached_through_a_symlink(world: tuple[Path, Path, Path]) -> None:
    root, pkg, _ = world
    (root / "pkg-link").symlink_to(pkg)
    assert apply_file_operations(root / "pkg-link", [op("src/x.ts", "create", "1\n")]) == [
        "src/x.ts"
    ]
    assert (pkg / "src" / "x.ts").read_text() == "1\n"


# --- hostile paths: each mixed with a valid operation, nothing may be written anywhere ---

HOSTILE = [
    ("../../x", "'..'"),
    ("../alpha-evil/x.ts", "'..'"),
    ("src/../../x", "'..'"),
    ("..", "'..'"),
    ("/etc/x", "absolute"),
    ("/tmp/pkgbuilder-evil", "absolute"),
    ("C:/Windows/x", "absolute"),
    ("~/x", "absolute"),
    ("src\\..\\..\\x", "backslashes"),
    ("src/a\x00.ts", "NUL"),
    ("src/a\n.ts", "control"),
    (".git/config", ".git"),
    (".git/hooks/pre-commit", ".git"),
    ("src/.git/x", ".git"),
    (".GIT/config", ".git"),
    ("node_modules/dep/index.js", "node_modules"),
    ("src/node_modules/x.js", "node_modules"),
    ("Node_Modules/x.js", "node_modules"),
    ("", "empty"),
    (".", "package directory itself"),
    ("./", "package directory itself"),
    ("src/" + "a" * 300 + ".ts", "255 bytes"),
]


@pytest.mark.parametrize(("path", "reason"), HOSTILE)
def test_hostile_path_rejected_and_nothing_written(
    world: tuple[Path, Path, Path], path: str, reason: str
) -> None:
    root, pkg, _ = world
    before = snapshot(root)
    with pytest.raises(FileOperationError) as e:
        apply_file_operations(
            pkg, [op("src/valid.ts", "create", "ok\n"), op(path, "create", "evil\n")]
        )
    assert reason in str(e.value)
    assert "nothing written" in str(e.value)
    assert snapshot(root) == before


@pytest.mark.parametrize(("path", "reason"), HOSTILE)
def test_hostile_path_rejected_for_delete(
    world: tuple[Path, Path, Path], path: str, reason: str
) -> None:
    root, pkg, _ = world
    before = snapshot(root)
    with pytest.raises(FileOperationError):
        apply_file_operations(pkg, [op(path, "delete")])
    assert snapshot(root) == before


def test_symlinked_file_pointing_outside(world: tuple[Path, Path, Path]) -> None:
    root, pkg, outside = world
    (pkg / "src" / "leak.ts").symlink_to(outside / "secret.txt")
    before = snapshot(root)
    for operation in ("update", "create"):
        with pytest.raises(FileOperationError, match="outside the package"):
            apply_file_operations(pkg, [op("src/leak.ts", operation, "pwned\n")])
    with pytest.raises(FileOperationError, match="symlink"):
        apply_file_operations(pkg, [op("src/leak.ts", "delete")])
    assert snapshot(root) == before
    assert (outside / "secret.txt").read_text() == "do not touch\n"


def test_symlinked_directory_pointing_outside(world: tuple[Path, Path, Path]) -> None:
    root, pkg, outside = world
    (pkg / "lib").symlink_to(outside)
    (pkg / "src" / "nested").mkdir()
    (pkg / "src" / "nested" / "up").symlink_to(outside, target_is_directory=True)
    before = snapshot(root)
    for path in ("lib/new.ts", "lib/secret.txt", "src/nested/up/deeper/x.ts"):
        with pytest.raises(FileOperationError, match="outside the package"):
            apply_file_operations(pkg, [op(path, "create", "pwned\n")])
    with pytest.raises(FileOperationError, match="outside the package"):
        apply_file_operations(pkg, [op("lib/secret.txt", "delete")])
    assert snapshot(root) == before
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_dangling_symlink_to_outside_is_rejected(world: tuple[Path, Path, Path]) -> None:
    root, pkg, outside = world
    (pkg / "future.ts").symlink_to(outside / "not-yet.txt")
    before = snapshot(root)
    with pytest.raises(FileOperationError, match="outside the package"):
        apply_file_operations(pkg, [op("future.ts", "create", "pwned\n")])
    assert snapshot(root) == before
    assert not (outside / "not-yet.txt").exists()


def test_symlink_into_node_modules_is_rejected(world: tuple[Path, Path, Path]) -> None:
    root, pkg, _ = world
    (pkg / "vendor").symlink_to(pkg / "node_modules" / "dep")
    before = snapshot(root)
    with pytest.raises(FileOperationError, match="node_modules"):
        apply_file_operations(pkg, [op("vendor/index.js", "update", "pwned\n")])
    assert snapshot(root) == before


def test_symlink_loop_is_rejected(world: tuple[Path, Path, Path]) -> None:
    root, pkg, _ = world
    (pkg / "loop").symlink_to(pkg / "loop")
    before = snapshot(root)
    with pytest.raises(FileOperationError, match="symlink loop"):
        apply_file_operations(pkg, [op("loop", "update", "x\n")])
    with pytest.raises(FileOperationError, match="symlink loop"):
        apply_file_operations(pkg, [op("loop/inner/x.ts", "create", "x\n")])
    assert snapshot(root) == before


def test_symlink_to_the_package_itself_is_rejected(world: tuple[Path, Path, Path]) -> None:
    _, pkg, _ = world
    (pkg / "self").symlink_to(pkg)
    with pytest.raises(FileOperationError, match="outside the package"):
        apply_file_operations(pkg, [op("self", "update", "x\n")])


def test_ten_megabytes_of_content_is_rejected(world: tuple[Path, Path, Path]) -> None:
    root, pkg, _ = world
    before = snapshot(root)
    with pytest.raises(FileOperationError, match="per-file limit"):
        apply_file_operations(
            pkg, [op("src/ok.ts", "create", "ok\n"), op("src/big.ts", "create", "x" * 10_000_000)]
        )
    assert snapshot(root) == before


def test_total_bytes_cap(world: tuple[Path, Path, Path]) -> None:
    root, pkg, _ = world
    before = snapshot(root)
    limits = FileOpLimits(max_files=50, max_file_bytes=1000, max_total_bytes=2500)
    ops = [op(f"src/f{i}.ts", "create", "y" * 900) for i in range(3)]
    with pytest.raises(FileOperationError, match="per-answer limit of 2500"):
        apply_file_operations(pkg, ops, limits)
    assert snapshot(root) == before
    assert apply_file_operations(pkg, ops[:2], limits) == ["src/f0.ts", "src/f1.ts"]


def test_too_many_files(world: tuple[Path, Path, Path]) -> None:
    root, pkg, _ = world
    before = snapshot(root)
    ops = [op(f"src/f{i}.ts", "create", "1\n") for i in range(51)]
    with pytest.raises(FileOperationError, match="51 file operations exceed the limit of 50"):
        apply_file_operations(pkg, ops)
    assert snapshot(root) == before
    assert len(apply_file_operations(pkg, ops[:50])) == 50


def test_multibyte_content_is_counted_in_bytes(world: tuple[Path, Path, Path]) -> None:
    _, pkg, _ = world
    limits = FileOpLimits(max_file_bytes=10)
    with pytest.raises(FileOperationError, match="12 bytes"):
        plan_operations(pkg, [op("a.txt", "create", "€€€€")], limits)


def test_duplicate_targets_are_rejected(world: tuple[Path, Path, Path]) -> None:
    _, pkg, _ = world
    (pkg / "alias.ts").symlink_to("src/index.ts")
    with pytest.raises(FileOperationError, match="same file"):
        apply_file_operations(pkg, [op("src/a.ts"), op("./src//a.ts")])
    with pytest.raises(FileOperationError, match="same file"):
        apply_file_operations(pkg, [op("src/index.ts"), op("alias.ts")])


def test_parent_is_a_file_or_target_is_a_directory(world: tuple[Path, Path, Path]) -> None:
    root, pkg, _ = world
    before = snapshot(root)
    with pytest.raises(FileOperationError, match="not a directory"):
        apply_file_operations(pkg, [op("package.json/x.ts", "create")])
    with pytest.raises(FileOperationError, match="not a regular file"):
        apply_file_operations(pkg, [op("src", "update")])
    with pytest.raises(FileOperationError, match="not a regular file"):
        apply_file_operations(pkg, [op("src", "delete")])
    assert snapshot(root) == before


def test_every_problem_is_listed(world: tuple[Path, Path, Path]) -> None:
    _, pkg, _ = world
    with pytest.raises(FileOperationError) as e:
        plan_operations(pkg, [op("/etc/x"), op("../y"), op("ok.ts"), op(".git/z")])
    assert [p.split(" ")[0] for p in e.value.problems] == ["files[0]", "files[1]", "files[3]"]


def test_missing_package_dir(tmp_path: Path) -> None:
    with pytest.raises(FileOperationError, match="does not exist"):
        apply_file_operations(tmp_path / "nope", [op("a.ts")])


def test_lone_surrogate_content_is_rejected(world: tuple[Path, Path, Path]) -> None:
    _, pkg, _ = world
    with pytest.raises(FileOperationError, match="UTF-8"):
        apply_file_operations(pkg, [op("a.ts", "create", "bad \ud800 text")])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("a/b.ts", "a/b.ts"), ("./a/./b.ts", "a/b.ts"), ("a//b.ts/", "a/b.ts"), (".env", ".env")],
)
def test_normalise_path(raw: str, expected: str) -> None:
    assert normalise_path(raw) == expected
