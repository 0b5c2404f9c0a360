"""The tree is `ruff format`ted and `ruff check` clean (the project's style, checked)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or "ruff"
    return subprocess.run(
        [exe, *args, "src", "tests", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_tree_is_formatted() -> None:
    proc = ruff("format", "--check")
    assert proc.returncode == 0, "run `ruff format src tests bench`:\n" + proc.stdout[-3000:]


def test_the_tree_passes_ruff_check() -> None:
    proc = ruff("check", "--output-format", "concise")
    assert proc.returncode == 0, proc.stdout[-3000:]
