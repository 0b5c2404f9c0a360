"""Registry queries, the publish decision and the embedded Verdaccio (real npm, real registry)."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from pkgbuilder.errors import UserError
from pkgbuilder.models.publish import PublishDecision, PublishedVersion
from pkgbuilder.publishing import registry as reg
from pkgbuilder.publishing import verdaccio
from tests.support.registry import REGISTRY_CACHE, free_port, running_registry


def _tarball(
    files: dict[str, bytes],
    top: str = "package",
    level: int = 9,
    modes: dict[str, int] | None = None,
) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(content)
            info.mode = (modes or {}).get(name, 0o644)
            tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), compresslevel=level, mtime=0)


PKG = json.dumps({"name": "@demo/a", "version": "1.0.0"}).encode()


def _packed(tmp_path: Path, data: bytes, name: str = "a.tgz") -> reg.PackedTarball:
    path = tmp_path / name
    path.write_bytes(data)
    return reg.read_packed(path)


# -- pure parts --------------------------------------------------------------------------


def test_registry_urls_and_npmrc_scope_the_token_to_one_registry() -> None:
    assert reg.normalize_registry("http://127.0.0.1:4873") == "http://127.0.0.1:4873/"
    assert reg.auth_key("http://127.0.0.1:4873/npm") == "//127.0.0.1:4873/npm/"
    assert reg.packument_url("http://r/", "@demo/a") == "http://r/@demo%2Fa"
    assert reg.packument_url("http://r/", "plain") == "http://r/plain"
    rc = reg.npmrc_with_token("http://127.0.0.1:4873/", "tok")
    assert rc.startswith("//127.0.0.1:4873/:_authToken=tok\n")
    with pytest.raises(ValueError):
        reg.npmrc_with_token("http://r/", "tok\nregistry=http://evil/")
    with pytest.raises(ValueError):
        reg.normalize_registry("file:///etc")


def test_read_packed_describes_name_version_and_integrity(tmp_path: Path) -> None:
    data = _tarball({"package.json": PKG, "index.js": b"1"})
    packed = _packed(tmp_path, data)
    assert (packed.name, packed.version, packed.size) == ("@demo/a", "1.0.0", len(data))
    assert packed.integrity.startswith("sha512-")
    assert packed.integrity == reg.integrity_of(data)[0]
    (tmp_path / "junk.tgz").write_bytes(b"not a tarball")
    with pytest.raises(ValueError):
        reg.read_packed(tmp_path / "junk.tgz")
    with pytest.raises(ValueError):
        _packed(tmp_path, _tarball({"index.js": b"1"}), "nopkg.tgz")


def test_decide_absent_identical_and_conflict(tmp_path: Path) -> None:
    packed = _packed(tmp_path, _tarball({"package.json": PKG, "index.js": b"1"}))
    assert reg.decide(packed, None)[0] is PublishDecision.PUBLISH
    same = PublishedVersion(name="@demo/a", version="1.0.0", integrity=packed.integrity)
    assert reg.decide(packed, same)[0] is PublishDecision.IDENTICAL
    other = PublishedVersion(name="@demo/a", version="1.0.0", integrity="sha512-xyz")
    assert reg.decide(packed, other)[0] is PublishDecision.CONFLICT


def test_decide_compares_files_when_only_the_tarball_bytes_differ(tmp_path: Path) -> None:
    files = {"package.json": PKG, "index.js": b"module.exports = 1\n"}
    packed = _packed(tmp_path, _tarball(files))
    # Same files, other gzip level and top folder: other bytes, same package.
    repacked = _tarball(files, top="pkg", level=1)
    published = PublishedVersion(
        name="@demo/a", version="1.0.0", integrity=reg.integrity_of(repacked)[0]
    )
    decision, how = reg.decide(packed, published, lambda: repacked)
    assert decision is PublishDecision.IDENTICAL, how
    changed = _tarball({**files, "index.js": b"module.exports = 2\n"})
    decision, how = reg.decide(packed, published, lambda: changed)
    assert decision is PublishDecision.CONFLICT
    assert "index.js" in how
    # The executable bit is content too (a bin script that lost +x is a different package).
    exe = _tarball(files, modes={"index.js": 0o755})
    assert reg.decide(packed, published, lambda: exe)[0] is PublishDecision.CONFLICT


def test_bump_message_is_one_sentence() -> None:
    msg = reg.bump_message("@demo/a", "1.2.3")
    assert msg == "@demo/a@1.2.3 is already published with different content; bump the version."


def _npm_pack(pkg: Path, dest: Path) -> dict:
    dest.mkdir()
    out = subprocess.run(
        ["npm", "pack", "--json", "--ignore-scripts", "--pack-destination", str(dest)],
        cwd=pkg,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return json.loads(out)[0]


def test_npm_pack_integrity_is_deterministic_and_matches_ours(tmp_path: Path) -> None:
    """The fast path relies on this: npm normalises mtimes, so repacking unchanged files
    gives the same integrity; a content change gives another."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "package.json").write_text(json.dumps({"name": "@demo/det", "version": "1.0.0"}))
    (pkg / "index.js").write_text("module.exports = 1\n")
    first = _npm_pack(pkg, tmp_path / "o1")
    later = time.time() + 3600
    for f in pkg.iterdir():
        os.utime(f, (later, later))
    second = _npm_pack(pkg, tmp_path / "o2")
    assert first["integrity"] == second["integrity"]
    ours = reg.read_packed(tmp_path / "o1" / first["filename"])
    assert ours.integrity == first["integrity"] and ours.shasum == first["shasum"]
    (pkg / "index.js").write_text("module.exports = 2\n")
    assert _npm_pack(pkg, tmp_path / "o3")["integrity"] != first["integrity"]


