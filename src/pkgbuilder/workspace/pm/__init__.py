"""Package managers: detection, the graph they really link, install fingerprint, binaries.

Temporal-free; other modules import from here:

- :func:`detect_package_manager`, :func:`requested_version`, :func:`lockfile_of`
- :class:`LinkResolver` — does a dependency resolve to the workspace copy?
- :func:`install_inputs` / :func:`install_fingerprint` — the files an install reads
- :func:`current_install` → :class:`InstallRecord` — the user's own install, if current
- :func:`resolve_tool` → :class:`Tool` — which binary runs the package manager
"""

from pkgbuilder.workspace.pm.detect import (
    LOCKFILES,
    PackageManagerError,
    detect_package_manager,
    lockfile_of,
    requested_version,
)
from pkgbuilder.workspace.pm.fingerprint import install_fingerprint, install_inputs
from pkgbuilder.workspace.pm.install_state import InstallRecord, current_install
from pkgbuilder.workspace.pm.linking import LinkResolver
from pkgbuilder.workspace.pm.toolchain import (
    Tool,
    ToolError,
    is_yarn_berry,
    resolve_tool,
    yarn_node_linker,
)

__all__ = [
    "LOCKFILES",
    "InstallRecord",
    "LinkResolver",
    "PackageManagerError",
    "Tool",
    "ToolError",
    "current_install",
    "detect_package_manager",
    "install_fingerprint",
    "install_inputs",
    "is_yarn_berry",
    "lockfile_of",
    "requested_version",
    "resolve_tool",
    "yarn_node_linker",
]
