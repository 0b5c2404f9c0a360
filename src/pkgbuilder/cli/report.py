"""``pkgbuilder report``: the HTML page of a suite (or a generation session), offline."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from pkgbuilder.cli.common import console, out, settings_for, user_errors
from pkgbuilder.errors import UserError
from pkgbuilder.models.build import BuildReport
from pkgbuilder.reporting.build_reports import reports_root


def _from_json(summary: Path) -> BuildReport:
    try:
        return BuildReport.model_validate_json(summary.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as e:
        raise UserError(f"The summary {summary} cannot be read ({e.__class__.__name__}).") from e


def suite_page_path(root: Path, build_id: str | None) -> Path:
    """The page of ``build_id`` (default: the newest suite), rendered now from its JSON
    summary when an older build wrote none."""
    from pkgbuilder.reporting.html import write_suite_pages

    days = sorted((d for d in root.iterdir() if d.is_dir()), reverse=True) if root.is_dir() else []
    for day in days:
        summary = (day / "suites" / f"{build_id}.json") if build_id else day / "suite-summary.json"
        if not summary.is_file():
            continue
        report = _from_json(summary)
        page = day / "suites" / f"{report.build_id}.html"
        if not page.is_file() or page.stat().st_mtime < summary.stat().st_mtime:
            page = write_suite_pages(day, report)
        return page
    what = f"build {build_id}" if build_id else "any build"
    raise UserError(
        f"No report of {what} under {root}; run 'pkgbuilder build' first (or pass --workspace)."
    )


def _generation_page_path(workspace: Path, session_id: str) -> Path:
    from pkgbuilder.reporting.html import write_generation_page
    from pkgbuilder.session.phases.config import turn_based_config
    from pkgbuilder.session.state import StateFileError, state_dir, state_path

    settings = settings_for(workspace)
    try:
        path = state_path(state_dir(workspace, turn_based_config(settings).state_dir), session_id)
        if not path.is_file():
            raise UserError(f"No generation session {session_id} in {path.parent}.")
        return write_generation_page(path)
    except StateFileError as e:
        raise UserError(str(e)) from e


def register(app: typer.Typer) -> None:
    @app.command()
    @user_errors
    def report(
        build_id: str | None = typer.Argument(
            None, help="Build id, or a generation session id gen-<ms> (default: the newest build)."
        ),
        open_: bool = typer.Option(False, "--open", help="Open the page in a browser."),
        workspace: Path = typer.Option(Path("."), help="Workspace (default: found from here)."),
    ) -> None:
        """Print the path of a build's HTML report page (timeline, dependency graph, coverage,
        fix attempts, logs); it works offline, straight from the file."""
        from pkgbuilder.cli.build import _check_build_id
        from pkgbuilder.config import find_workspace_root

        if build_id is not None:
            _check_build_id(build_id)
        root = find_workspace_root(workspace) or workspace.resolve()
        if build_id and build_id.startswith("gen-"):
            page = _generation_page_path(root, build_id)
        else:
            settings = settings_for(root)
            page = suite_page_path(reports_root(root, settings.reports_root), build_id)
        out.print(str(page), highlight=False, soft_wrap=True)
        import webbrowser  # loaded for --open only: ~2 ms at every start otherwise

        if open_ and not webbrowser.open(page.as_uri()):
            console.print(
                f"no browser to open here; open {page.as_uri()} yourself",
                highlight=False,
                soft_wrap=True,
            )