def test_verdaccio_config_is_closed(tmp_path: Path) -> None:
    cfg = json.loads(verdaccio.render_config(verdaccio.RegistryPaths(tmp_path), 5999))
    assert cfg["uplinks"] == {}
    assert cfg["listen"] == "127.0.0.1:5999"
    assert all(rule["access"] == "$authenticated" for rule in cfg["packages"].values())
    assert all(rule["publish"] == "$authenticated" for rule in cfg["packages"].values())
    assert "proxy" not in json.dumps(cfg["packages"])
    assert cfg["storage"] == str(tmp_path / "registry" / "storage")


# -- the embedded registry -----------------------------------------------------------------


@pytest.mark.slow
def test_embedded_registry_lifecycle_user_and_token(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with running_registry(home) as (url, token):
        st = verdaccio.status(home)
        assert st.running and st.url == url and st.pid
        paths = verdaccio.RegistryPaths(home)
        assert stat.S_IMODE(paths.token_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(paths.credentials.stat().st_mode) == 0o600
        assert verdaccio.read_token(home) == token
        assert reg.whoami(url, token) == verdaccio.DEFAULT_USER
        assert reg.whoami(url, "not-a-token") is None
        # Closed registry: reading needs the token; absent packages are None, not errors.
        with pytest.raises(reg.RegistryAuthError):
            reg.fetch_version(url, "@demo/nothing", "1.0.0")
        assert reg.fetch_version(url, "@demo/nothing", "1.0.0", token) is None
        # A second run logs the existing user in and gets a working token.
        again = verdaccio.ensure_user(home, url)
        assert reg.whoami(url, again) == verdaccio.DEFAULT_USER
        # start() on the same port reuses the running registry.
        assert verdaccio.start(home, port=st.port or 0, cache_dir=REGISTRY_CACHE).pid == st.pid
        # Another home cannot take the port.
        with pytest.raises(UserError, match="already answers"):
            verdaccio.start(tmp_path / "other", port=st.port or 0, cache_dir=REGISTRY_CACHE)
        pid = st.pid
    assert not verdaccio.status(home).running
    assert (
        not Path(f"/proc/{pid}").exists()
        or b"verdaccio" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    )
    assert verdaccio.stop(home) is False


@pytest.mark.slow
def test_registry_cli_start_status_stop(tmp_path: Path) -> None:
    home = tmp_path / "clihome"
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "NPM_TOKEN"},
        "PKGBUILDER_HOME": str(home),
        verdaccio.CACHE_ENV: str(REGISTRY_CACHE),
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["pkgbuilder", "registry", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    try:
        started = cli("start", "--port", str(port))
        assert started.returncode == 0, started.stderr
        assert f"http://127.0.0.1:{port}/" in started.stdout
        token = verdaccio.read_token(home)
        assert token and token not in started.stdout + started.stderr
        status = cli("status")
        assert status.returncode == 0 and "running" in status.stdout
    finally:
        stopped = cli("stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    after = cli("status")
    assert after.returncode == 1 and "not running" in after.stdout
