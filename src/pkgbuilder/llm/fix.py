"""The fix loop's rules: which prompt, which files the model sees, the request file of one
attempt, and applying and committing its answer.

The fix prompt is the one the seed describes (``.claude/agents/fix-prompts/<types sorted,
joined by '-'>.md``, else ``generic-developer.md`` there, else the built-in prompt); the
request adds the plan, the failures' output tails and the relevant package files within a
byte budget. The answer is applied through :mod:`pkgbuilder.llm.fileops` and exactly the
paths it names are committed, idempotently (a ``Pkgbuilder-Request:`` trailer).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from pkgbuilder import vcs
from pkgbuilder.errors import UserError
from pkgbuilder.llm import prompts
from pkgbuilder.llm.fileops import FileOpLimits, apply_file_operations, normalise_path
from pkgbuilder.llm.store import read_response, write_request
from pkgbuilder.models.build import Failure
from pkgbuilder.models.llm import ApplyFixInput, ApplyFixResult, PrepareFixInput, PrepareFixResult
from pkgbuilder.steps.scripts import read_scripts, scripts_changes

FIX_PROMPTS_DIR = ".claude/agents/fix-prompts"
GENERIC_PROMPT = "generic-developer.md"
MAX_PROMPT_BYTES = 64 * 1024
MAX_PLAN_BYTES = 64 * 1024
SKIP_DIRS = frozenset({"node_modules", ".git", "dist", "build", "coverage", ".turbo", ".next"})
TEXT_SUFFIXES = frozenset(
    {
        ".ts",
        ".tsx",
        ".mts",
        ".cts",
        ".js",
        ".jsx",
        ".mjs",
        ".cjs",
        ".json",
        ".md",
        ".css",
        ".scss",
        ".html",
        ".yml",
        ".yaml",
    }
)
SOURCE_DIRS = ("src", "lib", "test", "tests", "__tests__", "spec")
CONFIG_PREFIXES = (
    "tsconfig",
    "jest.config",
    "vitest.config",
    "eslint.config",
    ".eslintrc",
    "babel.config",
    ".babelrc",
    "rollup.config",
    "vite.config",
    "tsup.config",
)
_MENTIONED = re.compile(r"[\w@./\-]+\.(?:[cm]?[jt]sx?|json)\b")


def _confined(root: Path, rel: str) -> Path | None:
    """``root/rel`` resolved, or None when it leaves ``root``."""
    path = Path(os.path.realpath(root / rel))
    return path if path == root or root in path.parents else None


def _read_text(path: Path, limit: int) -> str | None:
    """Text of a file up to ``limit`` bytes; None for binary or unreadable files."""
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError:
        return None
    if b"\x00" in data[:8192]:
        return None
    text = data[:limit].decode("utf-8", errors="replace")
    return text + ("\n[... truncated ...]" if len(data) > limit else "")


def choose_fix_prompt(workspace: Path, types: list[str]) -> tuple[str, str]:
    """(prompt text, agentPromptUsed): specific file, generic file, else the built-in prompt."""
    key = "-".join(sorted(types))
    for name in (f"{key}.md", GENERIC_PROMPT):
        rel = f"{FIX_PROMPTS_DIR}/{name}"
        path = _confined(workspace, rel)
        if path is not None and path.is_file():
            text = _read_text(path, MAX_PROMPT_BYTES)
            if text and text.strip():
                return text, rel
    return prompts.builtin_fix_prompt(), prompts.BUILTIN_FIX_PROMPT


def _mentioned_files(pkg_dir: Path, package_path: str, failures: list[Failure]) -> list[str]:
    found: list[str] = []
    prefix = package_path.strip("/") + "/"
    for f in failures:
        for m in _MENTIONED.findall(f"{f.message}\n{f.output_tail}"):
            cand = m
            if os.path.isabs(cand):
                try:
                    cand = Path(cand).resolve().relative_to(pkg_dir).as_posix()
                except ValueError:
                    continue
            cand = cand.removeprefix("./").removeprefix(prefix)
            if cand not in found:
                found.append(cand)
    return found


def _package_files(pkg_dir: Path) -> list[str]:
    """package.json, config files, then sources and tests (sorted), skipping build output."""
    top = sorted(p.name for p in pkg_dir.iterdir() if p.is_file())
    ordered = ["package.json"] + [n for n in top if n.startswith(CONFIG_PREFIXES)]
    for d in SOURCE_DIRS:
        for dirpath, dirnames, filenames in os.walk(pkg_dir / d):
            dirnames[:] = sorted(n for n in dirnames if n not in SKIP_DIRS)
            for name in sorted(filenames):
                rel = (Path(dirpath) / name).relative_to(pkg_dir).as_posix()
                if Path(name).suffix in TEXT_SUFFIXES:
                    ordered.append(rel)
    return list(dict.fromkeys(ordered))


def collect_context_files(
    pkg_dir: Path, package_path: str, failures: list[Failure], budget: int, per_file: int
) -> tuple[list[tuple[str, str]], list[str]]:
    """Files to show the model: mentioned in failures first, within the byte budget."""
    files: list[tuple[str, str]] = []
    omitted: list[str] = []
    used = 0
    for rel in dict.fromkeys(
        _mentioned_files(pkg_dir, package_path, failures) + _package_files(pkg_dir)
    ):
        try:
            rel = normalise_path(rel)
        except ValueError:
            continue
        path = _confined(pkg_dir, rel)
        if path is None or not path.is_file():
            continue
        text = _read_text(path, per_file)
        if text is None:
            continue
        size = len(text.encode("utf-8"))
        if used + size > budget:
            omitted.append(rel)
            continue
        used += size
        files.append((rel, text))
    return files, omitted


class FixInputError(UserError):
    """A fix attempt was started without what it needs (no package directory)."""


def package_dirs(workspace_root: str, package_path: str) -> tuple[Path, Path]:
    """(workspace, package directory), both resolved.

    Raises:
        FixInputError: the package directory is not a directory inside the workspace.
    """
    workspace = Path(os.path.realpath(workspace_root))
    pkg_dir = _confined(workspace, package_path)
    if pkg_dir is None or not pkg_dir.is_dir():
        raise FixInputError(
            f"package directory '{package_path}' is not a directory inside {workspace}"
        )
    return workspace, pkg_dir


def write_fix_request(inp: PrepareFixInput, home: Path) -> PrepareFixResult:
    """Write the request file of one fix attempt under ``home``; its path, hash and the
    prompt used."""
    workspace, pkg_dir = package_dirs(inp.workspace_root, inp.package_path)
    types = prompts.failure_types(inp.failures)
    agent_prompt, prompt_used = choose_fix_prompt(workspace, types)
    plan_text = None
    if inp.plan_path:
        plan = _confined(workspace, inp.plan_path)
        if plan is not None and plan.is_file():
            plan_text = _read_text(plan, MAX_PLAN_BYTES)
    fix = inp.config.fix
    files, omitted = collect_context_files(
        pkg_dir,
        inp.package_path,
        inp.failures,
        fix.context_budget_bytes,
        fix.context_file_max_bytes,
    )
    request = prompts.build_fix_request(
        agent_prompt=agent_prompt,
        package_name=inp.package_name,
        attempt=inp.attempt,
        max_attempts=fix.max_attempts,
        failures=inp.failures,
        plan_text=plan_text,
        files=files,
        omitted=omitted,
        max_tokens=fix.max_output_tokens,
        temperature=fix.temperature,
        request_key=f"{inp.build_id}:{inp.package_name}:fix:{inp.attempt}",
    )
    path, sha = write_request(home, request)
    return PrepareFixResult(
        request_path=str(path),
        request_sha256=sha,
        agent_prompt_used=prompt_used,
        failure_types=types,
        files_included=[p for p, _ in files],
        files_omitted=omitted,
    )


def fix_commit_subject(package_name: str, attempt: int, types: list[str]) -> str:
    """``fix(<pkg>): attempt N for <types sorted, comma-separated>``."""
    return f"fix({package_name}): attempt {attempt} for {', '.join(sorted(types))}"


def apply_fix(
    inp: ApplyFixInput, heartbeat: Callable[[str], None] = lambda _: None
) -> ApplyFixResult:
    """Apply the answer's file operations (all or nothing) and commit exactly those paths.

    Raises:
        FixInputError: no package directory.
        StoreError: the stored answer is missing or was tampered with.
        FileOperationError: the answer breaks the file-operation rules (hostile input).
        GitBusy: another git process holds a lock (worth retrying).
        GitFailed: git refused the commit.
    """
    _, pkg_dir = package_dirs(inp.workspace_root, inp.package_path)
    stored = read_response(Path(inp.response_path))
    fix = inp.config.fix
    limits = FileOpLimits(fix.max_files_per_response, fix.max_file_bytes, fix.max_response_bytes)
    ops = stored.response.files
    scripts_before = read_scripts(pkg_dir)
    changed = apply_file_operations(pkg_dir, ops, limits)
    heartbeat("committing")
    outcome = vcs.commit_only(
        vcs.Repository(pkg_dir),
        [normalise_path(op.path) for op in ops],
        fix_commit_subject(inp.package_name, inp.attempt, inp.failure_types),
        trailer=f"Pkgbuilder-Request: {stored.request_sha256}",
    )
    return ApplyFixResult(
        files_changed=changed,
        commit=outcome.commit,
        already_applied=outcome.already_committed,
        note=outcome.note,
        summary=stored.response.summary[:2000],
        scripts_changed=scripts_changes(scripts_before, read_scripts(pkg_dir)),
    )
