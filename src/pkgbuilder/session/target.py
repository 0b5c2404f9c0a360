"""The generated package as the build steps need it (BUILD_VALIDATION's target)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pkgbuilder.models.build import Failure, FailureType, PackageNode
from pkgbuilder.models.session import ValidationTargetInput, ValidationTargetResult
from pkgbuilder.session.setup import inside


def validation_target(inp: ValidationTargetInput) -> ValidationTargetResult:
    """The package's node (scripts from its package.json) and where to install it, or the
    failure that stops it from being built at all (for the fix loop)."""
    root = Path(inp.workspace_root)
    pkg_dir = inside(root, inp.package_path, "Package path")
    manifest = pkg_dir / "package.json"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        why = "is missing" if isinstance(e, FileNotFoundError) else f"is invalid ({e})"
        return ValidationTargetResult(
            failures=[
                Failure(
                    type=FailureType.BUILD, message=f"package.json {why}", output_tail=str(e)[:2000]
                )
            ]
        )
    raw_scripts = data.get("scripts")
    scripts: dict[str, Any] = raw_scripts if isinstance(raw_scripts, dict) else {}
    node = PackageNode(
        name=str(data.get("name") or inp.package_name),
        version=str(data.get("version", "0.0.0")),
        path=inp.package_path,
        category=inp.category,
        layer=inp.category.layer,
        dependencies=inp.dependencies,
        scripts=sorted(str(k) for k in scripts),
    )
    # A workspace root with a package.json installs for all members; a lone package
    # (no root manifest) installs in its own directory.
    install_root = root if (root / "package.json").is_file() else pkg_dir
    return ValidationTargetResult(node=node, install_root=str(install_root))
