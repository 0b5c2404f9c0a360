"""The 15 generation phases as data: budget, temperature, instructions, required outputs and
which existing files each phase is shown.

Nothing here does I/O; the workflow imports it directly (it is deterministic data).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class GenerationPhase(StrEnum):
    """The seed's 15 phases, in execution order."""

    PLANNING = "PLANNING"
    FOUNDATION = "FOUNDATION"
    TYPES = "TYPES"
    CORE_IMPLEMENTATION = "CORE_IMPLEMENTATION"
    ENTRY_POINT = "ENTRY_POINT"
    UTILITIES = "UTILITIES"
    ERROR_HANDLING = "ERROR_HANDLING"
    TESTING = "TESTING"
    DOCUMENTATION = "DOCUMENTATION"
    EXAMPLES = "EXAMPLES"
    INTEGRATION_REVIEW = "INTEGRATION_REVIEW"
    CRITICAL_FIXES = "CRITICAL_FIXES"
    BUILD_VALIDATION = "BUILD_VALIDATION"
    FINAL_POLISH = "FINAL_POLISH"
    MERGE = "MERGE"

    @classmethod
    def parse(cls, value: str) -> GenerationPhase:
        """Accept ``CORE_IMPLEMENTATION``, ``core_implementation``, ``core-implementation``.

        Raises:
            ValueError: one sentence naming the unknown phase and the valid names.
        """
        # Separators are ignored: config loading camel-cases keys with underscores
        # (CORE_IMPLEMENTATION arrives as COREImplementation in tokenBudgets).
        key = re.sub(r"[\s_-]", "", value).upper()
        for phase in cls:
            if phase.value.replace("_", "") == key:
                return phase
        names = ", ".join(p.value for p in cls)
        raise ValueError(f"unknown generation phase '{value}' (valid: {names})")


@dataclass(frozen=True)
class FileRequirement:
    """Files a phase must leave in the package: at least one path matching any pattern."""

    what: str
    any_of: tuple[str, ...]


# Globs shared by several phases (matched against posix paths relative to the package).
SOURCES = ("src/**",)
TESTS = ("test/**", "tests/**", "__tests__/**", "src/**/*.test.*", "src/**/*.spec.*")
CONFIGS = (
    "package.json",
    "tsconfig*.json",
    ".eslintrc*",
    "eslint.config.*",
    "jest.config.*",
    "vitest.config.*",
    ".gitignore",
)
TYPE_FILES = ("src/types.*", "src/types/**")
ERROR_FILES = ("src/errors.*", "src/errors/**")
REVIEW_FILE = "docs/integration-review.md"


@dataclass(frozen=True)
class PhaseSpec:
    """One phase: what the model is asked to do and what it gets to see.

    ``shows`` are globs of existing package files whose *contents* go into the prompt (in
    priority order, within the prompt's size budget); every phase also sees the full file tree.
    """

    phase: GenerationPhase
    max_tokens: int
    temperature: float
    description: str  # the seed's completedSteps description
    instructions: str
    requires: tuple[FileRequirement, ...] = ()
    shows: tuple[str, ...] = ()
    calls_model: bool = True


