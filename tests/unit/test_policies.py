"""Every retry policy and Temporal timeout lives in workflows/policies.py.

The test reads the source: a ``RetryPolicy(...)`` constructed anywhere else fails, and so does
a literal ``timedelta(...)`` handed to Temporal as a timeout (a ``*_timeout=`` or
``retry_policy=`` keyword) or bound at module level to a ``*_TIMEOUT`` / ``*_RETRY`` name."""

from __future__ import annotations

import ast
from pathlib import Path

from pkgbuilder.errors import ErrorType
from pkgbuilder.workflows import policies

SRC = Path(__file__).resolve().parents[2] / "src" / "pkgbuilder"
POLICIES = SRC / "workflows" / "policies.py"


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _called(node: ast.AST, name: str) -> bool:
    return any(isinstance(c, ast.Call) and _name(c.func) == name for c in ast.walk(node))


def offenders(path: Path) -> list[str]:
    """Where a file constructs a policy or a Temporal timeout itself."""
    tree = ast.parse(path.read_text(), str(path))
    where = path.name
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) == "RetryPolicy":
            found.append(f"{where}:{node.lineno} constructs RetryPolicy")
        if isinstance(node, ast.keyword) and node.arg is not None:
            temporal = node.arg.endswith("_timeout") or node.arg == "retry_policy"
            if temporal and _called(node.value, "timedelta"):
                found.append(f"{where}:{node.value.lineno} passes {node.arg}=timedelta(...)")
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            names = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
            if any(n.endswith(("_TIMEOUT", "_RETRY")) for n in names) and (
                _called(stmt.value, "timedelta") or _called(stmt.value, "RetryPolicy")
            ):
                found.append(f"{where}:{stmt.lineno} defines {names[0]}")
    return found


def test_no_module_but_policies_constructs_a_retry_policy_or_timeout() -> None:
    problems = [
        f"{path.relative_to(SRC)}: {p}"
        for path in sorted(SRC.rglob("*.py"))
        if path != POLICIES
        for p in offenders(path)
    ]
    assert problems == []


def test_the_scan_catches_each_kind_of_stray_policy(tmp_path: Path) -> None:
    stray = tmp_path / "stray.py"
    stray.write_text(
        "from datetime import timedelta\n"
        "from temporalio.common import RetryPolicy\n"
        "MY_RETRY = RetryPolicy(maximum_attempts=2)\n"
        "OTHER_TIMEOUT = timedelta(seconds=3)\n"
        "async def f(workflow, act):\n"
        "    await workflow.execute_activity(act, start_to_close_timeout=timedelta(minutes=1))\n"
    )
    found = offenders(stray)
    assert len([f for f in found if "constructs RetryPolicy" in f]) == 1
    assert any("start_to_close_timeout=timedelta" in f for f in found)
    assert any("defines MY_RETRY" in f for f in found)
    assert any("defines OTHER_TIMEOUT" in f for f in found)
    assert offenders(POLICIES)  # the module itself is full of them: the scan sees them


def test_policies_name_error_types_from_the_enum() -> None:
    for name in dir(policies):
        value = getattr(policies, name)
        if name.endswith("_RETRY"):
            assert all(isinstance(t, ErrorType) for t in value.non_retryable_error_types or ())
            assert value.maximum_attempts != 0 or name in {"REPORT_RETRY", "WATCH_RETRY"}
