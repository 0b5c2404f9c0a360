"""``pkgbuilder registry start|stop|status``: the embedded Verdaccio registry."""

from __future__ import annotations

import typer

from pkgbuilder.cli.common import console, out, user_errors
from pkgbuilder.config import pkgbuilder_home
from pkgbuilder.publishing import verdaccio

app = typer.Typer(
    name="registry",
    help="Manage the embedded npm registry (Verdaccio) used by '--registry local'.",
    no_args_is_help=True,
)


@app.command()
@user_errors
def start(
    port: int = typer.Option(verdaccio.DEFAULT_PORT, help="Loopback port to listen on."),
) -> None:
    """Install (first time) and start the registry in the background; create its user."""
    home = pkgbuilder_home()
    if not verdaccio.status(home).installed:
        console.print(f"installing verdaccio@{verdaccio.VERDACCIO_VERSION} (first use)…")
    st = verdaccio.start(home, port=port)
    verdaccio.ensure_user(home, st.url or "")
    token_file = verdaccio.RegistryPaths(home).token_file
    out.print(f"registry running at {st.url} (pid {st.pid})")
    console.print(
        f"token for user '{verdaccio.DEFAULT_USER}' stored in {token_file} (mode 0600); "
        f'publish with: NPM_TOKEN="$(cat {token_file})" pkgbuilder build --registry {st.url}'
    )


@app.command()
@user_errors
def stop() -> None:
    """Stop the registry started by 'pkgbuilder registry start' (storage is kept)."""
    if verdaccio.stop(pkgbuilder_home()):
        out.print("registry stopped")
    else:
        out.print("registry was not running")


@app.command()
@user_errors
def status() -> None:
    """Show whether the registry runs, its URL, pid and log file."""
    st = verdaccio.status(pkgbuilder_home())
    if st.running:
        out.print(f"running at {st.url} (pid {st.pid}); log {st.log_path}")
    else:
        installed = "installed" if st.installed else "not installed yet"
        out.print(f"not running ({installed}); start it with 'pkgbuilder registry start'")
        raise typer.Exit(1)
