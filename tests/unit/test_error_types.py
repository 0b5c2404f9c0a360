"""The ApplicationError types are one enum, not a hand-kept string contract.

Activities raise ``ErrorType`` members, retry policies list them as non-retryable and the CLI
maps them to exit codes. This test reads the source: a raw string where a type belongs fails,
and so does a member nobody raises (a retry policy naming a type that no longer exists)."""

from __future__ import annotations

import ast
from pathlib import Path

from pkgbuilder.errors import ErrorType

SRC = Path(__file__).resolve().parents[2] / "src" / "pkgbuilder"
# Collections that hold error types (retry policies, CLI exit-code sets, loop stops).
TYPE_COLLECTIONS = {
    "non_retryable_error_types",
    "USER_ERROR_TYPES",
    "STOP_LOOP_ERROR_TYPES",
    "LLM_NON_RETRYABLE_ERROR_TYPES",
    "FIX_NON_RETRYABLE_ERROR_TYPES",
    "NON_RETRYABLE",
    "SESSION_NON_RETRYABLE",
    "NOT_CALLED",
}
RAISERS = {"ApplicationError", "_fail"}


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _strings(node: ast.AST) -> list[str]:
    return [
        c.value
        for c in ast.walk(node)
        if isinstance(c, ast.Constant)
        and isinstance(c.value, str)
        and c.value in ErrorType.__members__
    ]


def _members(node: ast.AST) -> set[str]:
    return {
        c.attr
        for c in ast.walk(node)
        if isinstance(c, ast.Attribute)
        and isinstance(c.value, ast.Name)
        and c.value.id == "ErrorType"
    }


def scan() -> tuple[list[str], set[str]]:
    """(raw-string problems, members raised somewhere)."""
    problems: list[str] = []
    raised: set[str] = set()
    for path in SRC.rglob("*.py"):
        if path.name == "errors.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        where = path.relative_to(SRC)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) in RAISERS:
                kinds = [k.value for k in node.keywords if k.arg == "type"]
                if _name(node.func) == "_fail" and len(node.args) > 1:
                    kinds.append(node.args[1])
                for kind in kinds:
                    problems += [f"{where}:{node.lineno} raises type {s!r}" for s in _strings(kind)]
                    raised |= _members(kind)
            elif isinstance(node, ast.keyword) and node.arg in TYPE_COLLECTIONS:
                problems += [f"{where}: {node.arg} lists {s!r}" for s in _strings(node.value)]
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id in TYPE_COLLECTIONS for t in targets):
                    problems += [f"{where}:{node.lineno} lists {s!r}" for s in _strings(node.value)]  # type: ignore[arg-type]
            elif (
                isinstance(node, ast.Compare)
                and isinstance(node.left, ast.Attribute)
                and node.left.attr == "type"
            ):
                problems += [
                    f"{where}:{node.lineno} compares with {s!r}"
                    for c in node.comparators
                    for s in _strings(c)
                ]
    return problems, raised


def exception_class_names() -> set[str]:
    """Types raised as ``type(e).__name__`` (the lifecycle activity) are class names."""
    names = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                names.add(node.name)
    return names


def test_no_raw_string_stands_in_for_an_error_type() -> None:
    problems, _ = scan()
    assert not problems, "use pkgbuilder.errors.ErrorType: " + "; ".join(problems)


def test_every_error_type_is_raised_somewhere() -> None:
    _, raised = scan()
    dynamic = exception_class_names() & set(ErrorType.__members__)
    unused = set(ErrorType.__members__) - raised - dynamic
    assert not unused, f"ErrorType members nothing raises: {sorted(unused)}"


def test_members_are_their_wire_names() -> None:
    assert all(m.value == name for name, m in ErrorType.__members__.items())
    assert ErrorType.ConfigError == "ConfigError"  # a StrEnum: compares with the wire string


def test_config_and_binary_errors_are_user_errors() -> None:
    """The CLI needs one handler: a configuration error and a missing bundled binary are
    user errors (one sentence, exit code 2) like every other."""
    from pkgbuilder.config import ConfigError
    from pkgbuilder.errors import UserError
    from pkgbuilder.runtime.binaries import BinaryNotFound

    for error in (ConfigError("bad key"), BinaryNotFound("no temporal CLI")):
        assert isinstance(error, UserError)
        assert error.exit_code == 2
