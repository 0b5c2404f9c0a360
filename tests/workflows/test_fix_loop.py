"""The fix loop inside PackageBuildWorkflow: a real failing test fixed by a scripted model
answer, applied, committed and re-checked — through the real SDK, real npm, real git."""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.client import Client

from pkgbuilder.models.build import PackageStatus
from pkgbuilder.models.common import name_slug
from tests.conftest import REPO_ROOT, copy_workspace, git
from tests.support.fake_anthropic import (
    TEST_API_KEY,
    FakeAnthropic,
    Reply,
    contract_answer,
)
from tests.workflows.test_suite import run_suite

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "failing-monorepo"
FIXED = """'use strict';
const { double } = require('@fx/base');
function answer() {
  return double(21);
}
module.exports = { answer };
"""


async def test_failing_test_fixed_in_one_attempt(
    client: Client,
    tmp_path: Path,
    task_queue: str,
    fake_anthropic: FakeAnthropic,
) -> None:
    ws = copy_workspace(FIXTURE, tmp_path / "ws")
    prompts = ws / ".claude" / "agents" / "fix-prompts"
    prompts.mkdir(parents=True)
    (prompts / "test.md").write_text("You fix failing unit tests. Change the code, not the test.")
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "fix prompts")
    fake_anthropic.script(
        Reply.answer(
            contract_answer(
                [{"path": "src/index.js", "operation": "update", "content": FIXED}],
                summary="answer() returned 41; it now returns double(21)",
            )
        )
    )

    report = await run_suite(client, task_queue, ws, "fixloop")

    assert {r.package_name: r.status for r in report.package_reports} == {
        n: PackageStatus.SUCCESS
        for n in ("@fx/base", "@fx/other", "@fx/solo", "@fx/broken", "@fx/mid", "@fx/top")
    }
    broken = next(r for r in report.package_reports if r.package_name == "@fx/broken")
    assert len(broken.fix_attempts) == 1
    attempt = broken.fix_attempts[0]
    assert attempt.count == 1 and attempt.types == ["test"] and attempt.succeeded
    assert attempt.agent_prompt_used.endswith(".claude/agents/fix-prompts/test.md")
    assert attempt.files_changed == ["src/index.js"]  # relative to the package
    assert attempt.commit is not None
    assert attempt.tokens.output_tokens > 0 and attempt.cost_usd > 0
    assert report.total_fix_attempts == 1
    assert broken.tokens.output_tokens == attempt.tokens.output_tokens
    # exactly one model call, which saw the failure output and the prompt file
    assert len(fake_anthropic.requests) == 1
    sent = fake_anthropic.requests[0].all_text()
    assert "Change the code, not the test." in sent
    assert "answer is 42" in sent  # the failing test's output tail
    # the fix is committed with the seed's message, touching only that file
    subject = git(ws, "log", "-1", "--format=%s").strip()
    assert subject == "fix(@fx/broken): attempt 1 for test"
    changed = git(ws, "show", "--name-only", "--format=", "HEAD").split()
    assert changed == ["packages/core/broken/src/index.js"]
    saved = json.loads(Path(report.summary_path or "").read_text())
    entry = next(p for p in saved["packageReports"] if p["packageName"] == "@fx/broken")
    assert entry["fixAttempts"][0]["agentPromptUsed"].endswith("test.md")
    # the API key never reaches any workflow history
    for wf_id in ("suite-fixloop", f"build-fixloop-{name_slug('@fx/broken')}"):
        history = await client.get_workflow_handle(wf_id).fetch_history()
        assert TEST_API_KEY not in history.to_json()
