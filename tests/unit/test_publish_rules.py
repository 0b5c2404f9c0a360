"""The publish rules that need no registry and no Temporal: what is never published, the
pack and publish argv, token redaction, the retry that finds its own publish, and the
ErrorType each publish error is raised as."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pkgbuilder.activities.publish import error_type
from pkgbuilder.config import PublishingSettings
from pkgbuilder.errors import ErrorType
from pkgbuilder.models.build import PackageNode
from pkgbuilder.models.common import PackageManager
from pkgbuilder.models.publish import PackedTarball, PublishPackageInput
from pkgbuilder.publishing import pack, publish

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _node(root: Path, manifest: dict | None, **kw: object) -> PackageNode:
    pkg = root / "packages" / "a"
    pkg.mkdir(parents=True, exist_ok=True)
    if manifest is not None:
        (pkg / "package.json").write_text(json.dumps(manifest))
    return PackageNode(name="@acme/a", path="packages/a", **kw)  # type: ignore[arg-type]


def test_private_and_unversioned_packages_are_never_published(tmp_path: Path) -> None:
    ok = _node(tmp_path, {"name": "@acme/a", "version": "1.0.0"})
    assert pack.not_publishable(tmp_path, ok) is None
    assert pack.not_publishable(tmp_path, ok.model_copy(update={"private": True})) == (
        "private package"
    )
    _node(tmp_path, {"name": "@acme/a", "version": "1.0.0", "private": True})
    assert pack.not_publishable(tmp_path, ok) == "private package"
    _node(tmp_path, {"name": "@acme/a", "version": ""})
    assert pack.not_publishable(tmp_path, ok) == "package.json has no version"
    (tmp_path / "packages" / "a" / "package.json").write_text("not json")
    assert pack.not_publishable(tmp_path, ok) == "package.json has no version"


def test_npm_packs_without_lifecycle_scripts_and_yarn_berry_writes_one_file(
    tmp_path: Path,
) -> None:
    dest = tmp_path / "out"
    npm = pack.pack_argv(PackageManager.NPM, tmp_path, dest)
    assert npm == ["npm", "pack", "--ignore-scripts", "--pack-destination", str(dest)]
    classic = pack.pack_argv(PackageManager.YARN, tmp_path, dest)
    assert classic[-2:] == ["--filename", str(dest / "package.tgz")]
    (tmp_path / ".yarnrc.yml").write_text("nodeLinker: node-modules\n")
    berry = pack.pack_argv(PackageManager.YARN, tmp_path, dest)
    assert berry[-2:] == ["--out", str(dest / "package.tgz")]


def test_a_scoped_publish_pins_its_scope_to_the_registry(tmp_path: Path) -> None:
    inp = PublishPackageInput(
        build_id="b",
        workspace_root=str(tmp_path),
        package=PackageNode(name="@acme/a", path="packages/a"),
        registry="http://r.test/",
        publishing=PublishingSettings(enabled=True, access="restricted", tag="next"),
    )
    packed = PackedTarball(
        name="@acme/a",
        version="1.0.0",
        filename="a.tgz",
        path="/tmp/a.tgz",
        size=1,
        integrity="sha512-x",
        shasum="y",
    )
    argv = publish.npm_publish_argv(inp, packed, "http://r.test/", tmp_path / "npmrc")
    assert argv[:3] == ["npm", "publish", "/tmp/a.tgz"]
    assert argv[argv.index("--access") : argv.index("--access") + 2] == ["--access", "restricted"]
    assert argv[argv.index("--tag") : argv.index("--tag") + 2] == ["--tag", "next"]
    assert "--ignore-scripts" in argv and argv[-1] == "--@acme:registry=http://r.test/"


def test_tokens_are_redacted_with_and_without_the_basic_prefix() -> None:
    assert publish.redact("a s3cret b", "s3cret") == "a *** b"
    assert publish.redact("auth dXNlcjpwdw==", "basic:dXNlcjpwdw==") == "auth ***"
    assert publish.redact("untouched", None) == "untouched"


@pytest.mark.parametrize(
    ("number", "published_at", "expected"),
    [
        (2, "2026-01-02T03:04:06Z", True),  # after this step was scheduled: our attempt
        (2, "2026-01-02T03:04:04Z", False),  # before: someone else's publish
        (1, "2026-01-02T03:04:06Z", False),  # a first attempt has no earlier one
        (2, None, False),
        (2, "yesterday", False),
    ],
)
def test_a_retry_recognises_its_own_earlier_publish(
    number: int, published_at: str | None, expected: bool
) -> None:
    attempt = publish.Attempt(number=number, scheduled=T0)
    assert publish.published_by_earlier_attempt(published_at, attempt) is expected


def test_publish_errors_are_raised_as_the_error_type_they_are_named_after() -> None:
    for kind in pack.PublishError.__subclasses__():
        assert error_type(kind("x")) is ErrorType[kind.__name__]
    assert pack.RegistryUnavailable.retryable and not pack.PackFailed.retryable
    assert "needs a token: set NPM_TOKEN" in publish.auth_sentence("http://r", None, "Reading from")
