"""Embedded npm registry (Verdaccio 5.33.0) for demos and tests.

Installed on first use under ``$PKGBUILDER_HOME/registry`` with ``npm install``; the package.json
pins ``node-fetch`` to 2.7.0 through ``overrides`` because the npm mirror reachable here serves
only ``latest`` tags (Verdaccio 6 would need Node 22). ``PKGBUILDER_REGISTRY_CACHE`` names a
shared install directory: when set, the install happens there once and every registry home
links its ``node_modules`` to it (the test suite uses this to install once per machine).

The registry is closed: no uplinks (nothing is proxied to the internet), every package needs
an authenticated user to read or publish. ``ensure_user`` creates the run's user through the
registry's CouchDB-style user API and keeps its token in a 0600 file; it is never printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from base64 import b64encode
from pathlib import Path

from pkgbuilder.errors import UserError
from pkgbuilder.models.common import Model
from pkgbuilder.util.filelock import file_lock

VERDACCIO_VERSION = "5.33.0"
DEFAULT_PORT = 4873
DEFAULT_USER = "pkgbuilder"
INSTALL_TIMEOUT = 900
CACHE_ENV = "PKGBUILDER_REGISTRY_CACHE"


class RegistryStatus(Model):
    running: bool
    url: str | None = None
    pid: int | None = None
    port: int | None = None
    home: str
    installed: bool = False
    log_path: str | None = None


class RegistryPaths:
    """Where the embedded registry keeps its files (all under ``<home>/registry``)."""

    def __init__(self, home: Path) -> None:
        self.root = home / "registry"
        self.storage = self.root / "storage"
        self.config = self.root / "config.yaml"
        self.htpasswd = self.root / "htpasswd"
        self.pid_file = self.root / "verdaccio.pid"
        self.state_file = self.root / "state.json"
        self.log_file = self.root / "verdaccio.log"
        self.stdout_file = self.root / "verdaccio.out"
        self.credentials = self.root / "credentials.json"  # user + password, 0600
        self.token_file = self.root / "token"  # the run's token, 0600
        self.lock = self.root / ".lock"


def _write_private(path: Path, text: str) -> None:
    """Create/replace ``path`` with mode 0600 from the first byte (no readable window)."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _installed_version(install_dir: Path) -> str | None:
    pkg = install_dir / "node_modules" / "verdaccio" / "package.json"
    try:
        return str(json.loads(pkg.read_text(encoding="utf-8")).get("version"))
    except (OSError, json.JSONDecodeError, AttributeError):
        return None


def _npm_install(install_dir: Path) -> None:
    install_dir.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": "pkgbuilder-embedded-registry",
        "version": "0.0.0",
        "private": True,
        "dependencies": {"verdaccio": VERDACCIO_VERSION},
        "overrides": {"node-fetch": "2.7.0"},
    }
    (install_dir / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "NPM_TOKEN"}
    try:
        proc = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "--ignore-scripts"],
            cwd=install_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise UserError("npm is not installed; the embedded registry needs Node.js.") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"Installing verdaccio@{VERDACCIO_VERSION} took too long; retry.") from None
    if proc.returncode != 0 or _installed_version(install_dir) != VERDACCIO_VERSION:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"Installing verdaccio@{VERDACCIO_VERSION} failed: {last[0]}")


def ensure_installed(paths: RegistryPaths, cache_dir: Path | None = None) -> Path:
    """Install Verdaccio once; returns the path of its start script.

    With ``cache_dir`` (or ``$PKGBUILDER_REGISTRY_CACHE``) the install lives there and
    ``<registry>/node_modules`` is a symlink to it.
    """
    cache = cache_dir or (Path(os.environ[CACHE_ENV]) if os.environ.get(CACHE_ENV) else None)
    paths.root.mkdir(parents=True, exist_ok=True)
    if cache is not None:
        cache = cache.resolve()
        with file_lock(cache / ".lock"):
            if _installed_version(cache) != VERDACCIO_VERSION:
                _npm_install(cache)
        link = paths.root / "node_modules"
        if link.is_symlink() and link.resolve() != (cache / "node_modules"):
            link.unlink()
        if not link.exists():
            link.symlink_to(cache / "node_modules", target_is_directory=True)
    else:
        with file_lock(paths.lock):
            if _installed_version(paths.root) != VERDACCIO_VERSION:
                _npm_install(paths.root)
    return paths.root / "node_modules" / "verdaccio" / "bin" / "verdaccio"


def render_config(paths: RegistryPaths, port: int) -> str:
    """The Verdaccio config: closed registry, htpasswd auth, no uplinks, file log."""
    # Verdaccio reads YAML; JSON is valid YAML and needs no quoting rules of our own.
    config = {
        "storage": str(paths.storage),
        "auth": {"htpasswd": {"file": str(paths.htpasswd), "max_users": 1000}},
        "uplinks": {},
        "packages": {
            "@*/*": {
                "access": "$authenticated",
                "publish": "$authenticated",
                "unpublish": "$authenticated",
            },
            "**": {
                "access": "$authenticated",
                "publish": "$authenticated",
                "unpublish": "$authenticated",
            },
        },
        "listen": f"127.0.0.1:{port}",
        "max_body_size": "100mb",
        "web": {"enable": False},
        "log": {"type": "file", "path": str(paths.log_file), "level": "warn"},
        "security": {"api": {"legacy": True}},
    }
    return json.dumps(config, indent=2) + "\n"


def ping(url: str, timeout: float = 2.0) -> bool:
    """True when a Verdaccio answers ``/-/ping`` at ``url``."""
    import urllib.request  # loaded on the first request: ~5 ms at every start otherwise

    try:
        with urllib.request.urlopen(url.rstrip("/") + "/-/ping", timeout=timeout) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
            return False
    return True


