"""``turnBasedGeneration`` configuration and the phase schedule it produces.

The section is kept verbatim in ``BuildSettings.turn_based_generation`` and validated here,
by the feature that owns it. Pure and deterministic: the workflow calls :func:`schedule`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from pkgbuilder.config import BuildSettings, ConfigError
from pkgbuilder.models.common import Category, Model
from pkgbuilder.session.phases.definitions import PHASE_ORDER, GenerationPhase, spec

# The operator guide's category table: utility packages skip these by default.
CATEGORY_DEFAULT_SKIPS: dict[Category, frozenset[GenerationPhase]] = {
    Category.UTILITY: frozenset({GenerationPhase.EXAMPLES, GenerationPhase.INTEGRATION_REVIEW}),
}

MAX_TOKEN_BUDGET = 64000


def _phase_list(value: Any) -> list[GenerationPhase]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    return [v if isinstance(v, GenerationPhase) else GenerationPhase.parse(str(v)) for v in value]


def _phase_map(value: Any) -> dict[GenerationPhase, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("must map phase names to values")
    return {
        k if isinstance(k, GenerationPhase) else GenerationPhase.parse(str(k)): v
        for k, v in value.items()
    }


class TurnBasedGenerationConfig(Model):
    """The operator guide's ``turnBasedGeneration`` section plus pkgbuilder's additions.

    ``phasesToExecute`` (None = all 15) and ``phasesToSkip`` select phases; an explicit
    ``phasesToExecute`` replaces the category defaults. ``tokenBudgets``/``temperatures``
    override the per-phase defaults.
    """

    enabled: bool = False
    phases_to_execute: list[GenerationPhase] | None = None
    phases_to_skip: list[GenerationPhase] = Field(default_factory=list)
    token_budgets: dict[GenerationPhase, int] = Field(default_factory=dict)
    temperatures: dict[GenerationPhase, float] = Field(default_factory=dict)
    # Apply the category table's default skips (utility: EXAMPLES, INTEGRATION_REVIEW).
    category_defaults: bool = True
    # Characters of existing file contents a phase prompt may carry (the file tree and the
    # completed-step summaries come on top).
    prompt_file_budget_chars: int = Field(default=48000, ge=1000, le=400000)
    # Fix attempts of BUILD_VALIDATION after the real install/build/test failed.
    validation_fix_attempts: int = Field(default=3, ge=0, le=10)
    # Merge the branch into the base with --no-ff when validation passed (--no-merge: False).
    merge: bool = True
    # Where state files go, relative to the workspace root unless absolute
    # ($GENERATION_STATE_DIR sets it; default .generation-state).
    state_dir: str | None = None

    @field_validator("phases_to_execute", mode="before")
    @classmethod
    def _execute(cls, v: Any) -> list[GenerationPhase] | None:
        return None if v is None else _phase_list(v)

    @field_validator("phases_to_skip", mode="before")
    @classmethod
    def _skip(cls, v: Any) -> list[GenerationPhase]:
        return _phase_list(v)

    @field_validator("token_budgets", "temperatures", mode="before")
    @classmethod
    def _maps(cls, v: Any) -> dict[GenerationPhase, Any]:
        return _phase_map(v)

    @model_validator(mode="after")
    def _ranges(self) -> TurnBasedGenerationConfig:
        for phase, budget in self.token_budgets.items():
            if not 1 <= budget <= MAX_TOKEN_BUDGET:
                raise ValueError(
                    f"tokenBudgets.{phase.value} must be between 1 and {MAX_TOKEN_BUDGET}"
                )
        for phase, temp in self.temperatures.items():
            if not 0.0 <= temp <= 1.0:
                raise ValueError(f"temperatures.{phase.value} must be between 0 and 1")
        return self


def turn_based_config(settings: BuildSettings) -> TurnBasedGenerationConfig:
    """Validate ``settings.turn_based_generation``.

    Raises:
        ConfigError: one sentence naming the bad key.
    """
    try:
        return TurnBasedGenerationConfig.model_validate(settings.turn_based_generation)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        where = f"turnBasedGeneration.{loc}" if loc else "turnBasedGeneration"
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"Invalid configuration value at '{where}': {msg}.") from e


class ScheduledPhase(Model):
    """One step of a session: fixed when the session starts and kept in the state file, so
    step numbers and budgets do not change on resume."""

    phase: GenerationPhase
    step_number: int
    max_tokens: int
    temperature: float
    calls_model: bool = True


def schedule(config: TurnBasedGenerationConfig, category: Category) -> list[ScheduledPhase]:
    """The ordered steps of a session: selection, category defaults and overrides applied.

    Raises:
        ConfigError: nothing is left to run.
    """
    if config.phases_to_execute is not None:
        wanted = set(config.phases_to_execute)
    else:
        wanted = set(PHASE_ORDER)
        if config.category_defaults:
            wanted -= CATEGORY_DEFAULT_SKIPS.get(category, frozenset())
    wanted -= set(config.phases_to_skip)
    if not wanted:
        raise ConfigError(
            "turnBasedGeneration selects no phase to run; check phasesToExecute and phasesToSkip."
        )
    steps: list[ScheduledPhase] = []
    for phase in PHASE_ORDER:
        if phase not in wanted:
            continue
        s = spec(phase)
        steps.append(
            ScheduledPhase(
                phase=phase,
                step_number=len(steps) + 1,
                max_tokens=config.token_budgets.get(phase, s.max_tokens),
                temperature=config.temperatures.get(phase, s.temperature),
                calls_model=s.calls_model,
            )
        )
    return steps
