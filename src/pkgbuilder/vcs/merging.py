"""Merging without a checkout: plumbing for branches that several workers update at once.

``git merge-tree --write-tree`` computes the merged tree in the object store, ``commit-tree``
records it, and a compare-and-swap ``update-ref`` moves the branch only if nobody moved it
meanwhile; a checkout of that branch is then brought forward with a two-tree ``read-tree``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pkgbuilder.vcs.repository import Repository


@dataclass(frozen=True)
class MergedTree:
    """What ``git merge-tree --write-tree`` found: the tree, or the conflicted paths."""

    tree: str | None
    conflicts: list[str] = field(default_factory=list)


def merge_tree(repo: Repository, ours: str, theirs: str) -> MergedTree:
    """The tree merging ``theirs`` into ``ours`` would produce (no ref or file changes)."""
    out = repo.run("merge-tree", "--write-tree", "--name-only", ours, theirs, check=False)
    # The tree, then the conflicted paths, a blank line and git's informational messages.
    head, _, _messages = out.partition("\n\n")
    lines = head.splitlines()
    tree = lines[0].strip() if lines else ""
    if len(tree) < 40 or len(lines) > 1:
        return MergedTree(None, [ln for ln in lines[1:] if ln.strip()])
    return MergedTree(tree)


def commit_tree(repo: Repository, tree: str, parents: list[str], message: str) -> str:
    """A commit of ``tree`` with ``parents`` (no branch moves)."""
    args = ["commit-tree", tree]
    for parent in parents:
        args += ["-p", parent]
    return repo.run(*args, "-m", message)


def swap_ref(repo: Repository, ref: str, new: str, old: str, reason: str | None = None) -> None:
    """Point ``ref`` at ``new`` if it still points at ``old``.

    Raises:
        GitBusy: ``ref`` moved (or is locked): read it again and retry.
    """
    args = ["update-ref"]
    if reason:
        args += ["-m", reason]
    repo.run(*args, ref, new, old)


def fast_forward_checkout(repo: Repository, old: str, new: str) -> None:
    """Bring this checkout from tree ``old`` to ``new`` like a fast-forward checkout:
    unrelated local edits stay; refused, changing nothing, if one would be lost."""
    repo.run("read-tree", "-m", "-u", old, new)


def find_merge(repo: Repository, subject: str, rev: str) -> str | None:
    """The newest merge commit on ``rev`` whose message contains ``subject``."""
    out = repo.run("log", "--merges", "--format=%H", "--fixed-strings", f"--grep={subject}", rev)
    first = out.splitlines()[0] if out else ""
    return first or None
