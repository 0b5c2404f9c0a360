"""The worker passes every module through the workflow sandbox (runtime/worker.py), so
workflow modules are shared between workflow runs: they must hold no mutable state."""

from __future__ import annotations

import dataclasses
import enum
import importlib
import pkgutil
import types
from datetime import timedelta

from temporalio.common import RetryPolicy

import pkgbuilder.workflows
from pkgbuilder.runtime.worker import workflow_runner

IMMUTABLE = (
    int,
    float,
    str,
    bytes,
    bool,
    type(None),
    frozenset,
    timedelta,
    enum.Enum,
    type,
    types.FunctionType,
    types.ModuleType,
)


def _immutable(value: object) -> bool:
    if isinstance(value, tuple):
        return all(_immutable(v) for v in value)
    if isinstance(value, RetryPolicy):  # a dataclass nobody mutates; checked field-wise
        return all(_immutable(getattr(value, f.name)) for f in dataclasses.fields(value))
    return isinstance(value, IMMUTABLE)


def test_workflow_modules_hold_no_mutable_state() -> None:
    offenders: list[str] = []
    for info in pkgutil.iter_modules(pkgbuilder.workflows.__path__):
        module = importlib.import_module(f"pkgbuilder.workflows.{info.name}")
        for name, value in vars(module).items():
            if name.startswith("__") or name == "annotations":
                continue
            if not _immutable(value):
                offenders.append(f"{info.name}.{name} ({type(value).__name__})")
    assert offenders == []


def test_a_list_at_module_level_is_caught() -> None:
    assert not _immutable([1])
    assert not _immutable((1, {"a": 1}))
    assert _immutable((1, "a", timedelta(seconds=1)))


def test_the_runner_passes_modules_through_but_still_restricts_calls() -> None:
    restrictions = workflow_runner().restrictions
    assert restrictions.passthrough_all_modules
    assert restrictions.invalid_module_members.child_matcher("datetime") is not None
