"""Cache artifacts: a gzipped tar of ``meta.json``, ``logs/<step>.log`` and
``out/<path in the package>``.

An artifact is hostile input (another machine, a shared server, a tampered disk):
``extract`` checks every member *before* writing anything and refuses absolute paths,
``..``, links that leave the package, device files, FIFOs, anything outside the three
areas, and archives or contents over the size caps. Only then are files written.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import stat
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pkgbuilder.cache.globs import select

META = "meta.json"
MAX_MEMBERS = 100_000
MAX_META_BYTES = 4 * 1024 * 1024
_SKIP_DIRS = {"node_modules", ".git"}


class ArchiveRejected(Exception):
    """The artifact is corrupt or hostile; nothing was written."""


@dataclass(frozen=True)
class Limits:
    max_archive_bytes: int = 512 * 1024 * 1024
    max_unpacked_bytes: int = 2 * 512 * 1024 * 1024


def output_files(pkg_dir: Path, outputs: list[str]) -> list[str]:
    """Files (and links) under ``pkg_dir`` that the output globs select, sorted."""
    found: list[str] = []
    for current, dirs, names in os.walk(pkg_dir):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        base = Path(current)
        for name in names + [d for d in dirs if (base / d).is_symlink()]:
            rel = (base / name).relative_to(pkg_dir).as_posix()
            if select(outputs, rel):
                found.append(rel)
    return sorted(set(found))


def pack(pkg_dir: Path, outputs: list[str], logs: dict[str, Path], meta: dict[str, Any]) -> bytes:
    """The artifact bytes. Links pointing outside the package are not packed."""
    buf = io.BytesIO()
    files = output_files(pkg_dir, outputs)
    meta = {**meta, "files": files}
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=3) as tf:
        data = json.dumps(meta, sort_keys=True).encode()
        info = tarfile.TarInfo(META)
        info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
        tf.addfile(info, io.BytesIO(data))
        for name, path in sorted(logs.items()):
            if path.is_file():
                tf.add(path, arcname=f"logs/{name}", recursive=False)
        real_root = os.path.realpath(pkg_dir)
        for rel in files:
            full = pkg_dir / rel
            if full.is_symlink():
                target = os.path.realpath(full)
                if not (target == real_root or target.startswith(real_root + os.sep)):
                    continue
            info = tf.gettarinfo(str(full), arcname=f"out/{rel}")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isreg():
                with full.open("rb") as fh:
                    tf.addfile(info, fh)
            elif info.issym():
                tf.addfile(info)
    return buf.getvalue()


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _check_member(m: tarfile.TarInfo, names: dict[str, tarfile.TarInfo]) -> str:
    """The member's area ('meta', 'log', 'out') or ArchiveRejected."""
    name = m.name
    if not name or name.startswith("/") or "\\" in name or "\0" in name:
        raise ArchiveRejected(f"member {name!r} has an absolute or malformed path")
    parts = name.split("/")
    if ".." in parts:
        raise ArchiveRejected(f"member {name!r} climbs out with '..'")
    if m.ischr() or m.isblk() or m.isfifo() or m.isdev():
        raise ArchiveRejected(f"member {name!r} is a device or FIFO")
    if not (m.isreg() or m.isdir() or m.issym() or m.islnk()):
        raise ArchiveRejected(f"member {name!r} has an unsupported type")
    if name == META:
        if not m.isreg() or m.size > MAX_META_BYTES:
            raise ArchiveRejected("meta.json is not a small regular file")
        return "meta"
    if parts[0] == "logs" and len(parts) == 2 and parts[1] and m.isreg():
        return "log"
    if parts[0] == "out" and len(parts) >= 2:
        rel = "/".join(parts[1:]).rstrip("/")
        if m.issym():
            link = m.linkname
            if link.startswith("/") or not link:
                raise ArchiveRejected(f"symlink {name!r} points to an absolute path")
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), link))
            if resolved == ".." or resolved.startswith("../"):
                raise ArchiveRejected(f"symlink {name!r} points outside the package")
        if m.islnk():
            target = names.get(m.linkname)
            if target is None or not m.linkname.startswith("out/") or not target.isreg():
                raise ArchiveRejected(f"hard link {name!r} points outside the package")
        return "out"
    raise ArchiveRejected(f"member {name!r} is outside meta.json, logs/ and out/")


