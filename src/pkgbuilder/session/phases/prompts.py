"""Prompt builders of the generation phases (pure).

Layout of every phase request, stable prefix first so the API's prompt cache serves it:

1. system: the role, then the response contract (shared with the fix loop);
2. user, cached: the package requirements and the plan — identical for every phase of a
   session (cache breakpoint here);
3. user: the phase's instructions and required files, the summaries of completed steps, the
   package file tree, the contents of the files this phase is shown (size-budgeted), and the
   phase's extra input (INTEGRATION_REVIEW findings for CRITICAL_FIXES, real build/test
   failures for BUILD_VALIDATION).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from pkgbuilder.llm.prompts import CONTRACT_TEXT, render_failures, render_files
from pkgbuilder.models.build import Failure
from pkgbuilder.models.common import Category, Model
from pkgbuilder.models.llm import LLMMessage, LLMRequest, ModelResponse, PromptBlock
from pkgbuilder.session.phases.config import ScheduledPhase
from pkgbuilder.session.phases.definitions import FileRequirement, GenerationPhase, spec
from pkgbuilder.session.state import CompletedStep

GENERATION_PURPOSE = "generation"

ROLE = (
    "You are a senior JavaScript/TypeScript engineer generating one npm package in turns. "
    "Each turn is one phase with its own narrow task; earlier phases' files are on disk and "
    "shown to you. Write complete, working files that fit what already exists; never leave "
    "placeholders or TODOs; keep every path relative to the package directory."
)


class PackageBrief(Model):
    """What does not change between the phases of a session (the cached prefix)."""

    package_name: str
    package_path: str
    category: Category
    coverage_target: float
    plan_path: str
    plan_text: str
    dependencies: list[str] = Field(default_factory=list)


def requirements_block(brief: PackageBrief) -> str:
    deps = ", ".join(brief.dependencies) if brief.dependencies else "none"
    return (
        f"# Package requirements\n\n"
        f"- Package name: {brief.package_name} (exactly this in package.json)\n"
        f"- Category: {brief.category.value}; line coverage target: "
        f"{brief.coverage_target:g}%\n"
        f"- Package directory: {brief.package_path} (every path you write is relative to "
        f"it)\n"
        f"- Workspace packages it may depend on: {deps}\n"
        f"- Tests run non-interactively in CI with no network access and no secrets.\n\n"
        f"# Plan ({brief.plan_path})\n\n{brief.plan_text.strip()}\n"
    )


def describe_requirements(requirements: Sequence[FileRequirement]) -> str:
    if not requirements:
        return ""
    lines = ["This phase must leave these files in the package:"]
    for r in requirements:
        lines.append(f"- {r.what}: " + " or ".join(f"`{p}`" for p in r.any_of))
    return "\n".join(lines)


def render_completed(steps: Sequence[CompletedStep]) -> str:
    if not steps:
        return "## Completed steps\n\nNone yet: this is the first phase."
    lines = ["## Completed steps"]
    for s in steps:
        files = ", ".join(s.files[:20]) + (" …" if len(s.files) > 20 else "")
        summary = s.summary.strip().replace("\n", " ")[:600] or s.description
        lines.append(
            f"{s.step_number}. {s.phase.value}: {summary}" + (f" (files: {files})" if files else "")
        )
    return "\n".join(lines)


def render_review(review: ModelResponse | None) -> str:
    """INTEGRATION_REVIEW's real answer, as CRITICAL_FIXES sees it."""
    if review is None:
        return (
            "## Integration review findings\n\nNo integration review ran in this session "
            "(the phase was skipped); review the files yourself and fix what is broken."
        )
    parts = [
        "## Integration review findings (the INTEGRATION_REVIEW phase's answer)",
        f"Summary: {review.summary.strip()}",
    ]
    if review.suggestions:
        parts.append(
            "Findings:\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(review.suggestions, 1))
        )
    if review.questions:
        parts.append("Open questions:\n" + "\n".join(f"- {q}" for q in review.questions))
    return "\n\n".join(parts)


def required_files(
    phase: GenerationPhase, implementation_files: Sequence[str]
) -> list[FileRequirement]:
    """The phase's required outputs; CORE_IMPLEMENTATION must produce the plan's files."""
    reqs = list(spec(phase).requires)
    if phase is GenerationPhase.CORE_IMPLEMENTATION:
        reqs += [FileRequirement(f"plan file {f}", (f,)) for f in implementation_files]
    return reqs


def build_phase_request(
    *,
    brief: PackageBrief,
    step: ScheduledPhase,
    total_steps: int,
    completed: Sequence[CompletedStep],
    tree: str,
    files: Sequence[tuple[str, str]],
    omitted: Sequence[str],
    requirements: Sequence[FileRequirement],
    request_key: str,
    review: ModelResponse | None = None,
    failures: Sequence[Failure] = (),
    attempt: int = 0,
    max_attempts: int = 0,
    missing: Sequence[str] = (),
) -> LLMRequest:
    """The request of one phase (see the module docstring for the layout). ``missing``:
    required outputs the previous answer lacked (a re-ask names them)."""
    phase = step.phase
    s = spec(phase)
    task = [f"## Phase {step.step_number} of {total_steps}: {phase.value}", s.instructions]
    if reqs := describe_requirements(requirements):
        task.append(reqs)
    if phase is GenerationPhase.BUILD_VALIDATION and attempt:
        task.append(f"This is fix attempt {attempt} of {max_attempts}.")
    content = [
        PromptBlock(text=requirements_block(brief), cache=True),
        PromptBlock(text="\n\n".join(task)),
        PromptBlock(text=render_completed(completed)),
        PromptBlock(text=tree),
        PromptBlock(text=render_files(files, omitted)),
    ]
    if phase is GenerationPhase.CRITICAL_FIXES:
        content.append(PromptBlock(text=render_review(review)))
    if failures:
        content.append(PromptBlock(text=render_failures(failures)))
    if missing:
        content.append(
            PromptBlock(
                text="Your previous answer to this phase did not include every required file; "
                "nothing of it was applied. Missing:\n"
                + "\n".join(f"- {m}" for m in missing)
                + "\nAnswer again with the complete set of files of this phase, including these."
            )
        )
    content.append(
        PromptBlock(
            text=f"Do the {phase.value} phase now and answer with the JSON object of the "
            "answer format (complete files only; 'summary' says what you did in this phase)."
        )
    )
    return LLMRequest(
        purpose=GENERATION_PURPOSE,
        system=[PromptBlock(text=ROLE), PromptBlock(text=CONTRACT_TEXT, cache=True)],
        messages=[LLMMessage(role="user", content=content)],
        max_tokens=step.max_tokens,
        temperature=step.temperature,
        request_key=request_key,
    )
