"""Task hashes. A task is one step (``build``, or ``test`` with coverage and quality) of one
package; its hash covers, and its manifest lists:

- the package's input files (git-tracked + untracked-not-ignored, or the configured
  ``inputs`` globs), by git blob id and path relative to the package — never the checkout
  path, so the same commit hashes the same in any directory or worktree;
- its package.json, the lockfile entries of its external dependencies and the build hashes of
  its workspace dependencies (``dependsOn: ["^build"]``, the default);
- the exact command text, the Node.js major version, the values (as digests) of the env
  allowlist, global inputs, the output globs and the cache-format version.

A ``test`` task hashes its own package's ``build`` hash plus the test/quality commands and
the settings that decide whether the step passes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pkgbuilder.cache import FORMAT_VERSION
from pkgbuilder.cache.globs import glob_match, select
from pkgbuilder.cache.lockfile import Lockfile, external_dependencies, find_lockfile
from pkgbuilder.cache.sources import FileSource
from pkgbuilder.cache.turbo import TurboConfig, parse_turbo
from pkgbuilder.config import BuildSettings, CacheSettings
from pkgbuilder.models.build import PackageNode
from pkgbuilder.models.cache import ManifestDiff, TaskManifest
from pkgbuilder.steps.coverage import COVERAGE_FILES

DEFAULT_OUTPUTS = ["dist/**", "build/**", "lib/**"]
DEFAULT_TEST_OUTPUTS = list(COVERAGE_FILES)
ALWAYS_EXCLUDED = ("node_modules/**", ".turbo/**", ".pkgbuilder/**")


@lru_cache(maxsize=1)
def node_major() -> str:
    """``v20`` — the Node.js major version of this host (``none`` without node)."""
    try:
        out = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "none"
    m = re.match(r"v?(\d+)", out)
    return f"v{m.group(1)}" if m else "none"


def _pick(table: dict[str, list[str]], node: PackageNode) -> list[str] | None:
    for key in (node.name, node.category.value, "*"):
        if key in table:
            return list(table[key])
    return None


def _env_digest(names: list[str], env: dict[str, str]) -> dict[str, str]:
    """NAME → sha256 of its value ("" when unset). ``PREFIX_*`` wildcards and ``!NAME``
    exclusions as in turbo's ``env``. Values themselves are never stored."""
    chosen: set[str] = set()
    for raw in names:
        neg = raw.startswith("!")
        pat = raw[1:] if neg else raw
        matched = [k for k in env if glob_match(pat, k)] if "*" in pat else [pat]
        for k in matched:
            (chosen.discard if neg else chosen.add)(k)
    return {
        k: hashlib.sha256(env[k].encode()).hexdigest()[:16] if k in env else ""
        for k in sorted(chosen)
    }


def manifest_hash(manifest: TaskManifest) -> str:
    body = manifest.model_dump(mode="json", by_alias=True, exclude={"hash"})
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class TaskConfig:
    outputs: list[str]
    test_outputs: list[str]
    inputs: list[str] | None
    env: list[str]
    test_env: list[str]
    include_dependencies: bool