_SPECS: tuple[PhaseSpec, ...] = (
    PhaseSpec(
        GenerationPhase.PLANNING,
        5000,
        0.3,
        "Created package plan and architecture blueprint",
        "Turn the plan into an architecture blueprint for this package: modules and their "
        "responsibilities, the public API (every Core Interface with its fields), the data "
        "flow, error strategy, and a test plan that reaches the coverage target. Decide the "
        "language from the plan's Implementation Files (.ts means TypeScript, .js/.mjs means "
        "JavaScript) and say so. Write it to docs/architecture.md. Do not write code yet.",
        requires=(FileRequirement("the architecture blueprint", ("docs/architecture.md",)),),
    ),
    PhaseSpec(
        GenerationPhase.FOUNDATION,
        3000,
        0.2,
        "Generated configuration files",
        "Write the package's configuration: package.json (name exactly as given, version "
        "0.1.0, description, main/exports/types as the language needs, 'build' and 'test' "
        "scripts that work with the toolchain you choose, no dependency the plan does not "
        "list), the compiler/test-runner config the language needs, and a .gitignore that "
        "ignores node_modules, dist and coverage. The test script must write a coverage "
        "report (istanbul coverage/coverage-summary.json or coverage/lcov.info).",
        requires=(FileRequirement("package.json", ("package.json",)),),
        shows=("docs/architecture.md",),
    ),
    PhaseSpec(
        GenerationPhase.TYPES,
        4000,
        0.2,
        "Generated type definitions",
        "Write the type definitions of every Core Interface of the plan (TypeScript "
        "interfaces/types, or JSDoc @typedef in a JavaScript module that exports nothing "
        "executable) in src/types.* or src/types/.",
        requires=(FileRequirement("type definitions", TYPE_FILES),),
        shows=("docs/architecture.md", "package.json", "tsconfig*.json"),
    ),
    PhaseSpec(
        GenerationPhase.CORE_IMPLEMENTATION,
        8000,
        0.3,
        "Implemented core functionality",
        "Implement the main functionality: every file of the plan's Implementation Files, "
        "complete and working, using the types already written. No placeholders, no TODOs.",
        shows=("docs/architecture.md", "package.json", *TYPE_FILES),
    ),
    PhaseSpec(
        GenerationPhase.ENTRY_POINT,
        2000,
        0.2,
        "Created entry point barrel file",
        "Write the entry point (src/index.*) that re-exports the public API; make sure "
        "package.json's main/exports point at what the build produces.",
        requires=(FileRequirement("the entry point", ("src/index.*",)),),
        shows=("package.json", *SOURCES),
    ),
    PhaseSpec(
        GenerationPhase.UTILITIES,
        4000,
        0.3,
        "Generated utility functions",
        "Extract or add the small helper functions the implementation needs (src/utils.* or "
        "src/utils/), and update the implementation files to use them. Skip what would be "
        "speculative: helpers nobody calls are worse than none.",
        shows=("docs/architecture.md", *SOURCES),
    ),
    PhaseSpec(
        GenerationPhase.ERROR_HANDLING,
        3000,
        0.3,
        "Created error classes",
        "Create the package's error classes (src/errors.*: a base error with a stable 'code' "
        "plus specific subclasses) and make the implementation throw them where it throws "
        "generic errors. Export them from the entry point.",
        requires=(FileRequirement("error classes", ERROR_FILES),),
        shows=SOURCES,
    ),
    PhaseSpec(
        GenerationPhase.TESTING,
        6000,
        0.3,
        "Generated test suite",
        "Write the test suite for the test runner package.json's 'test' script uses: unit "
        "tests for every exported function and error path, reaching the coverage target. "
        "Tests must pass against the code as it is now.",
        requires=(FileRequirement("tests", TESTS),),
        shows=("package.json", *CONFIGS[1:], *SOURCES),
    ),
    PhaseSpec(
        GenerationPhase.DOCUMENTATION,
        3000,
        0.4,
        "Wrote README and documentation",
        "Write README.md: what the package does, installation, a quick start, the API "
        "reference of every export, errors, and how to run the tests.",
        requires=(FileRequirement("README.md", ("README.md",)),),
        shows=("package.json", "src/index.*", *TYPE_FILES, *ERROR_FILES, "docs/architecture.md"),
    ),
    PhaseSpec(
        GenerationPhase.EXAMPLES,
        4000,
        0.4,
        "Created usage examples",
        "Write runnable usage examples under examples/ that import the package's public API "
        "the way a user would, covering the main use cases and one error case.",
        requires=(FileRequirement("examples", ("examples/**",)),),
        shows=("package.json", "README.md", "src/index.*", *TYPE_FILES),
    ),
    PhaseSpec(
        GenerationPhase.INTEGRATION_REVIEW,
        4000,
        0.3,
        "Reviewed integrations",
        f"Review the whole package as it is now: exports vs README, package.json scripts and "
        f"entry points vs the files that exist, imports that do not resolve, untested paths, "
        f"plan items not implemented. Write the findings to {REVIEW_FILE} as a numbered list, "
        f"most severe first, each with the file and the concrete fix; put each finding in "
        f"'suggestions' too. Change no other file.",
        requires=(FileRequirement("the review", (REVIEW_FILE,)),),
        shows=("package.json", *SOURCES, *TESTS, "README.md", "examples/**", *CONFIGS[1:]),
    ),
    PhaseSpec(
        GenerationPhase.CRITICAL_FIXES,
        5000,
        0.3,
        "Fixed issues from review",
        "Fix the findings of the integration review below, most severe first. Change only "
        "what a finding asks for; keep the tests passing.",
        shows=(REVIEW_FILE, "package.json", *SOURCES, *TESTS),
    ),
    PhaseSpec(
        GenerationPhase.BUILD_VALIDATION,
        4000,
        0.3,
        "Validated build and tests",
        "The package's real install, build and tests were run and failed; the output is "
        "below. Fix the cause in the package's files (code, tests or configuration) so that "
        "they pass. Do not weaken or delete tests to make them pass.",
        shows=("package.json", *CONFIGS[1:], *SOURCES, *TESTS),
    ),
    PhaseSpec(
        GenerationPhase.FINAL_POLISH,
        3000,
        0.3,
        "Final quality pass",
        "Final pass: package.json metadata (description, keywords, license, files), a "
        "CHANGELOG.md entry for 0.1.0, and README accuracy. Do not change behaviour: the "
        "build and tests already pass.",
        shows=("package.json", "README.md", "CHANGELOG.md", "src/index.*"),
    ),
    PhaseSpec(
        GenerationPhase.MERGE,
        0,
        0.0,
        "Merged generation branch",
        "",
        calls_model=False,
    ),
)

PHASE_SPECS: dict[GenerationPhase, PhaseSpec] = {s.phase: s for s in _SPECS}
PHASE_ORDER: tuple[GenerationPhase, ...] = tuple(s.phase for s in _SPECS)


def spec(phase: GenerationPhase) -> PhaseSpec:
    """The definition of ``phase``."""
    return PHASE_SPECS[phase]
