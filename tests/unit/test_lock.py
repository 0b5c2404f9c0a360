"""The committed lock (requirements.lock) agrees with pyproject.toml's ranges.

CI and the README install from the lock; pyproject.toml keeps ranges for people who install
pkgbuilder as a library. This fails when a dependency is added, removed or re-ranged in
pyproject.toml without refreshing the lock (the one-line command is in the README and in the
lock's own header)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
LOCK_COMMAND = (
    "uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 "
    "--generate-hashes -o requirements.lock"
)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def direct_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return [Requirement(s) for s in specs]


def parse_lock(text: str) -> tuple[dict[str, str], set[str]]:
    """(name -> pinned version, names the lock says pyproject.toml asked for)."""
    pins: dict[str, str] = {}
    direct: set[str] = set()
    current: str | None = None
    for line in text.splitlines():
        if m := _PIN.match(line):
            current = canonicalize_name(m.group(1))
            pins[current] = m.group(2)
        elif current and re.search(r"#\s+(via\s+)?pkgbuilder \(pyproject\.toml\)", line):
            direct.add(current)
    return pins, direct


def test_every_pyproject_dependency_is_pinned_within_its_range() -> None:
    pins, _ = parse_lock(LOCK.read_text())
    problems = []
    for req in direct_requirements():
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req.name} is not in requirements.lock")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{req.name}=={pins[name]} is outside {req.specifier}")
    assert not problems, f"refresh the lock with `{LOCK_COMMAND}`: " + "; ".join(problems)


def test_the_lock_asks_for_nothing_pyproject_dropped() -> None:
    _, direct = parse_lock(LOCK.read_text())
    wanted = {canonicalize_name(r.name) for r in direct_requirements()}
    assert direct == wanted, f"refresh the lock with `{LOCK_COMMAND}`"


def test_every_pin_is_exact_and_hashed() -> None:
    text = LOCK.read_text()
    assert LOCK_COMMAND in text  # the header names the documented refresh command
    pins, _ = parse_lock(text)
    assert len(pins) > 20
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    for block in blocks:
        if _PIN.match(block):
            assert "--hash=sha256:" in block, block.splitlines()[0]


def test_parse_lock_reads_markers_and_via_lines() -> None:
    pins, direct = parse_lock(
        "a-b==1.0 ; sys_platform == 'win32' \\\n    --hash=sha256:00\n"
        "    # via pkgbuilder (pyproject.toml)\n"
        "c==2.0 \\\n    --hash=sha256:11\n"
        "    # via\n    #   a-b\n    #   pkgbuilder (pyproject.toml)\n"
        "d==3 \\\n    --hash=sha256:22\n    # via c\n"
    )
    assert pins == {"a-b": "1.0", "c": "2.0", "d": "3"}
    assert direct == {"a-b", "c"}
