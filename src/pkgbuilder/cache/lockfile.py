"""The lockfile entries that resolve one package's external dependencies (npm
``package-lock.json`` v2/v3, ``yarn.lock`` v1 and berry, ``pnpm-lock.yaml`` v6-v9).

Only those entries go into the package's hash, so bumping a dependency of one package does
not rebuild the others. An unknown lockfile format falls back to the whole file's digest
(conservative: everything misses rather than a stale hit).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from pkgbuilder.util.yamltext import YamlError, load_yaml

LOCKFILE_NAMES = ("pnpm-lock.yaml", "yarn.lock", "package-lock.json", "npm-shrinkwrap.json")
DEP_FIELDS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")


def _digest(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def external_dependencies(manifest: dict[str, Any], workspace_names: set[str]) -> list[str]:
    names: set[str] = set()
    for field in DEP_FIELDS:
        deps = manifest.get(field)
        if isinstance(deps, dict):
            names.update(n for n in deps if isinstance(n, str) and n not in workspace_names)
    return sorted(names)


class Lockfile:
    """A parsed lockfile; ``entries(package_path, names)`` → {entry key: digest}."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self.whole = hashlib.sha256(data).hexdigest()[:32]
        self._entries: Callable[[str, list[str]], dict[str, str]] = self._fallback
        text = data.decode("utf-8", "replace")
        try:
            if name in ("package-lock.json", "npm-shrinkwrap.json"):
                self._npm = json.loads(text)
                if isinstance(self._npm.get("packages"), dict):
                    self._entries = self._npm_entries
            elif name == "yarn.lock":
                self._yarn = _parse_yarn(text)
                self._entries = self._yarn_entries
            elif name == "pnpm-lock.yaml":
                self._pnpm = _load_yaml(text) or {}
                if isinstance(self._pnpm.get("importers"), dict):
                    self._entries = self._pnpm_entries
        except ValueError:
            self._entries = self._fallback

    def entries(self, package_path: str, names: list[str]) -> dict[str, str]:
        if not names:
            return {}
        return self._entries(package_path, names)

    def _fallback(self, package_path: str, names: list[str]) -> dict[str, str]:
        return {f"{self.name} (whole file)": self.whole}

    # -- npm -----------------------------------------------------------------------------

    def _npm_entries(self, package_path: str, names: list[str]) -> dict[str, str]:
        packages: dict[str, Any] = self._npm["packages"]

        def locate(base: str, name: str) -> str | None:
            # node's resolution: <base>/node_modules/<name>, then each enclosing level's
            while True:
                key = f"{base}/node_modules/{name}" if base else f"node_modules/{name}"
                if key in packages:
                    return key
                if not base:
                    return None
                cut = base.rfind("/node_modules/")
                base = base[:cut] if cut >= 0 else ""

        out: dict[str, str] = {}
        todo = [(package_path, n) for n in names]
        while todo:
            base, name = todo.pop()
            key = locate(base, name)
            if key is None:
                out.setdefault(f"{name} (unresolved)", "")
                continue
            if key in out:
                continue
            entry = packages[key] if isinstance(packages[key], dict) else {}
            if entry.get("link"):  # a workspace package: its own hash covers it
                out[key] = _digest({"link": entry.get("resolved")})
                continue
            out[key] = _digest({k: entry.get(k) for k in ("version", "resolved", "integrity")})
            for field in ("dependencies", "optionalDependencies", "peerDependencies"):
                for dep in entry.get(field) or {}:
                    todo.append((key, dep))
        return out

    # -- yarn ----------------------------------------------------------------------------

    def _yarn_entries(self, package_path: str, names: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        todo = list(names)
        seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            blocks = self._yarn.get(name)
            if not blocks:
                out[f"{name} (unresolved)"] = ""
                continue
            for header, body, deps in blocks:
                out[header] = _digest(body)
                todo.extend(deps)
        return out

    # -- pnpm ----------------------------------------------------------------------------

    def _pnpm_entries(self, package_path: str, names: list[str]) -> dict[str, str]:
        lock = self._pnpm
        importer = lock["importers"].get(package_path or ".") or {}
        packages = lock.get("packages") or {}
        snapshots = lock.get("snapshots") or {}
        out: dict[str, str] = {}
        todo: list[tuple[str, str]] = []
        for field in ("dependencies", "devDependencies", "optionalDependencies"):
            for name, spec in (importer.get(field) or {}).items():
                if name in names:
                    version = spec.get("version") if isinstance(spec, dict) else spec
                    todo.append((name, str(version)))
        for name in names:
            if not any(n == name for n, _ in todo):
                out[f"{name} (unresolved)"] = ""
        while todo:
            name, version = todo.pop()
            if version.startswith("link:"):
                continue
            key = f"{name}@{version}"
            if key in out:
                continue
            base = key.split("(", 1)[0]
            found = [
                snapshots.get(key),
                packages.get(base),
                packages.get(f"/{key}"),
                packages.get(f"/{base}"),
                packages.get(key),
            ]
            entries = [e for e in found if isinstance(e, dict)]
            out[key] = _digest(entries) if entries else ""
            for entry in entries:
                for field in ("dependencies", "optionalDependencies"):
                    for dep, ver in (entry.get(field) or {}).items():
                        todo.append((dep, str(ver)))
        return out


_YARN_SPEC = re.compile(r'^"?((?:@[^@/"]+/)?[^@"]+)@')


def _load_yaml(text: str) -> Any:
    """``pnpm-lock.yaml``'s data; a YAML error raises ValueError."""
    try:
        return load_yaml(text)
    except YamlError as e:
        raise ValueError(f"pnpm-lock.yaml: {e}") from None


def _parse_yarn(text: str) -> dict[str, list[tuple[str, str, list[str]]]]:
    """name → [(header, block text, dependency names)] for yarn v1 and berry lockfiles."""
    out: dict[str, list[tuple[str, str, list[str]]]] = {}
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
    for block in blocks:
        header = block[0].rstrip(":").strip()
        if header.startswith("__metadata"):
            continue
        deps: list[str] = []
        in_deps = False
        for line in block[1:]:
            stripped = line.strip()
            indent = len(line) - len(line.lstrip())
            if stripped.rstrip(":") in ("dependencies", "optionalDependencies"):
                in_deps = True
                continue
            if in_deps and indent >= 4:
                deps.append(
                    stripped.split(":" if ":" in stripped.split(" ")[0] else " ", 1)[0].strip('"')
                )
            else:
                in_deps = False
        names = {m.group(1) for spec in header.split(",") if (m := _YARN_SPEC.match(spec.strip()))}
        for name in names:
            out.setdefault(name, []).append((header, "\n".join(block), deps))
    return out


def find_lockfile(read: Callable[[str], bytes | None]) -> Lockfile | None:
    """The workspace root's lockfile (the first of LOCKFILE_NAMES present)."""
    for name in LOCKFILE_NAMES:
        data = read(name)
        if data is not None:
            return Lockfile(name, data)
    return None
