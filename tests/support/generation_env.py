"""Shared setup of turn-based generation tests: a git workspace with the example plan, a
scripted Messages-API server, test settings and workflow inputs."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pkgbuilder.config import BuildSettings, load_settings
from pkgbuilder.models.common import Category
from pkgbuilder.models.llm import LLMRequest
from pkgbuilder.models.session import TurnBasedGenerationInput
from pkgbuilder.session.phases.definitions import GenerationPhase
from tests.conftest import git
from tests.support.fake_anthropic import FakeAnthropic, RecordedRequest
from tests.support.generation_script import (
    PACKAGE_NAME,
    PACKAGE_PATH,
    PLAN_PATH,
    PhaseResponder,
    phase_of,
    write_workspace,
)

_counter = itertools.count()


def new_session_id() -> str:
    return f"gen-{int(time.time() * 1000) * 100 + next(_counter) % 100}"


def make_workspace(repo: Path) -> Path:
    repo.mkdir(parents=True)
    write_workspace(repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "config", "user.name", "test")
    git(repo, "add", "--", ".")
    git(repo, "commit", "-q", "-m", "workspace")
    return repo


def gen_settings(
    task_queue: str, tbg: dict[str, Any] | None = None, heartbeat_seconds: int = 20
) -> BuildSettings:
    return load_settings(
        None,
        env={},
        overrides={
            "temporal": {"taskQueue": task_queue, "llmTaskQueue": f"{task_queue}-llm"},
            "llm": {
                "tokensPerMinute": 10_000_000,
                "maxAttempts": 2,
                "retryInitialIntervalSeconds": 0.2,
                "retryMaxIntervalSeconds": 1.0,
            },
            "timeouts": {"heartbeatSeconds": heartbeat_seconds},
            "turnBasedGeneration": tbg or {},
        },
    )


@dataclass
class GenEnv:
    repo: Path
    settings: BuildSettings
    server: FakeAnthropic
    home: Path
    responder: PhaseResponder = field(default_factory=PhaseResponder)

    @property
    def state_dir(self) -> Path:
        return self.repo / ".generation-state"

    def input(self, session_id: str, **kw: Any) -> TurnBasedGenerationInput:
        return TurnBasedGenerationInput(
            session_id=session_id,
            package_name=PACKAGE_NAME,
            package_path=PACKAGE_PATH,
            plan_path=PLAN_PATH,
            category=Category.CORE,
            workspace_root=str(self.repo),
            state_dir=str(self.state_dir),
            config=self.settings,
            **kw,
        )

    def request_files_by_phase(self) -> dict[GenerationPhase, list[LLMRequest]]:
        """The request files pkgbuilder wrote (what it asked for, before the SDK)."""
        out: dict[GenerationPhase, list[LLMRequest]] = {}
        for path in sorted((self.home / "llm" / "requests").glob("*.json")):
            req = LLMRequest.model_validate_json(path.read_bytes())
            body = {"messages": [m.model_dump() for m in req.messages]}
            phase = phase_of(body)
            if phase is not None:
                out.setdefault(phase, []).append(req)
        return out

    def requests_by_phase(self, since: int = 0) -> dict[GenerationPhase, list[RecordedRequest]]:
        out: dict[GenerationPhase, list[RecordedRequest]] = {}
        for r in self.server.requests[since:]:
            phase = phase_of(r.body)
            if phase is not None:
                out.setdefault(phase, []).append(r)
        return out


@contextmanager
def scripted_server(env_overrides: dict[str, str] | None = None) -> Iterator[FakeAnthropic]:
    """A fake Messages API with the phase responder; the API env vars point at it."""
    server = FakeAnthropic().start()
    server.default = PhaseResponder()
    saved = {k: os.environ.get(k) for k in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")}
    os.environ["ANTHROPIC_API_KEY"] = server.api_key
    os.environ["ANTHROPIC_BASE_URL"] = server.url
    for k, v in (env_overrides or {}).items():
        os.environ[k] = v
    try:
        yield server
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def phase_commits(repo: Path, base: str, branch: str) -> list[tuple[str, str]]:
    """(sha, full message) of the branch's commits since ``base``, oldest first."""
    out = git(repo, "log", "--reverse", "--format=%H%x1f%B%x1e", f"{base}..{branch}")
    commits = []
    for record in out.split("\x1e"):
        sha, _, body = record.strip("\n").partition("\x1f")
        if sha:
            commits.append((sha, body.strip("\n")))
    return commits
