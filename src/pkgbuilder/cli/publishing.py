"""``--registry`` and ``--dry-run`` of ``pkgbuilder build``: settings and the local registry."""

from __future__ import annotations

import os
from typing import Any

from rich.table import Table

from pkgbuilder.cli.common import console
from pkgbuilder.config import BuildSettings, pkgbuilder_home
from pkgbuilder.errors import UserError
from pkgbuilder.models.build import BuildReport, PublishOutcome
from pkgbuilder.publishing import verdaccio

LOCAL = "local"
PORT_ENV = "PKGBUILDER_REGISTRY_PORT"


def publish_overrides(registry: str | None, dry_run: bool) -> dict[str, Any]:
    """Config overrides for the flags: either flag turns publishing on for this build."""
    over: dict[str, Any] = {}
    publishing: dict[str, Any] = {}
    if registry:
        publishing["enabled"] = True
        if registry != LOCAL:
            over["registry"] = registry
    if dry_run:
        publishing["enabled"] = True
        publishing["dryRun"] = True
    if publishing:
        over["publishing"] = publishing
    return over


def prepare_publishing(settings: BuildSettings, registry: str | None) -> BuildSettings:
    """Resolve ``--registry local`` and check that an enabled publish has a registry.

    For ``local`` the embedded Verdaccio is started (or reused) and the run's token is put
    into this process's environment as NPM_TOKEN: the in-process worker's publish activity
    reads it from there. It never enters a workflow input.

    Raises:
        UserError: publishing is on but no registry is configured, or the registry failed.
    """
    if registry == LOCAL:
        home = pkgbuilder_home()
        port = int(os.environ.get(PORT_ENV) or verdaccio.DEFAULT_PORT)
        if not verdaccio.status(home).installed:
            console.print(f"installing verdaccio@{verdaccio.VERDACCIO_VERSION} (first use)…")
        st = verdaccio.start(home, port=port)
        assert st.url is not None
        os.environ["NPM_TOKEN"] = verdaccio.ensure_user(home, st.url)
        console.print(f"[cyan]local registry {st.url} (stop it with 'pkgbuilder registry stop')[/]")
        return settings.model_copy(update={"registry": st.url})
    if settings.publishing.enabled and not settings.registry:
        raise UserError(
            "Publishing is enabled but no registry is configured; pass --registry URL (or "
            "'local'), set NPM_REGISTRY, or set registry in pkgbuilder.toml."
        )
    return settings


def publish_table(report: BuildReport) -> Table | None:
    """What each package's publish step did (None when this build did not publish)."""
    rows = [r for r in report.package_reports if r.publish is not PublishOutcome.NOT_ATTEMPTED]
    if not rows:
        return None
    table = Table(title="publish", title_justify="left")
    table.add_column("package")
    table.add_column("version")
    table.add_column("outcome")
    table.add_column("detail", overflow="fold", max_width=80)
    for r in rows:
        table.add_row(r.package_name, r.version, r.publish.value, r.publish_detail or "")
    return table
