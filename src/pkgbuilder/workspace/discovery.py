"""Workspace discovery: packages, categories and dependency edges of a JS/TS monorepo.

Sources: npm/yarn ``package.json`` ``workspaces`` (a list of globs or ``{packages: [...]}``),
``pnpm-workspace.yaml`` (``packages:``), and optionally a master plan (see master_plan.py)
that lists packages which may not exist yet. Pure module: reads files, no Temporal, no
subprocesses. Every problem a user can cause raises :class:`WorkspaceError` with one clear
sentence. The rules are documented in docs/workspaces.md.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pkgbuilder.models.build import PackageNode, WorkspaceGraph
from pkgbuilder.models.common import Category, PackageManager
from pkgbuilder.util.yamltext import YamlError, load_yaml
from pkgbuilder.workspace.globs import declaration_index, literal_entries, matching_directories
from pkgbuilder.workspace.graph import (
    DependencyCycleError,
    WorkspaceError,
    topological_order,
    transitive_dependencies,
)
from pkgbuilder.workspace.master_plan import (
    PlannedPackage,
    parse_category,
    parse_master_plan,
    unscoped,
)
from pkgbuilder.workspace.pm import (
    LinkResolver,
    PackageManagerError,
    is_yarn_berry,
    requested_version,
    yarn_node_linker,
)
from pkgbuilder.workspace.pm import detect_package_manager as _detect
from pkgbuilder.workspace.turbo import read_turbo

__all__ = [
    "DependencyCycleError",
    "WorkspaceError",
    "detect_package_manager",
    "discover_workspace",
    "read_manifest",
    "workspace_package_dirs",
    "workspace_patterns",
]

DEPENDENCY_FIELDS = ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies")


@dataclass(frozen=True)
class _Manifest:
    rel: str  # package directory relative to the root (posix)
    data: dict[str, Any]
    order: int = 0  # position in the workspace's declaration order

    @property
    def name(self) -> str:
        return str(self.data["name"])


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def read_manifest(path: Path, root: Path, require_name: bool = True) -> dict[str, Any]:
    """Parse a package.json.

    Raises:
        WorkspaceError: unreadable, malformed (file and line named), not an object, or
            without a string "name" when ``require_name``.
    """
    shown = _display(path, root)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise WorkspaceError(f"Cannot read {shown}: {e}.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise WorkspaceError(
            f"{shown} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})."
        ) from None
    if not isinstance(data, dict):
        raise WorkspaceError(f"{shown} must hold a JSON object.")
    if require_name and not (isinstance(data.get("name"), str) and data["name"].strip()):
        raise WorkspaceError(f'{shown} has no "name": every workspace package needs one.')
    return data


def detect_package_manager(root: Path, manifest: dict[str, Any] | None) -> PackageManager:
    """From ``packageManager`` (e.g. ``pnpm@9.1.0``), else the lockfile, else
    pnpm-workspace.yaml (pnpm), else npm (see :mod:`pkgbuilder.workspace.pm`)."""
    try:
        return _detect(root, manifest)
    except PackageManagerError as e:
        raise WorkspaceError(str(e)) from None


def _pnpm_patterns(path: Path) -> list[Any]:
    try:
        data = load_yaml(path.read_text(encoding="utf-8-sig"))
    except YamlError as e:
        where = f" (line {e.line})" if e.line is not None else ""
        raise WorkspaceError(f"pnpm-workspace.yaml is not valid YAML{where}.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise WorkspaceError(f"Cannot read pnpm-workspace.yaml: {e}.") from None
    packages = data.get("packages") if isinstance(data, dict) else None
    if not isinstance(packages, list):
        raise WorkspaceError("pnpm-workspace.yaml has no 'packages:' list of globs.")
    return packages


def workspace_patterns(
    root: Path, manifest: dict[str, Any] | None, manager: PackageManager
) -> tuple[list[str], str] | None:
    """The workspace globs and the file they came from, or None when the root declares none.

    pnpm-workspace.yaml wins unless package.json declares workspaces and the package manager
    is not pnpm (pnpm itself ignores package.json ``workspaces``).
    """
    declared = (manifest or {}).get("workspaces")
    raw: Any
    pnpm_file = root / "pnpm-workspace.yaml"
    if pnpm_file.is_file() and (declared is None or manager is PackageManager.PNPM):
        raw, source = _pnpm_patterns(pnpm_file), "pnpm-workspace.yaml"
    elif declared is not None:
        raw = declared.get("packages") if isinstance(declared, dict) else declared
        source = "package.json"
        if not isinstance(raw, list):
            raise WorkspaceError(
                '"workspaces" in package.json must be a list of globs or an object with a '
                '"packages" list.'
            )
    else:
        return None
    if not all(isinstance(p, str) and p.strip() for p in raw):
        raise WorkspaceError(f"Every workspace entry in {source} must be a non-empty string.")
    return [p.strip() for p in raw], source


def _find_manifests(root: Path, patterns: list[str], source: str) -> list[_Manifest]:
    manifests: list[_Manifest] = []
    by_name: dict[str, str] = {}
    found = matching_directories(root, patterns)
    found.sort(key=lambda rel: (declaration_index(patterns, rel), rel))
    for order, rel in enumerate(found):
        manifest_path = root / rel / "package.json"
        if not manifest_path.is_file():
            continue  # npm ignores glob matches without a package.json
        _require_inside(root, rel, source)
        manifest = _Manifest(rel, read_manifest(manifest_path, root), order)
        if manifest.name in by_name:
            raise WorkspaceError(
                f"Two packages are named {manifest.name}: {by_name[manifest.name]} and {rel}."
            )
        by_name[manifest.name] = rel
        manifests.append(manifest)
    for literal in literal_entries(patterns):
        if not (root / literal / "package.json").is_file():
            raise WorkspaceError(
                f"Workspace entry '{literal}' in {source} has no package.json at "
                f"{literal}/package.json."
            )
    return manifests


def _require_inside(root: Path, rel: str, source: str) -> None:
    """Builds write into a package's directory (``dist/``, ``coverage/``): a directory that
    resolves outside the workspace root (a symlink out of the repository) is refused."""
    resolved = (root / rel).resolve()
    if resolved != root and root not in resolved.parents:
        raise WorkspaceError(
            f"Package directory {rel} (from the workspace entries in {source}) resolves to "
            f"{resolved}, outside the workspace root {root}; replace the symlink with the "
            "package itself or remove the entry."
        )


def _category(manifest: _Manifest) -> Category:
    settings = manifest.data.get("pkgbuilder")
    if isinstance(settings, dict) and settings.get("category") is not None:
        category = parse_category(str(settings["category"]))
        if category is None:
            allowed = ", ".join(c.value for c in Category)
            raise WorkspaceError(
                f"{manifest.rel}/package.json sets pkgbuilder.category to "
                f"'{settings['category']}', which is not one of {allowed}."
            )
        return category
    parts = manifest.rel.split("/")
    if len(parts) >= 2 and (category := parse_category(parts[-2])) is not None:
        return category
    return Category.UTILITY


def _workspace_edges(
    manifest: _Manifest, known: set[str], links: LinkResolver | None = None
) -> list[str]:
    """Workspace packages this one really gets linked (see pm/linking.py); without a
    resolver (plan-only packages) every named workspace package counts."""
    edges: set[str] = set()
    for field in DEPENDENCY_FIELDS:
        deps = manifest.data.get(field)
        if deps is None:
            continue
        if not isinstance(deps, dict):
            raise WorkspaceError(f'"{field}" in {manifest.rel}/package.json must be an object.')
        for dep, spec in deps.items():
            if dep in known:
                if links is None or links.links(manifest.rel, dep, str(spec)):
                    edges.add(dep)
            elif isinstance(spec, str) and spec.startswith("workspace:"):
                raise WorkspaceError(
                    f"{manifest.name} depends on {dep} via '{spec}', but no workspace package "
                    f"is named {dep}."
                )
    return sorted(edges)


def _plan_path(root: Path, category: Category, name: str) -> str | None:
    rel = f"plans/packages/{category.value}/{unscoped(name)}.md"
    return rel if (root / rel).is_file() else None


def _node(
    root: Path,
    manifest: _Manifest,
    known: set[str],
    planned: PlannedPackage | None = None,
    links: LinkResolver | None = None,
) -> PackageNode:
    category = planned.category if planned else _category(manifest)
    scripts = manifest.data.get("scripts")
    extra = planned.dependencies if planned else []
    version = manifest.data.get("version")
    return PackageNode(
        name=manifest.name,
        version=version if isinstance(version, str) and version else "0.0.0",
        path=manifest.rel,
        category=category,
        layer=category.layer,
        dependencies=sorted(set(extra) | set(_workspace_edges(manifest, known, links))),
        order=manifest.order,
        plan_path=_plan_path(root, category, manifest.name),
        scripts=list(scripts) if isinstance(scripts, dict) else [],
        private=manifest.data.get("private") is True,
    )


def _planned_node(
    root: Path,
    planned: PlannedPackage,
    discovered: dict[str, _Manifest],
    known: set[str],
    links: LinkResolver,
) -> PackageNode:
    found = discovered.get(planned.name)
    rel = planned.path or (found.rel if found else None)
    rel = rel or f"packages/{planned.category.value}/{unscoped(planned.name)}"
    if found and found.rel != rel:
        raise WorkspaceError(
            f"The master plan puts {planned.name} at {rel}, but the workspace has it at "
            f"{found.rel}."
        )
    directory = root / rel
    if directory.exists() and root not in directory.resolve().parents:
        raise WorkspaceError(
            f"Path {rel} of {planned.name} must be a directory inside the workspace."
        )
    manifest_path = directory / "package.json"
    if not manifest_path.is_file():
        category = planned.category
        return PackageNode(
            name=planned.name,
            path=rel,
            category=category,
            layer=category.layer,
            dependencies=sorted(set(planned.dependencies)),
            plan_path=_plan_path(root, category, planned.name),
            exists=False,
            order=planned.line,
        )
    manifest = found or _Manifest(rel, read_manifest(manifest_path, root), planned.line)
    if manifest.name != planned.name:
        raise WorkspaceError(
            f"{rel}/package.json is named {manifest.name}, but the master plan (line "
            f"{planned.line}) expects {planned.name} there."
        )
    return _node(root, manifest, known, planned, links)


def _nodes_from_plan(
    root: Path, plan: Path, discovered: dict[str, _Manifest], links: LinkResolver
) -> list[PackageNode]:
    planned = parse_master_plan(plan).packages
    planned_names = {p.name for p in planned}
    known = planned_names | set(discovered)
    for entry in planned:
        for dep in entry.dependencies:
            if dep not in known:
                raise WorkspaceError(
                    f"{entry.name} depends on {dep} (master plan line {entry.line}), which is "
                    "neither in the master plan nor in the workspace."
                )
    nodes = {p.name: _planned_node(root, p, discovered, known, links) for p in planned}
    # Workspace packages the plan's packages depend on are built too: npm links them, so a
    # dependent's build would otherwise see an unbuilt dependency.
    pending = [d for n in nodes.values() for d in n.dependencies if d not in nodes]
    while pending:
        name = pending.pop()
        if name not in nodes:
            nodes[name] = _node(root, discovered[name], known, links=links)
            pending.extend(nodes[name].dependencies)
    return list(nodes.values())


def _refuse_unsupported_layout(
    root: Path, manager: PackageManager, manifest: dict[str, Any] | None
) -> None:
    if manager is not PackageManager.YARN:
        return
    if is_yarn_berry(root, requested_version(manifest)) and yarn_node_linker(root) == "pnp":
        raise WorkspaceError(
            f"{root} uses Yarn Plug'n'Play (no nodeLinker in .yarnrc.yml), which pkgbuilder "
            "does not support: set 'nodeLinker: node-modules' in .yarnrc.yml."
        )


def workspace_package_dirs(root: Path) -> list[str]:
    """Directories (relative posix paths) of every workspace package, without reading
    their manifests (what the install fingerprint covers); empty when none are declared."""
    manifest_file = root / "package.json"
    manifest: dict[str, Any] | None = None
    if manifest_file.is_file():
        try:
            manifest = read_manifest(manifest_file, root, require_name=False)
        except WorkspaceError:
            return []
    try:
        declared = workspace_patterns(root, manifest, detect_package_manager(root, manifest))
    except WorkspaceError:
        return []
    if declared is None:
        return []
    return [
        rel
        for rel in matching_directories(root, declared[0])
        if (root / rel / "package.json").is_file()
    ]


def _resolve_only(want: str, names: set[str]) -> str:
    if want in names:
        return want
    by_unscoped = [n for n in names if unscoped(n) == want]
    if len(by_unscoped) == 1:
        return by_unscoped[0]
    close = difflib.get_close_matches(want, sorted(names), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise WorkspaceError(f"--only names {want}, which is not a package of the workspace{hint}.")


def _restrict(nodes: list[PackageNode], only: list[str]) -> list[PackageNode]:
    names = {n.name for n in nodes}
    keep: set[str] = set()
    for want in only:
        name = _resolve_only(want, names)
        keep |= {name} | transitive_dependencies(nodes, name)
    return [n for n in nodes if n.name in keep]


def _declared_extra_edges(
    nodes: list[PackageNode], discovered: dict[str, _Manifest], configured: dict[str, list[str]]
) -> dict[str, set[str]]:
    """``pkgbuilder.dependsOn`` in each package.json plus ``graph.dependsOn`` in the config."""
    names = {n.name for n in nodes}
    extra: dict[str, set[str]] = {}

    def add(package: str, deps: Any, where: str) -> None:
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise WorkspaceError(f"{where} must be a list of package names.")
        for dep in deps:
            if dep not in names:
                raise WorkspaceError(
                    f"{where} names {dep}, which is not a package of the workspace."
                )
            extra.setdefault(package, set()).add(dep)

    for manifest in discovered.values():
        settings = manifest.data.get("pkgbuilder")
        if manifest.name in names and isinstance(settings, dict) and "dependsOn" in settings:
            add(
                manifest.name,
                settings["dependsOn"],
                f"pkgbuilder.dependsOn in {manifest.rel}/package.json",
            )
    for package, deps in configured.items():
        if package not in names:
            raise WorkspaceError(
                f"graph.dependsOn in the config names {package}, which is not a package of "
                "the workspace."
            )
        add(package, deps, f"graph.dependsOn of {package} in the config")
    return extra


def _with_extra_edges(
    root: Path,
    nodes: list[PackageNode],
    discovered: dict[str, _Manifest],
    configured: dict[str, list[str]],
) -> tuple[list[PackageNode], bool]:
    hints = read_turbo(root, {m.name: m.rel for m in discovered.values()})
    extra = _declared_extra_edges(nodes, discovered, configured)
    for package, deps in hints.edges.items():
        extra.setdefault(package, set()).update(deps)
    out = [
        n.model_copy(update={"dependencies": sorted(set(n.dependencies) | extra[n.name])})
        if extra.get(n.name)
        else n
        for n in nodes
    ]
    return out, hints.tests_gate


def discover_workspace(
    root: Path,
    plan: Path | None = None,
    only: list[str] | None = None,
    depends_on: dict[str, list[str]] | None = None,
) -> WorkspaceGraph:
    """Discover the packages of a monorepo and their dependency graph.

    Args:
        root: the workspace root (holds package.json and/or pnpm-workspace.yaml).
        plan: optional master plan; its packages (plus workspace packages they depend on)
            become the package set, including planned packages that do not exist yet.
        only: restrict to these packages and their transitive dependencies.
        depends_on: extra edges from the config (``graph.dependsOn``), added to those of
            package.json (``pkgbuilder.dependsOn``) and turbo.json.

    Returns:
        The graph with packages in topological order (dependencies first).

    Raises:
        WorkspaceError: one clear sentence naming the problem (cycle, unknown dependency,
            missing or malformed package.json, duplicate names, empty workspace, ...).
    """
    root = root.expanduser().resolve()
    if not root.is_dir():
        raise WorkspaceError(f"Workspace {root} is not a directory.")
    manifest_file = root / "package.json"
    manifest = (
        read_manifest(manifest_file, root, require_name=False) if manifest_file.is_file() else None
    )
    manager = detect_package_manager(root, manifest)
    declared = workspace_patterns(root, manifest, manager)
    discovered: dict[str, _Manifest] = {}
    if declared is not None:
        discovered = {m.name: m for m in _find_manifests(root, *declared)}
    _refuse_unsupported_layout(root, manager, manifest)
    links = LinkResolver(
        root,
        manager,
        requested_version(manifest),
        {m.name: (m.rel, str(m.data.get("version") or "0.0.0")) for m in discovered.values()},
    )
    if plan is not None:
        nodes = _nodes_from_plan(root, plan, discovered, links)
    elif declared is None:
        what = 'package.json declares no "workspaces"' if manifest else "there is no package.json"
        raise WorkspaceError(
            f"{root} is not a monorepo root: {what} and there is no pnpm-workspace.yaml "
            "(or pass --plan with a master plan)."
        )
    elif not discovered:
        globs = ", ".join(declared[0]) or "(none)"
        raise WorkspaceError(
            f"No packages found in {root}: the workspace globs in {declared[1]} ({globs}) "
            "match no directory with a package.json."
        )
    else:
        known = set(discovered)
        nodes = [_node(root, m, known, links=links) for m in discovered.values()]
    nodes, tests_gate = _with_extra_edges(root, nodes, discovered, depends_on or {})
    if only:
        # The closure first: a cycle among packages outside it does not stop the build.
        nodes = _restrict(nodes, only)
    order = topological_order(nodes)
    by_name = {n.name: n for n in nodes}
    return WorkspaceGraph(
        root=str(root),
        package_manager=manager,
        packages=[by_name[n] for n in order],
        topological_order=order,
        tests_gate=tests_gate,
    )
