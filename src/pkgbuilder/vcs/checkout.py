"""The state of a checkout, and whether it may serve a suite started elsewhere (the check
of a fleet worker, see docs/workers.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pkgbuilder.vcs.repository import Repository

# How many changed paths a refusal names.
NAMED_PATHS = 3


@dataclass(frozen=True)
class CheckoutState:
    """HEAD and the uncommitted changes (tracked or untracked, not ignored) of a checkout."""

    commit: str | None
    dirty_paths: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.dirty_paths


def checkout_state(root: Path, exclude: list[str] | None = None) -> CheckoutState:
    """The state of the checkout at ``root``; ``exclude``: directories (relative to the top
    level) whose changes do not count, such as pkgbuilder's own state and reports.

    Raises:
        NotARepository: ``root`` is not inside a git work tree.
        GitFailed: git failed.
    """
    repo = Repository.open(root)
    return CheckoutState(commit=repo.head_commit(), dirty_paths=repo.dirty_paths(exclude))


def refusal(commit: str, clean: bool, state: CheckoutState, where: str) -> str | None:
    """Why a checkout (``state``, at ``where``) cannot serve a suite started at ``commit``
    (``clean``: with no uncommitted change); None when it can. One sentence."""
    if state.commit != commit:
        at = state.commit[:12] if state.commit else "no commit"
        return (
            f"the checkout {where} is at {at}, the suite was started at {commit[:12]}: "
            "check out that commit on this worker (git fetch && git checkout)."
        )
    if clean and not state.clean:
        named = ", ".join(state.dirty_paths[:NAMED_PATHS])
        more = len(state.dirty_paths) - NAMED_PATHS
        return (
            f"the checkout {where} has uncommitted changes ({named}"
            + (f" and {more} more" if more > 0 else "")
            + ") and the suite was started from a clean checkout: commit, stash or discard them."
        )
    return None