class WorkspaceHasher:
    """Hashes every requested package's build and test tasks for one snapshot."""

    def __init__(
        self,
        source: FileSource,
        packages: list[PackageNode],
        settings: BuildSettings,
        env: dict[str, str] | None = None,
    ) -> None:
        self.source = source
        self.settings = settings
        self.cache: CacheSettings = settings.cache
        self.env = dict(os.environ) if env is None else env
        self.nodes = {p.name: p for p in packages}
        self.turbo: TurboConfig = parse_turbo(source.read("turbo.json"))
        self._lockfile: Lockfile | bool | None = False
        self._manifests: dict[tuple[str, str], TaskManifest] = {}
        self._globals: dict[str, str] | None = None

    # -- configuration -------------------------------------------------------------------

    def task_config(self, node: PackageNode) -> TaskConfig:
        build = self.turbo.task(node.name, "build")
        test = self.turbo.task(node.name, "test")
        outputs = _pick(self.cache.outputs, node)
        if outputs is None:
            outputs = build.outputs if build and build.outputs is not None else DEFAULT_OUTPUTS
        test_outputs = _pick(self.cache.test_outputs, node)
        if test_outputs is None:
            test_outputs = (
                test.outputs if test and test.outputs is not None else DEFAULT_TEST_OUTPUTS
            )
        inputs = _pick(self.cache.inputs, node)
        if inputs is None and build and build.inputs is not None:
            inputs = build.inputs
        depends = build.depends_on if build else None
        include_deps = depends is None or "^build" in depends
        env = [*self.cache.env, *self.turbo.global_env, *(build.env if build else [])]
        test_env = [*env, *(test.env if test else [])]
        return TaskConfig(list(outputs), list(test_outputs), inputs, env, test_env, include_deps)

    # -- pieces --------------------------------------------------------------------------

    def lockfile(self) -> Lockfile | None:
        if self._lockfile is False:
            self._lockfile = find_lockfile(self.source.read)
        return self._lockfile if isinstance(self._lockfile, Lockfile) else None

    def global_files(self) -> dict[str, str]:
        if self._globals is None:
            patterns = [*self.cache.global_inputs, *self.turbo.global_dependencies]
            found = {}
            if patterns:
                for rel, blob in self.source.files.items():
                    if select(patterns, rel) and "node_modules" not in rel.split("/"):
                        found[rel] = blob
            if self.turbo.present and "turbo.json" in self.source.files:
                found["turbo.json"] = self.source.files["turbo.json"]
            self._globals = dict(sorted(found.items()))
        return self._globals

    def package_files(self, node: PackageNode, cfg: TaskConfig) -> dict[str, str]:
        files = {}
        excluded = [*ALWAYS_EXCLUDED, *cfg.outputs, *cfg.test_outputs]
        for rel, blob in self.source.under(node.path):
            if rel == "package.json":
                continue
            full = f"{node.path}/{rel}" if node.path not in ("", ".") else rel
            if cfg.inputs is not None:
                if not select(cfg.inputs, rel):
                    continue
            elif any(glob_match(p, rel) for p in ALWAYS_EXCLUDED):
                continue
            elif full not in self.source.tracked and select(excluded, rel):
                continue  # a build output lying around untracked
            files[rel] = blob
        return dict(sorted(files.items()))

    def _package_json(self, node: PackageNode) -> tuple[dict[str, Any], str]:
        rel = "package.json" if node.path in ("", ".") else f"{node.path}/package.json"
        data = self.source.read(rel)
        if data is None:
            return {}, ""
        try:
            manifest = json.loads(data)
        except ValueError:
            manifest = {}
        return (manifest if isinstance(manifest, dict) else {}), hashlib.sha256(data).hexdigest()[
            :32
        ]

    @staticmethod
    def _commands(manifest: dict[str, Any], names: list[str]) -> list[str]:
        raw = manifest.get("scripts")
        scripts: dict[str, Any] = raw if isinstance(raw, dict) else {}
        out = []
        for name in names:
            for event in (f"pre{name}", name, f"post{name}"):
                if isinstance(scripts.get(event), str):
                    out.append(f"{event}: {scripts[event]}")
        return out

    # -- manifests -----------------------------------------------------------------------

    def manifest(self, name: str, step: str = "build") -> TaskManifest:
        key = (name, step)
        if key not in self._manifests:
            self._manifests[key] = self._build(name) if step == "build" else self._test(name)
        return self._manifests[key]

    def _build(self, name: str) -> TaskManifest:
        node = self.nodes[name]
        cfg = self.task_config(node)
        pkg_json, pkg_digest = self._package_json(node)
        lock = self.lockfile()
        externals = external_dependencies(pkg_json, set(self.nodes))
        deps = {}
        if cfg.include_dependencies:
            deps = {d: self.manifest(d).hash for d in sorted(node.dependencies) if d in self.nodes}
        m = TaskManifest(
            format=FORMAT_VERSION,
            package=name,
            step="build",
            files=self.package_files(node, cfg),
            package_json=pkg_digest,
            global_files=self.global_files(),
            lockfile=lock.entries(node.path, externals) if lock else {},
            dependencies=deps,
            command=self._commands(pkg_json, ["build"]),
            runner=self.settings.script_runner,
            node=node_major(),
            env=_env_digest(cfg.env, self.env),
            outputs=cfg.outputs,
        )
        m.hash = manifest_hash(m)
        return m

    def _test(self, name: str) -> TaskManifest:
        node = self.nodes[name]
        cfg = self.task_config(node)
        build = self.manifest(name)
        pkg_json, _ = self._package_json(node)
        testing = self.settings.testing
        raw_scripts = pkg_json.get("scripts")
        scripts: dict[str, Any] = raw_scripts if isinstance(raw_scripts, dict) else {}
        test_script = (
            "test:coverage" if testing.enable_coverage and "test:coverage" in scripts else "test"
        )
        q = self.settings.quality
        quality = q.commands.get(node.category.value) or q.commands.get("*")
        m = TaskManifest(
            format=FORMAT_VERSION,
            package=name,
            step="test",
            dependencies={f"{name}#build": build.hash},
            command=[
                *self._commands(pkg_json, [test_script]),
                *(" ".join(a) for a in quality or []),
                *([] if quality else self._commands(pkg_json, q.default_scripts)),
            ],
            runner=self.settings.script_runner,
            node=node_major(),
            env=_env_digest(cfg.test_env, self.env),
            outputs=cfg.test_outputs,
            settings={
                "enableCoverage": testing.enable_coverage,
                "threshold": testing.threshold_for(node.category),
                "failOnError": testing.fail_on_error,
                "requireCoverageReport": testing.require_coverage_report,
                "requireTests": self.settings.publishing.require_tests
                and self.settings.publishing.enabled,
            },
        )
        m.hash = manifest_hash(m)
        return m


def diff_manifests(old: TaskManifest, new: TaskManifest) -> ManifestDiff:
    """Which inputs changed between two manifests of the same task."""
    changes: list[str] = []

    def mapping(label: str, a: dict[str, str], b: dict[str, str]) -> None:
        for k in sorted(set(a) | set(b)):
            if k not in a:
                changes.append(f"{label} added: {k}")
            elif k not in b:
                changes.append(f"{label} removed: {k}")
            elif a[k] != b[k]:
                changes.append(f"{label} changed: {k}")

    mapping("file", old.files, new.files)
    mapping("global file", old.global_files, new.global_files)
    mapping("lockfile entry", old.lockfile, new.lockfile)
    mapping("dependency", old.dependencies, new.dependencies)
    mapping("env", old.env, new.env)
    for label, a, b in (
        ("package.json", old.package_json, new.package_json),
        ("command", old.command, new.command),
        ("script runner", old.runner, new.runner),
        ("node", old.node, new.node),
        ("outputs", old.outputs, new.outputs),
        ("settings", old.settings, new.settings),
        ("cache format", old.format, new.format),
    ):
        if a != b:
            changes.append(
                f"{label} changed: {a!r} -> {b!r}"
                if label in ("node", "cache format", "script runner", "command")
                else f"{label} changed"
            )
    return ManifestDiff(
        package=new.package, step=new.step, old_hash=old.hash, new_hash=new.hash, changes=changes
    )
