"""The 15 generation phases as data (:mod:`.definitions`), their configuration and schedule
(:mod:`.config`), what each phase sees (:mod:`.context`) and its prompt (:mod:`.prompts`)."""

from pkgbuilder.session.phases.config import ScheduledPhase, TurnBasedGenerationConfig, schedule
from pkgbuilder.session.phases.definitions import PHASE_ORDER, GenerationPhase, PhaseSpec, spec

__all__ = [
    "PHASE_ORDER",
    "GenerationPhase",
    "PhaseSpec",
    "ScheduledPhase",
    "TurnBasedGenerationConfig",
    "schedule",
    "spec",
]
