"""Helpers for the generation-lifecycle tests: a tiny two-package monorepo and git queries."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import git

MASTER_PLAN = """# Master plan

| Package | Category | Path | Dependencies |
|---|---|---|---|
| @acme/alpha | core | packages/core/alpha | |
| @acme/beta | utility | packages/utility/beta | @acme/alpha |
"""


def write_monorepo(root: Path) -> Path:
    """Write a small npm-workspaces monorepo with packages alpha (core) and beta (utility)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text(
        json.dumps({"name": "demo", "private": True, "workspaces": ["packages/*/*"]}, indent=2)
    )
    for category, name in (("core", "alpha"), ("utility", "beta")):
        pkg = root / "packages" / category / name
        (pkg / "src").mkdir(parents=True)
        (pkg / "package.json").write_text(
            json.dumps({"name": f"@acme/{name}", "version": "1.0.0"}, indent=2)
        )
        (pkg / "src" / "index.js").write_text(f"module.exports = '{name}';\n")
    (root / "README.md").write_text("# demo\n")
    return root


def branches(repo: Path, pattern: str = "*") -> list[str]:
    out = git(repo, "for-each-ref", "--format=%(refname:short)", f"refs/heads/{pattern}")
    return [ln for ln in out.splitlines() if ln]


def tags(repo: Path) -> list[str]:
    return [ln for ln in git(repo, "tag", "--list").splitlines() if ln]


def head_branch(repo: Path) -> str:
    return git(repo, "symbolic-ref", "--short", "HEAD").strip()


def rev(repo: Path, ref: str) -> str:
    return git(repo, "rev-parse", f"{ref}^{{commit}}").strip()


def worktree_paths(repo: Path) -> list[str]:
    out = git(repo, "worktree", "list", "--porcelain")
    return [ln.split(" ", 1)[1] for ln in out.splitlines() if ln.startswith("worktree ")]


def status(repo: Path) -> str:
    return git(repo, "status", "--porcelain", "--untracked-files=all")


def commit_file(worktree: Path, rel: str, text: str, message: str) -> str:
    path = worktree / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    git(worktree, "add", "--", rel)
    git(worktree, "commit", "-q", "-m", message)
    return rev(worktree, "HEAD")


# ---- the scripted model of the generation-run tests ------------------------------------------

GENERATED: dict[str, dict[str, str]] = {
    "alpha": {
        "src/index.js": "'use strict';\n// generated\nfunction increment(n, step = 1) {\n"
        "  return n + step;\n}\nmodule.exports = { increment };\n",
        "test/index.test.js": "'use strict';\nconst test = require('node:test');\n"
        "const assert = require('node:assert/strict');\n"
        "const { increment } = require('../src/index.js');\n\n"
        "test('increment', () => {\n  assert.equal(increment(1), 2);\n"
        "  assert.equal(increment(1, 5), 6);\n});\n",
    },
    "beta": {
        "src/index.js": "'use strict';\nfunction shout(s) {\n"
        "  return String(s).toUpperCase() + '!';\n}\nmodule.exports = { shout };\n",
        "test/index.test.js": "'use strict';\nconst test = require('node:test');\n"
        "const assert = require('node:assert/strict');\n"
        "const { shout } = require('../src/index.js');\n\n"
        "test('shout', () => {\n  assert.equal(shout('hi'), 'HI!');\n});\n",
    },
    "gamma": {
        # Needs @gen/alpha *built* (its main is dist/): the gate builds dependencies first.
        "src/index.js": "'use strict';\nconst { increment } = require('@gen/alpha');\n"
        "function twice(n) {\n  return increment(increment(n));\n}\n"
        "module.exports = { twice };\n",
        "test/index.test.js": "'use strict';\nconst test = require('node:test');\n"
        "const assert = require('node:assert/strict');\n"
        "const { twice } = require('../src/index.js');\n\n"
        "test('twice', () => {\n  assert.equal(twice(1), 3);\n});\n",
    },
}


def generated_files(name: str) -> list[dict[str, str]]:
    """The files the scripted model writes for ``@gen/<name>`` (package-relative)."""
    manifest: dict[str, object] = {
        "name": f"@gen/{name}",
        "version": "1.0.0",
        "main": "dist/index.js",
        "license": "MIT",
        "scripts": {
            "build": "node ../../../scripts/run.js build",
            "test": "node ../../../scripts/run.js test",
        },
    }
    if name == "gamma":
        manifest["dependencies"] = {"@gen/alpha": "^1.0.0"}
    files = {"package.json": json.dumps(manifest, indent=2) + "\n", **GENERATED[name]}
    return [{"path": p, "operation": "create", "content": c} for p, c in files.items()]


def package_of_request(body: dict) -> str:
    """Which fixture package a Messages-API request is about (from its plan's first line)."""
    import re

    from tests.support.fake_anthropic import RecordedRequest

    text = RecordedRequest(body=body, headers={}, key_matched=True, received_at=0).all_text()
    match = re.search(r"# Package: @gen/(\w+)", text)
    assert match, "request without a package plan"
    return match.group(1)


def responder(body: dict):
    """``FakeAnthropic.default``: answer each FOUNDATION request with its package's files."""
    from tests.support.fake_anthropic import Reply

    name = package_of_request(body)
    return Reply.contract(generated_files(name), summary=f"generated @gen/{name}")
