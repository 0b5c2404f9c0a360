"""The model's words for turn-based generation tests: one scripted answer per phase.

The answers build ``@acme/data-validator`` (plain ES modules, node:test, coverage via lcov)
from ``plans/packages/core/data-validator.md``. The final files live in
``generated_package/``; earlier phases write earlier versions of them:

* CORE_IMPLEMENTATION writes a validator whose ``min`` check is off by one; TESTING's
  boundary test catches it, so BUILD_VALIDATION's real test run fails once and its scripted
  fix attempt repairs it;
* INTEGRATION_REVIEW reports that ``isValid()`` is documented but not exported; CRITICAL_FIXES
  adds it.

Only the words are scripted: the server is a real HTTP Messages API, git and node are real.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from pkgbuilder.session.phases.definitions import GenerationPhase as P
from tests.support.fake_anthropic import Reply

FINAL = Path(__file__).parent / "generated_package"
REPO_ROOT = Path(__file__).resolve().parents[2]
PLAN = REPO_ROOT / "plans" / "packages" / "core" / "data-validator.md"
PACKAGE_NAME = "@acme/data-validator"
PACKAGE_PATH = "packages/core/data-validator"
PLAN_PATH = "plans/packages/core/data-validator.md"

_PHASE = re.compile(r"## Phase (\d+) of (\d+): ([A-Z_]+)")
REVIEW_FINDING = (
    "README.md documents isValid() but src/index.js does not export it: add isValid(schema, "
    "value) to src/validator.js and export it from src/index.js"
)


def final(rel: str) -> str:
    return (FINAL / rel).read_text(encoding="utf-8")


def _validator(buggy: bool, with_is_valid: bool) -> str:
    text = final("src/validator.js")
    if buggy:
        text = text.replace("sizeOf(value) < schema.min", "sizeOf(value) <= schema.min")
    if not with_is_valid:
        text = text[: text.index("/** Shorthand")].rstrip() + "\n"
    return text


def _index(errors: bool, is_valid: bool) -> str:
    lines = final("src/index.js").splitlines()
    if not is_valid:
        lines = [ln.replace("validate, isValid", "validate") for ln in lines]
    if not errors:
        lines = [ln for ln in lines if "errors.js" not in ln]
    return "\n".join(lines) + "\n"


def _package_json(polished: bool) -> str:
    text = final("package.json")
    if polished:
        text = text.replace(
            '  "license": "MIT"\n', '  "keywords": ["validation", "schema"],\n  "license": "MIT"\n'
        )
    return text


ARCHITECTURE = """# @acme/data-validator — architecture

- src/types.js: JSDoc typedefs of SchemaDefinition, ValidationIssue, ValidationResult.
- src/schema-parser.js: parseSchema() rejects malformed schemas with SchemaError.
- src/validator.js: validate() walks schema and value together, collecting issues by path.
- src/error-formatter.js: formatIssues() renders issues one per line.
- Language: JavaScript (ES modules), tests with node:test, coverage as lcov.
"""

README = """# @acme/data-validator

Validate plain data against small declarative schemas.

```js
import { validate, isValid, formatIssues } from '@acme/data-validator';
const result = validate({ type: 'number', min: 0 }, -1);
console.log(formatIssues(result.issues));
```

API: `validate(schema, value, config?)`, `isValid(schema, value)`, `parseSchema(definition)`,
`formatIssues(issues)`, errors `DataValidatorError`, `SchemaError`. Run the tests: `npm test`.
"""

EXAMPLE = """import { validate, formatIssues } from '../src/index.js';

