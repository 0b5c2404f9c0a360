"""Helpers shared by the lifecycle commands: finding the main worktree, pkgbuilder's scratch
paths, work-in-progress commits, and choosing the generation a command acts on."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from pkgbuilder.errors import UserError
from pkgbuilder.lifecycle import naming
from pkgbuilder.vcs import Repository

# Runtime directories that never belong in a commit (turn-based generation state files).
SCRATCH_DIRS = (".generation-state",)


def open_repo(path: Path) -> Repository:
    """A :class:`Repository` on the *main* worktree of the repository holding ``path``
    (commands may be run from a subdirectory or from a task worktree)."""
    path = Path(path).resolve()
    if not path.is_dir():
        raise UserError(f"{path} is not a directory; pass the repository with --repo.")
    here = Repository(path)
    if not here.is_repository():
        raise UserError(f"{path} is not inside a git repository; run 'git init' first.")
    return Repository(here.main_worktree())


def scratch_paths(root: Path, home: Path) -> list[str]:
    """Repository-relative paths pkgbuilder writes to and never commits."""
    paths = list(SCRATCH_DIRS)
    with contextlib.suppress(ValueError):
        rel = home.resolve().relative_to(root.resolve())
        if str(rel) != ".":
            paths.append(rel.as_posix())
    return paths


def ensure_excluded(git: Repository, home: Path) -> None:
    """List the scratch paths in ``.git/info/exclude`` (local to this clone, never committed)
    so that they neither dirty the tree nor end up in a commit."""
    exclude = git.common_dir() / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    text = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
    present = {ln.strip() for ln in text.splitlines()}
    wanted = [f"/{p}/" for p in scratch_paths(git.cwd, home)]
    missing = [p for p in wanted if p not in present]
    if missing:
        sep = "" if not text or text.endswith("\n") else "\n"
        exclude.write_text(
            text + sep + "# pkgbuilder scratch\n" + "\n".join(missing) + "\n", encoding="utf-8"
        )


def dirty(git: Repository, home: Path) -> list[str]:
    return git.dirty_paths(exclude=scratch_paths(git.cwd, home))


def commit_wip(git: Repository, home: Path, branch: str) -> str | None:
    """Commit the work in progress of the checked-out generation branch ``branch``; None when
    there is nothing to commit. Other branches never get pkgbuilder commits."""
    if not dirty(git, home):
        return None
    git.stage_all(exclude=scratch_paths(git.cwd, home))
    if not git.has_staged_changes():
        return None
    return git.commit(f"wip: work in progress on {branch}")


def leave_branch(git: Repository, home: Path, action: str) -> str | None:
    """Make the main worktree safe to switch away from: WIP on a generation branch is
    committed there; WIP anywhere else stops ``action`` (nothing is ever lost)."""
    current = git.current_branch()
    changes = dirty(git, home)
    if not changes:
        return None
    if current and naming.is_generation(current):
        return commit_wip(git, home, current)
    where = f"branch '{current}'" if current else "the detached HEAD"
    raise UserError(
        f"The working tree on {where} has {len(changes)} uncommitted change(s) "
        f"(e.g. {changes[0]}); commit or stash them before you {action}."
    )


def active_generations(git: Repository) -> list[str]:
    return sorted(b for b in git.branches(naming.BRANCH_GLOB) if naming.is_generation(b))


def resolve_generation(git: Repository, name: str | None, option: str = "--generation") -> str:
    """The active generation a command acts on: ``name`` when given, else the only active
    one, else the checked-out one; otherwise one sentence asking for ``option``."""
    active = active_generations(git)
    if name:
        if not naming.is_generation(name):
            raise UserError(
                f"'{name}' is not a generation name (expected generation-YYYY-MM-DD-HH-MM-SS); "
                "see 'pkgbuilder generation list'."
            )
        if name in active:
            return name
        if git.tag_exists(naming.tag_name(name, "merged")):
            raise UserError(f"Generation '{name}' was already stopped and merged.")
        if git.tag_exists(naming.tag_name(name, "abandoned")):
            raise UserError(f"Generation '{name}' was abandoned by a reset.")
        raise UserError(
            f"There is no active generation named '{name}'; see 'pkgbuilder generation list'."
        )
    if not active:
        raise UserError("No generation is active; start one with 'pkgbuilder generation start'.")
    if len(active) == 1:
        return active[0]
    current = git.current_branch()
    if current in active:
        return current
    raise UserError(
        f"{len(active)} generations are active ({', '.join(active)}); "
        f"choose one with {option} NAME."
    )


def confined(root: Path, rel: str) -> Path:
    """``root/rel`` for a repository-relative directory that stays inside ``root`` and is not
    the root itself (package paths come from plans and flags)."""
    target = (root / rel).resolve()
    root = root.resolve()
    if target == root or root not in target.parents:
        raise UserError(f"Package path '{rel}' must be a directory inside {root}.")
    return target


def remove_tree(path: Path, allowed_root: Path) -> None:
    """Delete ``path`` when it lies inside ``allowed_root`` (never follows a symlink out)."""
    if path.is_symlink():
        path.unlink()
        return
    if not path.exists():
        return
    if allowed_root.resolve() not in path.resolve().parents:
        raise UserError(f"Refusing to delete {path}: it is outside {allowed_root}.")
    shutil.rmtree(path)
