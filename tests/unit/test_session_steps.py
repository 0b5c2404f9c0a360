"""The session's step rules without Temporal: confined paths, which outputs an answer
lacks, the validation target, and the ErrorType each refusal is raised as."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pkgbuilder.activities.session import error_type
from pkgbuilder.errors import ErrorType
from pkgbuilder.models.common import Category
from pkgbuilder.models.llm import FileOperation, ModelResponse
from pkgbuilder.models.session import ValidationTargetInput
from pkgbuilder.session import errors
from pkgbuilder.session.apply import missing_outputs
from pkgbuilder.session.plan import PlanError
from pkgbuilder.session.setup import inside, load_plan
from pkgbuilder.session.target import validation_target


def _subclasses(cls: type) -> set[type]:
    return {s for c in cls.__subclasses__() for s in {c, *_subclasses(c)}}


def test_every_session_refusal_is_raised_as_the_error_type_it_is_named_after() -> None:
    kinds = _subclasses(errors.SessionError)
    assert PlanError in kinds and errors.MergeFailed in kinds
    for kind in kinds:
        assert error_type(kind("x")) is ErrorType[kind.__name__]


@pytest.mark.parametrize("rel", ["/etc/passwd", "../outside", "a/../../b", " "])
def test_paths_must_stay_inside_the_workspace(tmp_path: Path, rel: str) -> None:
    with pytest.raises(errors.GenerationInputError, match="must be a path inside"):
        inside(tmp_path, rel, "Package path")
    assert inside(tmp_path, "packages/a", "Package path") == tmp_path / "packages/a"


def test_a_missing_plan_is_a_plan_error(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="does not exist"):
        load_plan(tmp_path, "plans/a.md")


def test_missing_outputs_count_what_the_answer_writes_and_deletes(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "old.ts").write_text("x")
    required = [["src/index.ts"], ["README.md", "docs/*.md"], ["src/old.ts"]]
    answer = ModelResponse(
        summary="s",
        files=[
            FileOperation(path="src/index.ts", operation="create", content="export {}"),
            FileOperation(path="src/old.ts", operation="delete"),
            FileOperation(path="../escape.md", operation="create", content="x"),
        ],
    )
    assert missing_outputs(tmp_path, answer, required) == ["README.md or docs/*.md", "src/old.ts"]
    assert missing_outputs(tmp_path, None, [["src/old.ts"]]) == []


def _target(root: Path) -> ValidationTargetInput:
    return ValidationTargetInput(
        workspace_root=str(root),
        package_path="packages/a",
        package_name="@acme/a",
        category=Category.UTILITY,
        dependencies=["@acme/b"],
    )


def test_validation_target_reads_scripts_and_picks_the_install_root(tmp_path: Path) -> None:
    pkg = tmp_path / "packages" / "a"
    pkg.mkdir(parents=True)
    missing = validation_target(_target(tmp_path))
    assert missing.node is None and missing.failures[0].message == "package.json is missing"
    (pkg / "package.json").write_text("[1]")
    assert "is invalid" in validation_target(_target(tmp_path)).failures[0].message
    (pkg / "package.json").write_text(json.dumps({"scripts": {"test": "t", "build": "b"}}))
    lone = validation_target(_target(tmp_path))
    assert lone.node is not None and lone.node.name == "@acme/a"
    assert lone.node.scripts == ["build", "test"] and lone.node.dependencies == ["@acme/b"]
    assert lone.install_root == str(pkg)  # no workspace manifest: install in the package
    (tmp_path / "package.json").write_text("{}")
    assert validation_target(_target(tmp_path)).install_root == str(tmp_path)
