"""Request and response files: ``$PKGBUILDER_HOME/llm/{requests,responses}/<sha256>.json``.

Workflow histories carry only paths and hashes; the prompt (which may hold whole files) and
the model's answer live here. The main worker writes requests, the LLM worker writes
responses, so both need the same file system (same host, or a shared volume).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pkgbuilder.models.llm import LLMRequest, StoredResponse
from pkgbuilder.util.atomic import write_bytes_atomic


class StoreError(ValueError):
    """A request or response file is missing or does not match its hash."""


def canonical_request_bytes(request: LLMRequest) -> bytes:
    """Stable serialisation: the same request always has the same hash."""
    data = request.model_dump(mode="json", by_alias=True)
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def write_request(home: Path, request: LLMRequest) -> tuple[Path, str]:
    """Write the request file (once; identical content is not rewritten); returns path and hash."""
    data = canonical_request_bytes(request)
    sha = hashlib.sha256(data).hexdigest()
    path = home / "llm" / "requests" / f"{sha}.json"
    if not (path.is_file() and path.read_bytes() == data):
        write_bytes_atomic(path, data)
    return path, sha


def read_request(path: Path, sha256: str) -> LLMRequest:
    """Load a request file and check it is the one the workflow asked for.

    Raises:
        StoreError: missing file or hash mismatch.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise StoreError(
            f"request file {path} cannot be read ({e.strerror}); main and LLM workers must "
            "share PKGBUILDER_HOME on one file system"
        ) from e
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise StoreError(f"request file {path} has hash {actual}, expected {sha256}")
    return LLMRequest.model_validate_json(data)


def response_path_for(request_path: Path, sha256: str) -> Path:
    """``<llm dir>/responses/<request-sha>.json`` next to the request's directory."""
    return request_path.parent.parent / "responses" / f"{sha256}.json"


def write_response(path: Path, stored: StoredResponse) -> None:
    write_bytes_atomic(path, stored.model_dump_json(by_alias=True, indent=2).encode())


def read_response(path: Path) -> StoredResponse:
    """Load a stored response.

    Raises:
        StoreError: missing or unreadable file.
    """
    try:
        return StoredResponse.model_validate_json(path.read_bytes())
    except OSError as e:
        raise StoreError(f"response file {path} cannot be read ({e.strerror})") from e
    except ValueError as e:
        raise StoreError(f"response file {path} is not a stored response: {e}") from e