def _is_ours(pid: int) -> bool:
    """The pid is still a Verdaccio process (it renames itself to ``verdaccio``)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return _pid_alive(pid)  # no /proc: trust the pid file
    return b"verdaccio" in cmdline


def _read_state(paths: RegistryPaths) -> dict[str, int | str] | None:
    try:
        state = json.loads(paths.state_file.read_text(encoding="utf-8"))
        pid = int(paths.pid_file.read_text().strip())
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    return {**state, "pid": pid} if isinstance(state, dict) else None


def status(home: Path) -> RegistryStatus:
    """Is the embedded registry of ``home`` running, and where."""
    paths = RegistryPaths(home)
    state = _read_state(paths)
    installed = _installed_version(paths.root) == VERDACCIO_VERSION
    base = {"home": str(home), "installed": installed, "log_path": str(paths.log_file)}
    if state is None:
        return RegistryStatus(running=False, **base)
    pid, port, url = int(state["pid"]), int(state["port"]), str(state["url"])
    running = _pid_alive(pid) and _is_ours(pid) and ping(url)
    return RegistryStatus(running=running, url=url, pid=pid, port=port, **base)


def start(
    home: Path, port: int = DEFAULT_PORT, wait_seconds: float = 60.0, cache_dir: Path | None = None
) -> RegistryStatus:
    """Start the registry detached (pid file, log file) and wait until it answers.

    Reuses a registry of the same home that is already running on ``port``.

    Raises:
        UserError: the port is taken by something else, or Verdaccio did not come up.
    """
    paths = RegistryPaths(home)
    url = f"http://127.0.0.1:{port}/"
    current = status(home)
    if current.running and current.port == port:
        return current
    if current.running:
        raise UserError(
            f"The embedded registry already runs on port {current.port}; stop it first "
            "('pkgbuilder registry stop') to move it."
        )
    if ping(url, timeout=1.0):
        raise UserError(f"Port {port} already answers as a registry that pkgbuilder did not start.")
    script = ensure_installed(paths, cache_dir)
    paths.storage.mkdir(parents=True, exist_ok=True)
    paths.config.write_text(render_config(paths, port), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "NPM_TOKEN"}
    with paths.stdout_file.open("ab") as out:
        proc = subprocess.Popen(
            ["node", str(script), "--config", str(paths.config), "--listen", f"127.0.0.1:{port}"],
            cwd=paths.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # detached: survives the CLI that started it
        )
    paths.pid_file.write_text(f"{proc.pid}\n")
    paths.state_file.write_text(json.dumps({"port": port, "url": url}) + "\n")
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if ping(url, timeout=1.0):
            return RegistryStatus(
                running=True,
                url=url,
                pid=proc.pid,
                port=port,
                home=str(home),
                installed=True,
                log_path=str(paths.log_file),
            )
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    _terminate(proc.pid)
    paths.pid_file.unlink(missing_ok=True)
    tail = _tail(paths.stdout_file) or _tail(paths.log_file) or "no output"
    raise UserError(f"The embedded registry did not start on port {port}: {tail}")


def _tail(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def _terminate(pid: int, grace: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap when we are its parent (tests)
        if not _pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def stop(home: Path) -> bool:
    """Stop the registry of ``home`` (SIGTERM, then SIGKILL); False when none was running."""
    paths = RegistryPaths(home)
    state = _read_state(paths)
    if state is None:
        return False
    pid = int(state["pid"])
    was_running = _pid_alive(pid) and _is_ours(pid)
    if was_running:
        _terminate(pid)
    paths.pid_file.unlink(missing_ok=True)
    return was_running


def _user_request(url: str, user: str, password: str, basic: bool) -> tuple[int, dict]:
    import urllib.request  # loaded on the first request: ~5 ms at every start otherwise

    body = json.dumps({"name": user, "password": password, "type": "user", "roles": []})
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if basic:
        headers["Authorization"] = "Basic " + b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(
        url.rstrip("/") + f"/-/user/org.couchdb.user:{user}",
        data=body.encode(),
        method="PUT",
        headers=headers,
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        with contextlib.suppress(ValueError):
            return e.code, json.loads(e.read() or b"{}")
        return e.code, {}


def ensure_user(home: Path, url: str, user: str = DEFAULT_USER) -> str:
    """Create the registry user (first time) or log in, store a fresh token 0600, return it.

    The password is random and kept in ``credentials.json`` (0600) so later runs can log in
    again; the token is only ever written to ``<home>/registry/token``.

    Raises:
        UserError: the registry refused both creating and logging in the user.
    """
    paths = RegistryPaths(home)
    creds: dict[str, str] = {}
    with contextlib.suppress(OSError, json.JSONDecodeError):
        creds = json.loads(paths.credentials.read_text(encoding="utf-8"))
    if creds.get("user") != user or not creds.get("password"):
        creds = {"user": user, "password": secrets.token_urlsafe(24)}
        _write_private(paths.credentials, json.dumps(creds))
    code, answer = _user_request(url, user, creds["password"], basic=False)
    if code == 409:  # already registered: log in instead
        code, answer = _user_request(url, user, creds["password"], basic=True)
    token = answer.get("token") if isinstance(answer, dict) else None
    if code not in (200, 201) or not isinstance(token, str) or not token:
        raise UserError(
            f"The embedded registry at {url} refused user '{user}' (HTTP {code}); "
            f"delete {paths.root} to start over."
        )
    _write_private(paths.token_file, token + "\n")
    return token


def read_token(home: Path) -> str | None:
    """The token stored by ``ensure_user``, if any."""
    try:
        token = RegistryPaths(home).token_file.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return token or None
