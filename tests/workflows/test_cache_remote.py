"""The remote cache against the real ``turborepo-remote-cache`` server: signed uploads and
verified downloads, tampering, read-only use, a server that is down, and a second checkout
at another path that restores everything and executes nothing."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from pkgbuilder.cache import remote as remote_module
from pkgbuilder.cache.remote import (
    RemoteCache,
    RemoteUnavailable,
    SignatureMismatch,
    remote_config,
)
from pkgbuilder.config import RemoteCacheSettings
from pkgbuilder.models.build import PackageStatus
from pkgbuilder.models.cache import CacheSource
from tests.conftest import git
from tests.support.cache_builds import NAMES, build, executed, passing_workspace, statuses
from tests.support.remote_cache import RemoteCacheServer, free_port, running_remote_cache


@pytest.fixture(autouse=True)
def _no_open_breaker() -> None:
    """The breaker is per process and per URL: a port reused by a later test's server
    must not inherit an earlier test's outage."""
    remote_module._breaker.clear()


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    with running_remote_cache(tmp_path / "remote") as srv:
        yield srv


def client_for(
    srv: RemoteCacheServer, key: str | None = "k1", token: str | None = None, **settings: object
) -> RemoteCache:
    env = {"REMOTE_CACHE_TOKEN": token or srv.token}
    if key:
        env["PKGBUILDER_CACHE_SIGNATURE_KEY"] = key
    cfg = remote_config(RemoteCacheSettings(url=srv.url, **settings), env)  # type: ignore[arg-type]
    assert cfg is not None
    return RemoteCache(cfg, 10_000_000)


def test_signed_round_trip_tampering_and_auth(server: RemoteCacheServer) -> None:
    h = uuid.uuid4().hex
    rc = client_for(server)
    assert rc.get(h) is None and not rc.exists(h)
    rc.put(h, b"artifact bytes", 12)
    assert rc.exists(h) and rc.get(h) == b"artifact bytes"
    with pytest.raises(SignatureMismatch, match="wrong signature"):
        client_for(server, key="another key").get(h)
    server.artifact_path(h).write_bytes(b"tampered bytes")
    with pytest.raises(SignatureMismatch):
        rc.get(h)
    unsigned = uuid.uuid4().hex
    client_for(server, key=None).put(unsigned, b"no tag", 1)
    assert rc.get(unsigned) is None  # this server keeps no tag for it: a miss
    with pytest.raises(RemoteUnavailable, match="refused"):
        client_for(server, token="wrong").get(h)
    # the token never shows in what the client can print
    assert server.token not in repr(rc.cfg)


def test_down_server_is_one_fast_failure() -> None:
    cfg = remote_config(RemoteCacheSettings(url=f"http://127.0.0.1:{free_port()}"), {})
    assert cfg is not None
    rc = RemoteCache(cfg, 1000)
    with pytest.raises(RemoteUnavailable, match="unreachable"):
        rc.get(uuid.uuid4().hex)
    with pytest.raises(RemoteUnavailable, match="unreachable"):
        rc.get(uuid.uuid4().hex)  # the breaker is open: the same failure, no second wait
    assert "127.0.0.1" in next(iter(remote_module._breaker.values()))[1]


@pytest.mark.slow
async def test_remote_cache_serves_a_second_checkout_and_degrades_when_down(
    client: Client, server: RemoteCacheServer, tmp_path: Path
) -> None:
    ws = passing_workspace(tmp_path / "a" / "ws")
    log = tmp_path / "executions.log"
    secrets = {"REMOTE_CACHE_TOKEN": server.token, "PKGBUILDER_CACHE_SIGNATURE_KEY": "s3cret"}

    down = await build(
        client,
        ws,
        tmp_path / "cache-a",
        log,
        {"remote": {"url": f"http://127.0.0.1:{free_port()}"}},
        secrets,
    )
    assert set(statuses(down).values()) == {PackageStatus.SUCCESS}
    assert len(down.cache_warnings) == 1 and "unavailable" in down.cache_warnings[0]

    remote = {"remote": {"url": server.url}}
    readonly = await build(
        client,
        ws,
        tmp_path / "cache-ro",
        log,
        {**remote, "force": True, "remote": {"url": server.url, "write": False}},
        secrets,
    )
    assert not any(r.cache and r.cache.uploaded for r in readonly.package_reports)
    assert not list(server.storage.rglob("*")) or not any(
        p.is_file() for p in server.storage.rglob("*")
    )
    uploaded = await build(
        client, ws, tmp_path / "cache-a", log, {**remote, "force": True}, secrets
    )
    assert all(r.cache and r.cache.uploaded for r in uploaded.package_reports)

    other = tmp_path / "somewhere" / "else" / "checkout"
    other.parent.mkdir(parents=True)
    git(tmp_path, "clone", "-q", str(ws), str(other))
    log.unlink()
    second = await build(client, other, tmp_path / "cache-b", log, remote, secrets)
    assert statuses(second) == dict.fromkeys(NAMES, PackageStatus.CACHED)
    assert {r.cache.source for r in second.package_reports if r.cache} == {CacheSource.REMOTE}
    assert executed(log) == []
    assert (other / "packages/service/top/dist/index.js").is_file()

    # a tampered artifact on the server is a reported miss: that package alone rebuilds
    top = next(r for r in second.package_reports if r.package_name == "@fx/top")
    assert top.cache and top.cache.build_hash
    server.artifact_path(top.cache.build_hash).write_bytes(b"\x1f\x8b evil")
    third = await build(client, other, tmp_path / "cache-c", log, remote, secrets)
    assert {n for n, s in statuses(third).items() if s is PackageStatus.SUCCESS} == {"@fx/top"}
    assert any("rejected" in w and top.cache.build_hash in w for w in third.cache_warnings)
    assert executed(log) == [("@fx/top", "build"), ("@fx/top", "test")]
    for report in (down, uploaded, second, third):
        assert server.token not in report.model_dump_json()
