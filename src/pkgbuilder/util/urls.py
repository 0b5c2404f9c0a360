"""URL helpers shared by config and the registry code (no imports of our own)."""

from __future__ import annotations

import urllib.parse


def strip_userinfo(url: str) -> str:
    """``http://user:secret@host/x/`` -> ``http://host/x/``: credentials never travel inside
    a URL (into workflow inputs, histories, reports or logs). Anything that is not a URL
    with userinfo comes back unchanged."""
    parts = urllib.parse.urlsplit(url.strip())
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=host))
