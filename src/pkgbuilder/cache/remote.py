"""A client of the Turborepo Remote Cache HTTP API (``HEAD/GET/PUT /v8/artifacts/:hash``,
Bearer token, ``teamId``/``slug`` query), so any compatible server works (Vercel, the
``turborepo-remote-cache`` package, ...).

Artifacts are signed when a key is in the environment (``PKGBUILDER_CACHE_SIGNATURE_KEY``
or turbo's ``TURBO_REMOTE_CACHE_SIGNATURE_KEY``): the ``x-artifact-tag`` header carries
base64(HMAC-SHA256(key, hash + team + body)); a missing or wrong tag is a miss. (The header
is turbo's; the tag is pkgbuilder's own, not interchangeable with turbo's.) The token and
the key are read from the environment of the process that talks to the server and are never
returned, logged or stored.

A server that is down or slow degrades to misses: the first failure opens a breaker for
``BREAKER_SECONDS`` so a build waits for it once, not once per package.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
import time
import urllib.error
import urllib.parse
from dataclasses import dataclass, field

from pkgbuilder.config import RemoteCacheSettings

TOKEN_VARS = ("REMOTE_CACHE_TOKEN", "TURBO_TOKEN")
KEY_VARS = ("PKGBUILDER_CACHE_SIGNATURE_KEY", "TURBO_REMOTE_CACHE_SIGNATURE_KEY")
DEFAULT_SLUG = "pkgbuilder"
BREAKER_SECONDS = 60.0
_breaker: dict[str, tuple[float, str]] = {}  # url → (closed again at, the failure)
_breaker_lock = threading.Lock()


class RemoteUnavailable(Exception):
    """The server did not answer (in time) or answered an error."""


class SignatureMismatch(Exception):
    """The artifact's tag is missing or does not match its bytes."""


@dataclass(frozen=True)
class RemoteConfig:
    url: str
    team_id: str | None
    slug: str | None
    read: bool
    write: bool
    timeout: float
    token: str | None = field(default=None, repr=False)
    key: bytes | None = field(default=None, repr=False)


def remote_config(
    settings: RemoteCacheSettings, env: dict[str, str] | None = None
) -> RemoteConfig | None:
    """The remote cache this process may use (None when none is configured)."""
    env = dict(os.environ) if env is None else env
    url = settings.url or env.get("REMOTE_CACHE_URL") or env.get("TURBO_API")
    if not url:
        return None
    token = next((env[v] for v in TOKEN_VARS if env.get(v)), None)
    key = next((env[v] for v in KEY_VARS if env.get(v)), None)
    slug = settings.slug or env.get("REMOTE_CACHE_TEAM") or env.get("TURBO_TEAM")
    team_id = settings.team_id or env.get("TURBO_TEAMID")
    return RemoteConfig(
        url=url.rstrip("/"),
        team_id=team_id,
        slug=slug or (None if team_id else DEFAULT_SLUG),
        read=settings.read,
        write=settings.write,
        timeout=settings.timeout_seconds,
        token=token,
        key=key.encode() if key else None,
    )


def sign(key: bytes, task_hash: str, team: str, body: bytes) -> str:
    mac = hmac.new(key, (task_hash + team).encode(), hashlib.sha256)
    mac.update(body)
    return base64.b64encode(mac.digest()).decode()


class RemoteCache:
    def __init__(self, cfg: RemoteConfig, max_bytes: int) -> None:
        self.cfg = cfg
        self.max_bytes = max_bytes

    @property
    def team(self) -> str:
        return self.cfg.team_id or self.cfg.slug or ""

    def _url(self, task_hash: str) -> str:
        query = {"teamId": self.cfg.team_id} if self.cfg.team_id else {"slug": self.cfg.slug}
        return (
            f"{self.cfg.url}/v8/artifacts/{urllib.parse.quote(task_hash)}?"
            + urllib.parse.urlencode({k: v for k, v in query.items() if v})
        )

    def _headers(self) -> dict[str, str]:
        h = {"User-Agent": "pkgbuilder"}
        if self.cfg.token:
            h["Authorization"] = f"Bearer {self.cfg.token}"
        return h

    def _check_breaker(self) -> None:
        """While open, fail at once with the failure that opened it (so a build reports
        one warning, not one per package)."""
        with _breaker_lock:
            until, reason = _breaker.get(self.cfg.url, (0.0, ""))
        if until > time.monotonic():
            raise RemoteUnavailable(reason)

    def _trip(self, reason: str) -> RemoteUnavailable:
        with _breaker_lock:
            _breaker[self.cfg.url] = (time.monotonic() + BREAKER_SECONDS, reason)
        return RemoteUnavailable(reason)

    def _request(
        self,
        method: str,
        task_hash: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, dict[str, str]]:
        import http.client  # loaded on the first request: ~5 ms at every start otherwise
        import urllib.request

        self._check_breaker()
        req = urllib.request.Request(
            self._url(task_hash),
            data=body,
            method=method,
            headers={**self._headers(), **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.cfg.timeout) as resp:
                data = resp.read(self.max_bytes + 1) if method == "GET" else b""
                return resp.status, data, {k.lower(): v for k, v in resp.headers.items()}
        except urllib.error.HTTPError as e:
            if e.code in (404,):
                return e.code, b"", {}
            if e.code in (401, 403):
                raise RemoteUnavailable(
                    f"the remote cache at {self.cfg.url} refused the "
                    f"request (HTTP {e.code}): check REMOTE_CACHE_TOKEN "
                    "and the team"
                ) from None
            raise self._trip(f"the remote cache at {self.cfg.url} answered HTTP {e.code}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            raise self._trip(
                f"the remote cache at {self.cfg.url} is unreachable ({reason})"
            ) from None

    def exists(self, task_hash: str) -> bool:
        status, _, _ = self._request("HEAD", task_hash)
        return status == 200

    def get(self, task_hash: str) -> bytes | None:
        """The artifact bytes (signature verified when a key is set), None on a miss."""
        status, data, headers = self._request("GET", task_hash)
        if status != 200:
            return None
        if len(data) > self.max_bytes:
            raise SignatureMismatch(f"artifact {task_hash} is over the size cap")
        if self.cfg.key is not None:
            tag = headers.get("x-artifact-tag", "")
            expected = sign(self.cfg.key, task_hash, self.team, data)
            if not tag or not hmac.compare_digest(tag, expected):
                raise SignatureMismatch(
                    f"artifact {task_hash} has "
                    + ("no signature" if not tag else "a wrong signature")
                )
        return data

    def put(self, task_hash: str, data: bytes, duration_ms: int) -> None:
        headers = {
            "Content-Type": "application/octet-stream",
            "x-artifact-duration": str(max(duration_ms, 0)),
        }
        if self.cfg.key is not None:
            headers["x-artifact-tag"] = sign(self.cfg.key, task_hash, self.team, data)
        status, _, _ = self._request("PUT", task_hash, body=data, headers=headers)
        if status >= 300:
            raise RemoteUnavailable(
                f"the remote cache at {self.cfg.url} refused the upload (HTTP {status})"
            )
