"""The state of a checkout, and whether it may serve a suite started elsewhere (the check
of a fleet worker, see docs/workers.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pkgbuilder.vcs.porcelain import porcelain_paths
from pkgbuilder.vcs.repository import Repository

# How many changed paths a refusal names.
NAMED_PATHS = 3


@dataclass(frozen=True)
class CheckoutState:
    """HEAD and the uncommitted changes to tracked files of a checkout. Untracked files do
    not count: builds leave some behind (a ``tsconfig.tsbuildinfo`` nobody ignores), and an
    untracked *input* changes the package's task hash, which a fleet worker checks too."""

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
    skip = [e.rstrip("/") + "/" for e in exclude or []]
    changed = porcelain_paths(repo.run("status", "--porcelain=v1", "-z", "--untracked-files=no"))
    dirty = [p for p in changed if not any((p + "/").startswith(s) for s in skip)]
    return CheckoutState(commit=repo.head_commit(), dirty_paths=dirty)


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


def hash_refusal(package: str, expected: str, actual: str, where: str) -> str | None:
    """Why a checkout whose build hash of ``package`` is ``actual`` cannot build it for a
    suite that hashed it ``expected``; None when they agree. One sentence."""
    if expected == actual:
        return None
    return (
        f"{package} hashes {actual[:12]} in the checkout {where} and {expected[:12]} in the "
        "suite: its files, the Node.js major version or an allowlisted environment "
        "variable differ from the starting checkout's."
    )
