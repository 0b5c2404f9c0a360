"""Registry queries and the publish decision (no Temporal, no subprocesses).

The decision rule of issue 3: ask the registry for ``name@version``; absent → publish; present
with the same content → already published (skipped); present with other content → the version
must be bumped.

"Same content" is decided in two steps. ``npm pack`` is deterministic (fixed mtimes, sorted
entries), so the sha512 integrity of a fresh tarball equals the registry's ``dist.integrity``
when nothing changed; that is the fast path. Tarball *bytes* can still differ for identical
files (another npm version's gzip or tar headers, another packer), so when the integrities
differ the published tarball is downloaded and its files are compared with the local ones
(path, sha256 of the bytes, executable bit). Only a real difference in files is a conflict.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
import urllib.error
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path

from pkgbuilder.models.publish import PackedTarball, PublishDecision, PublishedVersion
from pkgbuilder.util.urls import strip_userinfo

# Bounds on what we read from a registry: a hostile or broken registry cannot exhaust memory.
MAX_PACKUMENT_BYTES = 64 * 1024 * 1024
MAX_TARBALL_BYTES = 256 * 1024 * 1024
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024

FileManifest = dict[str, tuple[str, bool]]  # path inside the package → (sha256, executable)


class RegistryError(Exception):
    """The registry could not be asked (network, 5xx, garbage): worth retrying."""


class RegistryAuthError(RegistryError):
    """The registry answered 401/403: a token is missing or not accepted (not retryable)."""


def normalize_registry(url: str) -> str:
    """``http://h:1/x`` → ``http://h:1/x/`` (npm's form: always a trailing slash)."""
    url = url.strip()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"registry URL must start with http:// or https://, got {url!r}")
    return url if url.endswith("/") else url + "/"


# A credential string is a bearer token (NPM_TOKEN) or, with this prefix, the base64 of
# ``user:password`` for HTTP basic auth (from the userinfo of NPM_REGISTRY in the worker's
# environment: credentials never travel inside the URL itself).
BASIC_PREFIX = "basic:"
REGISTRY_URL_ENV = "NPM_REGISTRY"


def credential_from_env(registry: str, env: Mapping[str, str]) -> str | None:
    """The basic-auth credential the environment's ``NPM_REGISTRY=http://user:pw@host/``
    holds for ``registry`` (same scheme, host and port), else None."""
    url = env.get(REGISTRY_URL_ENV) or ""
    parts = urllib.parse.urlsplit(url.strip())
    if not parts.username or not _same_origin(strip_userinfo(url.strip()), registry):
        return None
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    return BASIC_PREFIX + base64.b64encode(f"{user}:{password}".encode()).decode()


def _authorization(credential: str) -> str:
    if credential.startswith(BASIC_PREFIX):
        return "Basic " + credential.removeprefix(BASIC_PREFIX)
    return f"Bearer {credential}"


def auth_key(registry: str) -> str:
    """The npmrc key prefix that scopes a token to one registry: ``//host:port/path/``."""
    parts = urllib.parse.urlsplit(normalize_registry(registry))
    return f"//{parts.netloc}{parts.path}"


def npmrc_with_token(registry: str, token: str) -> str:
    """Content of a one-command npm userconfig holding the token for ``registry`` only."""
    if any(c in token for c in "\r\n"):
        raise ValueError("NPM_TOKEN must be a single line")
    if token.startswith(BASIC_PREFIX):
        return f"{auth_key(registry)}:_auth={token.removeprefix(BASIC_PREFIX)}\nalways-auth=false\n"
    return f"{auth_key(registry)}:_authToken={token}\nalways-auth=false\n"


def packument_url(registry: str, name: str) -> str:
    """URL of a package document; scoped names keep ``@`` and escape the slash."""
    return normalize_registry(registry) + urllib.parse.quote(name, safe="@")


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)
    return (pa.scheme, pa.netloc) == (pb.scheme, pb.netloc)


