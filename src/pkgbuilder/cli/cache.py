"""``pkgbuilder hash`` and ``pkgbuilder cache status|prune``; the build command's cache
flags (``--force``, ``--cache``, ``--affected``, ``--dry``) are parsed here too."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from pkgbuilder.cli.common import fail, out, settings_for, user_errors
from pkgbuilder.config import BuildSettings
from pkgbuilder.errors import UserError
from pkgbuilder.models.build import WorkspaceGraph
from pkgbuilder.models.cache import DryRunPlan, TaskManifest

app = typer.Typer(name="cache", help="The local build cache: status, prune.", no_args_is_help=True)

_MODES = {
    "": (False, False),
    "r": (True, False),
    "w": (False, True),
    "rw": (True, True),
    "wr": (True, True),
}


def cache_spec_overrides(spec: str) -> dict[str, Any]:
    """``--cache local:rw,remote:r`` (turbo's syntax) → cache setting overrides; a source
    left out is off."""
    parts: dict[str, tuple[bool, bool]] = {"local": (False, False), "remote": (False, False)}
    for item in (p.strip() for p in spec.split(",") if p.strip()):
        where, _, mode = item.partition(":")
        if where not in parts or mode not in _MODES:
            raise UserError(
                f"--cache '{item}' is not understood; write e.g. "
                "--cache local:rw,remote:r (modes r, w, rw or empty for off)."
            )
        parts[where] = _MODES[mode]
    (lr, lw), (rr, rw) = parts["local"], parts["remote"]
    return {"cache": {"localRead": lr, "localWrite": lw, "remote": {"read": rr, "write": rw}}}


def _graph(
    workspace: Path, settings: BuildSettings, only: list[str] | None = None
) -> WorkspaceGraph:
    """The graph a build of ``workspace`` would use (the same edges, so the same hashes)."""
    from pkgbuilder.workspace.discovery import discover_workspace

    return discover_workspace(workspace, only=only or None, depends_on=settings.graph.depends_on)


def _manifest_lines(m: TaskManifest) -> list[str]:
    lines = [f"{m.package} {m.step}: {m.hash}"]
    lines += [f"  file {k} {v[:12]}" for k, v in m.files.items()]
    lines += [f"  global file {k} {v[:12]}" for k, v in m.global_files.items()]
    if m.package_json:
        lines.append(f"  package.json {m.package_json[:12]}")
    lines += [f"  lockfile {k} {v[:12]}" for k, v in m.lockfile.items()]
    lines += [f"  dependency {k} {v}" for k, v in m.dependencies.items()]
    lines += [f"  command {c}" for c in m.command]
    lines.append(f"  runner {m.runner}, node {m.node}, cache format {m.format}")
    lines += [f"  env {k} {'(unset)' if not v else v[:12]}" for k, v in m.env.items()]
    lines.append(f"  outputs {', '.join(m.outputs) or '(none)'}")
    if m.settings:
        lines.append(f"  settings {json.dumps(m.settings, sort_keys=True)}")
    return lines


def print_dry(plan: DryRunPlan, as_json: bool) -> None:
    if as_json:
        print(json.dumps(plan.to_json_dict(), indent=2))
        return
    table = Table(
        title=f"dry run: {sum(p.would_run for p in plan.packages)} of "
        f"{len(plan.packages)} packages would run",
        title_justify="left",
    )
    for col in ("package", "build hash", "cache", "reason"):
        table.add_column(col, overflow="fold")
    for p in plan.packages:
        table.add_row(p.name, p.build_hash[:16], p.cache, p.reason or "")
    out.print(table)
    for w in plan.warnings:
        out.print(f"[yellow]warning:[/] {w}")


def dry_run(settings: BuildSettings, workspace: Path, only: list[str], as_json: bool) -> int:
    from pkgbuilder.cache.plan import dry_plan

    print_dry(dry_plan(workspace, _graph(workspace, settings, only), settings), as_json)
    return 0


def affected(settings: BuildSettings, workspace: Path, base: str, head: str | None) -> list[str]:
    from pkgbuilder.cache.plan import affected_packages

    return affected_packages(workspace, _graph(workspace, settings), settings, base, head)


@user_errors
def hash_cmd(
    package: str = typer.Argument(..., help="Package name, e.g. @acme/core."),
    workspace: Path = typer.Option(Path("."), help="Monorepo root."),
    step: str = typer.Option("build", help="build or test."),
    explain: bool = typer.Option(False, help="List every input of the hash."),
    against: str | None = typer.Option(
        None, help="A build id: which inputs changed since that build."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Print a package's task hash; --explain its inputs, --against what changed."""
    from pkgbuilder.cache.engine import hash_packages
    from pkgbuilder.cache.hashing import diff_manifests
    from pkgbuilder.cache.sources import WorkingTree
    from pkgbuilder.cache.store import LocalStore

    if step not in ("build", "test"):
        fail("--step must be build or test.")
    workspace = workspace.resolve()
    settings = settings_for(workspace)
    graph = _graph(workspace, settings)
    if package not in graph.by_name():
        fail(f"{package} is not a package of {workspace}.")
    hasher, _ = hash_packages(WorkingTree(workspace), graph.packages, settings, [package])
    manifest = hasher.manifest(package, step)
    doc: dict[str, Any] = {"package": package, "step": step, "hash": manifest.hash}
    lines = _manifest_lines(manifest) if explain else [manifest.hash]
    if explain:
        doc["manifest"] = manifest.to_json_dict()
    if against:
        store = LocalStore.from_settings(settings.cache, workspace)
        recorded = store.build_hashes(against)
        if recorded is None:
            fail(f"No hashes were recorded for build {against} in {store.root}.")
        assert recorded is not None
        old_hash = recorded.get(package, {}).get(step)
        if not old_hash:
            fail(f"Build {against} did not hash {package}.")
        assert old_hash is not None
        old = store.get_manifest(old_hash)
        if old is None:
            fail(f"The manifest of {old_hash} is no longer in {store.root}.")
        assert old is not None
        diff = diff_manifests(old, manifest)
        doc["against"] = {"buildId": against, **diff.to_json_dict()}
        lines = [*lines, f"against build {against} ({old_hash}):"] + (
            [f"  {c}" for c in diff.changes] or ["  no input changed"]
        )
    if as_json:
        print(json.dumps(doc, indent=2))
    else:
        for line in lines:
            out.print(line, highlight=False, markup=False, soft_wrap=True)


def status_cmd(
    workspace: Path = typer.Option(Path("."), help="Where to read pkgbuilder.toml from."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Where the local cache is, how many artifacts and bytes it holds, its cap."""
    from pkgbuilder.cache.store import LocalStore

    ws = workspace.resolve()
    st = LocalStore.from_settings(settings_for(ws).cache, ws).status()
    doc = {
        "dir": st.dir,
        "artifacts": st.artifacts,
        "bytes": st.bytes,
        "maxBytes": st.max_bytes,
        "manifests": st.manifests,
        "lastUsed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.newest))
        if st.newest
        else None,
    }
    if as_json:
        print(json.dumps(doc, indent=2))
        return
    out.print(
        f"{st.dir}: {st.artifacts} artifacts, {st.bytes / 1e6:.1f} MB of "
        f"{st.max_bytes / 1e6:.0f} MB, {st.manifests} manifests",
        highlight=False,
    )


def prune_cmd(
    workspace: Path = typer.Option(Path("."), help="Where to read pkgbuilder.toml from."),
    max_size_mb: int | None = typer.Option(
        None, help="Evict down to this size (default: cache.maxSizeMb)."
    ),
    older_than_days: float | None = typer.Option(
        None, help="Also evict artifacts unused for this many days."
    ),
) -> None:
    """Evict least recently used artifacts until the cache fits its cap."""
    from pkgbuilder.cache.store import LocalStore

    ws = workspace.resolve()
    store = LocalStore.from_settings(settings_for(ws).cache, ws)
    removed, freed = store.prune(
        None if max_size_mb is None else max_size_mb * 1024 * 1024,
        None if older_than_days is None else older_than_days * 86400,
    )
    out.print(
        f"removed {removed} artifacts ({freed / 1e6:.1f} MB) from {store.root}", highlight=False
    )


def register(root: typer.Typer) -> None:
    root.command(name="hash")(hash_cmd)
    app.command("status")(status_cmd)
    app.command("prune")(prune_cmd)
    root.add_typer(app)