const schema = { type: 'object', properties: { name: { type: 'string', required: true } } };
console.log(formatIssues(validate(schema, {}).issues));
"""

REVIEW = f"# Integration review\n\n1. {REVIEW_FINDING}.\n"
CHANGELOG = "# Changelog\n\n## 0.1.0\n\n- First release: validate, isValid, parseSchema.\n"

# phase -> (files written, summary, suggestions)
PHASE_ANSWERS: dict[P, tuple[dict[str, str], str, list[str]]] = {
    P.PLANNING: ({"docs/architecture.md": ARCHITECTURE}, "Wrote the architecture blueprint.", []),
    P.FOUNDATION: (
        {
            "package.json": _package_json(False),
            "scripts/build.js": final("scripts/build.js"),
            "scripts/test.js": final("scripts/test.js"),
            ".gitignore": final(".gitignore"),
        },
        "Configured package.json, build and test scripts.",
        [],
    ),
    P.TYPES: ({"src/types.js": final("src/types.js")}, "JSDoc typedefs of every interface.", []),
    P.CORE_IMPLEMENTATION: (
        {
            "src/validator.js": _validator(buggy=True, with_is_valid=False),
            "src/schema-parser.js": final("src/schema-parser.js"),
            "src/error-formatter.js": final("src/error-formatter.js"),
        },
        "Implemented validate, parseSchema and formatIssues.",
        [],
    ),
    P.ENTRY_POINT: (
        {"src/index.js": _index(errors=False, is_valid=False)},
        "Barrel file re-exporting the API.",
        [],
    ),
    P.UTILITIES: ({"src/utils.js": final("src/utils.js")}, "typeOf and joinPath helpers.", []),
    P.ERROR_HANDLING: (
        {
            "src/errors.js": final("src/errors.js"),
            "src/index.js": _index(errors=True, is_valid=False),
        },
        "DataValidatorError and SchemaError, exported.",
        [],
    ),
    P.TESTING: (
        {"test/validator.test.js": final("test/validator.test.js")},
        "node:test suite for every export.",
        [],
    ),
    P.DOCUMENTATION: ({"README.md": README}, "README with API reference.", []),
    P.EXAMPLES: ({"examples/basic.js": EXAMPLE}, "A runnable example.", []),
    P.INTEGRATION_REVIEW: (
        {"docs/integration-review.md": REVIEW},
        "One finding.",
        [REVIEW_FINDING],
    ),
    P.CRITICAL_FIXES: (
        {
            "src/validator.js": _validator(buggy=True, with_is_valid=True),
            "src/index.js": final("src/index.js"),
        },
        "Added and exported isValid.",
        [],
    ),
    P.BUILD_VALIDATION: (
        {"src/validator.js": final("src/validator.js")},
        "min is inclusive: fixed the off-by-one.",
        [],
    ),
    P.FINAL_POLISH: (
        {"CHANGELOG.md": CHANGELOG, "package.json": _package_json(True)},
        "Changelog and keywords.",
        [],
    ),
}


def phase_of(body: dict[str, Any]) -> P | None:
    """The phase a recorded request body asks for (from its '## Phase N of M' heading)."""
    for m in body.get("messages", [])[:1]:
        content = m.get("content")
        texts = [content] if isinstance(content, str) else [b.get("text", "") for b in content]
        for t in texts:
            if found := _PHASE.search(t):
                return P(found.group(3))
    return None


def answer(phase: P) -> Reply:
    files, summary, suggestions = PHASE_ANSWERS[phase]
    reply = Reply.contract(
        files=[{"path": p, "operation": "create", "content": c} for p, c in files.items()],
        summary=summary,
    )
    if suggestions:
        import json

        data = json.loads(reply.text or "{}")
        data["suggestions"] = suggestions
        reply.text = json.dumps(data)
    return reply


class PhaseResponder:
    """``FakeAnthropic.default``: answers each request with its phase's scripted answer;
    ``fail[phase]`` replies are used first (failure injection)."""

    def __init__(self) -> None:
        self.fail: dict[P, list[Reply]] = {}
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        phase = phase_of(body)
        if phase is None:
            return Reply.bad_request("test responder: request names no generation phase")
        with self._lock:
            queued = self.fail.get(phase)
            if queued:
                return queued.pop(0)
        return answer(phase)


def write_workspace(repo: Path) -> None:
    """An npm workspace root with the example plan (caller commits)."""
    (repo / "package.json").write_text(
        '{\n  "name": "acme-workspace",\n  "private": true,\n  "workspaces": ["packages/*/*"]\n}\n'
    )
    (repo / ".gitignore").write_text(
        "node_modules/\n.generation-state/\n.pkgbuilder/\npackage-lock.json\n"
    )
    plan = repo / PLAN_PATH
    plan.parent.mkdir(parents=True, exist_ok=True)
    plan.write_text(PLAN.read_text())