def _get(url: str, token: str | None, timeout: float, limit: int, accept: str) -> bytes | None:
    """GET ``url``; None on 404. Raises RegistryAuthError on 401/403, RegistryError otherwise."""
    import urllib.request  # loaded on the first request: ~5 ms at every start otherwise

    headers = {"Accept": accept, "User-Agent": "pkgbuilder"}
    if token:
        headers["Authorization"] = _authorization(token)
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data: bytes = resp.read(limit + 1)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        if e.code in (401, 403):
            raise RegistryAuthError(f"HTTP {e.code}") from None
        raise RegistryError(f"HTTP {e.code} from {url}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise RegistryError(f"cannot reach {url}: {reason}") from None
    if len(data) > limit:
        raise RegistryError(f"answer from {url} is larger than {limit} bytes")
    return data


def fetch_version(
    registry: str, name: str, version: str, token: str | None = None, timeout: float = 30.0
) -> PublishedVersion | None:
    """What the registry holds for ``name@version``, or None when that version is absent.

    Raises:
        RegistryAuthError: the registry wants a (different) token to read the package.
        RegistryError: the registry is unreachable or answered something unusable.
    """
    url = packument_url(registry, name)
    body = _get(url, token, timeout, MAX_PACKUMENT_BYTES, "application/json")
    if body is None:
        return None
    try:
        doc = json.loads(body)
    except json.JSONDecodeError:
        raise RegistryError(f"{url} did not answer JSON") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{url} did not answer a package document")
    versions = doc.get("versions") or {}
    meta = versions.get(version) if isinstance(versions, dict) else None
    if not isinstance(meta, dict):
        return None
    dist = meta.get("dist")
    dist = dist if isinstance(dist, dict) else {}
    times = doc.get("time")
    times = times if isinstance(times, dict) else {}
    return PublishedVersion(
        name=name,
        version=version,
        integrity=dist.get("integrity"),
        shasum=dist.get("shasum"),
        tarball=dist.get("tarball"),
        published_at=times.get(version),
    )


def whoami(registry: str, token: str, timeout: float = 15.0) -> str | None:
    """The user name the registry associates with ``token``, or None when it is not accepted."""
    try:
        body = _get(normalize_registry(registry) + "-/whoami", token, timeout, 65536, "*/*")
    except RegistryAuthError:
        return None
    if body is None:
        return None
    try:
        user = json.loads(body).get("username")
    except (json.JSONDecodeError, AttributeError):
        return None
    return user if isinstance(user, str) and user else None


def integrity_of(data: bytes) -> tuple[str, str]:
    """(sha512 SRI string, sha1 hex) of a tarball, as npm and registries compute them."""
    sri = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")
    return sri, hashlib.sha1(data).hexdigest()


def read_packed(path: Path) -> PackedTarball:
    """Describe a packed tarball: name/version from its package.json, size, checksums.

    Raises:
        ValueError: the file is not a readable npm tarball with a package.json.
    """
    data = path.read_bytes()
    manifest_bytes = _package_json_bytes(data)
    try:
        manifest = json.loads(manifest_bytes)
        name, version = str(manifest["name"]), str(manifest["version"])
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ValueError(f"{path.name} has no valid package.json with name and version") from None
    sri, sha1 = integrity_of(data)
    return PackedTarball(
        name=name,
        version=version,
        filename=path.name,
        path=str(path),
        size=len(data),
        integrity=sri,
        shasum=sha1,
    )


def _members(data: bytes) -> tarfile.TarFile:
    try:
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        return tarfile.open(fileobj=io.BytesIO(raw), mode="r:")
    except (OSError, EOFError, tarfile.TarError) as e:
        raise ValueError(f"not a tarball: {e}") from None


def _inner_path(member_name: str) -> str:
    # npm tarballs hold everything under one top folder ("package/" for npm, other names for
    # some packers); files are compared without it.
    parts = member_name.lstrip("./").split("/", 1)
    return parts[1] if len(parts) == 2 else parts[0]


def _package_json_bytes(data: bytes) -> bytes:
    with _members(data) as tar:
        for m in tar:
            if m.isfile() and _inner_path(m.name) == "package.json":
                f = tar.extractfile(m)
                if f is not None:
                    return f.read(MAX_PACKUMENT_BYTES)
    raise ValueError("tarball has no package.json")


def file_manifest(data: bytes) -> FileManifest:
    """Files of a tarball as path → (sha256, executable); read in memory, never extracted.

    Raises:
        ValueError: not a tarball, or more than MAX_UNPACKED_BYTES of content.
    """
    out: FileManifest = {}
    total = 0
    with _members(data) as tar:
        for m in tar:
            if not m.isfile():
                continue
            total += m.size
            if total > MAX_UNPACKED_BYTES:
                raise ValueError("tarball unpacks to more than the size limit")
            f = tar.extractfile(m)
            content = f.read() if f is not None else b""
            out[_inner_path(m.name)] = (hashlib.sha256(content).hexdigest(), bool(m.mode & 0o111))
    return out


def download_tarball(
    published: PublishedVersion, registry: str, token: str | None, timeout: float = 60.0
) -> bytes:
    """Fetch the published tarball and check it against the registry's integrity.

    The token is sent only when the tarball lives on the registry's own origin: a packument
    pointing elsewhere must not collect our credential.

    Raises:
        RegistryError / RegistryAuthError: download failed, or the bytes do not match.
    """
    if not published.tarball:
        raise RegistryError(f"the registry lists no tarball for {published.name}")
    url = published.tarball
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise RegistryError(f"tarball URL of {published.name} is not http(s)")
    send = token if _same_origin(url, registry) else None
    data = _get(url, send, timeout, MAX_TARBALL_BYTES, "application/octet-stream")
    if data is None:
        raise RegistryError(f"tarball of {published.name}@{published.version} is missing")
    sri = published.integrity or ""
    if sri.startswith("sha512-") and integrity_of(data)[0] != sri:
        raise RegistryError(f"tarball of {published.name} does not match its integrity")
    return data


def decide(
    packed: PackedTarball,
    published: PublishedVersion | None,
    fetch_published_tarball: Callable[[], bytes] | None = None,
) -> tuple[PublishDecision, str]:
    """Compare a fresh tarball with the registry's version; returns (decision, how).

    ``fetch_published_tarball`` is called only when the integrities differ (see module doc).
    """
    if published is None:
        return PublishDecision.PUBLISH, "version absent from the registry"
    if published.integrity and published.integrity == packed.integrity:
        return PublishDecision.IDENTICAL, "same tarball integrity"
    if not published.integrity and published.shasum and published.shasum == packed.shasum:
        return PublishDecision.IDENTICAL, "same tarball shasum"
    if fetch_published_tarball is not None:
        remote = file_manifest(fetch_published_tarball())
        local = file_manifest(Path(packed.path).read_bytes())
        if remote == local:
            return PublishDecision.IDENTICAL, "same files (tarball bytes differ)"
        changed = sorted(p for p in remote.keys() | local.keys() if remote.get(p) != local.get(p))
        return PublishDecision.CONFLICT, "files differ: " + ", ".join(changed[:5])
    return PublishDecision.CONFLICT, "tarball integrity differs"


def bump_message(name: str, version: str) -> str:
    """The one sentence a changed package with an unchanged version fails with."""
    return f"{name}@{version} is already published with different content; bump the version."