def read_members(
    data: bytes, limits: Limits
) -> tuple[tarfile.TarFile, list[tarfile.TarInfo], dict[str, Any]]:
    if len(data) > limits.max_archive_bytes:
        raise ArchiveRejected(
            f"artifact is {len(data)} bytes, over the {limits.max_archive_bytes}-byte cap"
        )
    try:
        tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")  # noqa: SIM115 - read later
        members = tf.getmembers()
    except (tarfile.TarError, OSError, EOFError, ValueError) as e:
        raise ArchiveRejected(f"artifact is not a readable archive ({e})") from e
    if len(members) > MAX_MEMBERS:
        raise ArchiveRejected(f"artifact has {len(members)} members, over {MAX_MEMBERS}")
    names = {m.name: m for m in members}
    total = 0
    meta: dict[str, Any] | None = None
    for m in members:
        area = _check_member(m, names)
        total += max(m.size, 0)
        if total > limits.max_unpacked_bytes:
            raise ArchiveRejected("artifact unpacks to more than the size cap")
        if area == "meta":
            fh = tf.extractfile(m)
            try:
                meta = json.loads(fh.read() if fh else b"")
            except ValueError as e:
                raise ArchiveRejected("meta.json is not JSON") from e
    if not isinstance(meta, dict):
        raise ArchiveRejected("artifact has no meta.json")
    return tf, members, meta


def inspect(data: bytes, limits: Limits | None = None) -> dict[str, Any]:
    """Validate an artifact without writing anything; returns its meta."""
    return read_members(data, limits or Limits())[2]


def extract(
    data: bytes, pkg_dir: Path, log_dir: Path | None, limits: Limits | None = None
) -> dict[str, Any]:
    """Validate every member, then restore outputs into ``pkg_dir`` and logs into
    ``log_dir``. Returns the artifact's meta. Raises ArchiveRejected (nothing written)."""
    tf, members, meta = read_members(data, limits or Limits())
    real_root = os.path.realpath(pkg_dir)
    plan: list[tuple[tarfile.TarInfo, Path]] = []
    for m in members:
        if m.name == META:
            continue
        if m.name.startswith("logs/"):
            if log_dir is not None:
                plan.append((m, log_dir / m.name.split("/", 1)[1]))
            continue
        dest = pkg_dir / m.name.split("/", 1)[1]
        # An existing link in the package (dist -> /elsewhere) must not redirect a write.
        probe = dest.parent
        while not probe.exists() and probe != pkg_dir:
            probe = probe.parent
        if not _inside(real_root, os.path.realpath(probe)):
            raise ArchiveRejected(f"{m.name!r} would be written through a link out of the package")
        plan.append((m, dest))
    for m, dest in plan:
        if m.isdir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        body, mode = b"", 0
        if not m.issym():
            source = tf.getmember(m.linkname) if m.islnk() else m
            fh = tf.extractfile(source)
            body = fh.read() if fh else b""
            mode = 0o755 if source.mode & 0o111 else 0o644
            if _already_there(dest, body, mode):
                continue
        if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
            dest.unlink()
        if m.issym():
            os.symlink(m.linkname, dest)
            continue
        tmp = dest.with_name(f".{dest.name}.restore-{os.getpid()}")
        with open(tmp, "wb") as out:
            out.write(body)
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    return meta


def _already_there(dest: Path, body: bytes, mode: int) -> bool:
    """True when ``dest`` is a regular file (not a link) with exactly these bytes and this
    mode: restoring it again would change nothing but its mtime. A no-op rebuild then
    writes nothing into the packages, and tools that watch mtimes see no change."""
    try:
        st = os.lstat(dest)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size != len(body) or (st.st_mode & 0o777) != mode:
        return False
    try:
        return dest.read_bytes() == body
    except OSError:
        return False
