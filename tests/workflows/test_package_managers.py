"""npm, pnpm 9, pnpm 10, yarn classic and yarn Berry (node-modules linker) for real: the
binary each workspace asks for, a frozen install from the committed lockfile (packages from
the npm registry), builds and tests through the real activities, and the suite's single
typed install failure.

The package managers other than npm are fetched once into the tool cache
(``PKGBUILDER_TOOLS_CACHE`` when set, so a machine installs them once; else a session
directory).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from pkgbuilder.activities import build as build_acts
from pkgbuilder.config import load_settings, pkgbuilder_home
from pkgbuilder.models.build import PackageStatus
from pkgbuilder.models.checks import CheckInput
from pkgbuilder.models.steps import CommandInput, InstallInput
from pkgbuilder.workspace.discovery import discover_workspace
from pkgbuilder.workspace.pm.commands import forget_tools
from tests.conftest import REPO_ROOT, copy_workspace, git
from tests.workflows.test_suite import run_suite

pytestmark = pytest.mark.usefixtures("tools_cache")

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "pm"
EXPECTED_TOOL = {
    "npm": "from PATH",
    "pnpm9": "pnpm 9.15.9 from tool cache",
    "pnpm10": "pnpm 10.34.9 from tool cache",
    "yarn1": "yarn 1.22.22 from tool cache",
    "yarn4": "yarn 4.18.1 from tool cache",
}
EXPECTED_ARGV = {
    "npm": ["ci", "--no-audit", "--no-fund"],
    "pnpm9": ["install", "--frozen-lockfile"],
    "pnpm10": ["install", "--frozen-lockfile"],
    "yarn1": ["install", "--frozen-lockfile"],
    "yarn4": ["install", "--immutable"],
}


def _fixture(name: str, dest: Path) -> Path:
    forget_tools()  # resolve afresh for each copy (the path differs anyway)
    return copy_workspace(FIXTURES / name, dest)


@pytest.mark.parametrize("name", list(EXPECTED_TOOL))
async def test_install_build_and_test_with_each_package_manager(name: str, tmp_path: Path) -> None:
    ws = _fixture(name, tmp_path / name)
    graph = discover_workspace(ws)
    by_name = graph.by_name()
    assert by_name["@pm/b"].dependencies == ["@pm/a"]
    install = await build_acts.install_workspace(
        InstallInput(
            workspace_root=str(ws),
            package_manager=graph.package_manager,
            log_dir=str(tmp_path / "logs"),
        )
    )
    assert install.ok, install.output_tail
    assert EXPECTED_TOOL[name] in (install.detail or "")
    assert install.commands[0][-len(EXPECTED_ARGV[name]) :] == EXPECTED_ARGV[name]
    assert install.duration_ms > 0
    # The registry package really arrived, and b gets the workspace copy of a.
    assert (ws / "packages/a/node_modules/is-number").exists() or (
        ws / "node_modules/is-number"
    ).exists()
    settings = load_settings(ws, env={})
    for pkg in ("@pm/a", "@pm/b"):
        checked = await build_acts.check_package(
            CheckInput(
                workspace_root=str(ws),
                package=by_name[pkg],
                package_manager=graph.package_manager,
                settings=settings,
                dependencies=[by_name[d] for d in by_name[pkg].dependencies],
            )
        )
        built, tested = checked.step("build"), checked.step("test")
        assert built is not None and built.ok, built
        assert tested is not None and tested.ok, tested.output_tail
    again = await build_acts.install_workspace(
        InstallInput(workspace_root=str(ws), package_manager=graph.package_manager)
    )
    assert again.skipped and again.ok
    if name != "npm":  # scripts and VERIFY that call the package manager find that binary
        version = await build_acts.run_suite_command(
            CommandInput(
                workspace_root=str(ws),
                argv=[graph.package_manager.value, "--version"],
                package_manager=graph.package_manager,
            )
        )
        assert version.ok and EXPECTED_TOOL[name].split()[1] in version.output_tail


async def test_suite_install_failure_is_reported_once_and_named_on_each_package(
    client: Client, tmp_path: Path
) -> None:
    ws = _fixture("pnpm9", tmp_path / "ws")
    manifest = ws / "packages/b/package.json"
    data = json.loads(manifest.read_text())
    data["dependencies"]["is-odd"] = "3.0.1"  # not in the committed lockfile
    manifest.write_text(json.dumps(data, indent=2))
    report = await run_suite(client, f"tq-{uuid.uuid4()}", ws, f"i{uuid.uuid4().hex[:8]}")
    assert report.install is not None and not report.install.ok
    failure = report.install.failure
    assert failure is not None and failure.type.value == "install"
    assert "pnpm 9.15.9 from tool cache" in failure.message
    assert "ERR_PNPM_OUTDATED_LOCKFILE" in failure.message + failure.output_tail
    assert failure.message.count("\n") == 0
    statuses = {r.package_name: r.status for r in report.package_reports}
    assert statuses == {"@pm/a": PackageStatus.BLOCKED, "@pm/b": PackageStatus.BLOCKED}
    for rep in report.package_reports:
        assert "workspace install failed" in (rep.error or "")
        assert not rep.failures  # the one failure lives in the suite's install summary
    day = Path(report.summary_path or "").parent
    assert json.loads((day / "@pm" / "b.json").read_text())["status"] == "blocked"


async def test_suite_with_pnpm_leaves_the_repository_clean_and_installs_once(
    client: Client, tmp_path: Path
) -> None:
    ws = _fixture("pnpm10", tmp_path / "ws")
    home = pkgbuilder_home(env={"PKGBUILDER_HOME": str(ws / ".pkgbuilder")})
    first = await run_suite(client, f"tq-{uuid.uuid4()}", ws, f"p{uuid.uuid4().hex[:8]}")
    assert {r.status for r in first.package_reports} == {PackageStatus.SUCCESS}
    assert first.install is not None and first.install.ok and not first.install.skipped
    assert "pnpm 10.34.9" in (first.install.tool or "")
    assert first.install.duration_ms > 0
    by_name = {r.package_name: r for r in first.package_reports}
    assert by_name["@pm/b"].tests_passed is True
    # Waiting is measured from the end of the install: b waited for a's build, plus the
    # hand-over (well under the 2 s or more the install takes), not for the install.
    assert by_name["@pm/b"].waited_for[0].wait_time < by_name["@pm/a"].duration + 1000
    # What `--registry local` leaves in the home must not change the install fingerprint.
    (home / "registry").mkdir(exist_ok=True)
    (home / "registry" / "package.json").write_text('{"name": "verdaccio-install"}')
    # (The build cache would restore both packages and need no install at all.)
    second = await run_suite(
        client,
        f"tq-{uuid.uuid4()}",
        ws,
        f"p{uuid.uuid4().hex[:8]}",
        overrides={"cache": {"enabled": False}},
    )
    assert second.install is not None and second.install.skipped
    assert git(ws, "status", "--porcelain") == ""


async def test_pretest_hook_output_has_its_own_log(tmp_path: Path) -> None:
    ws = _fixture("npm", tmp_path / "ws")
    manifest = ws / "packages/a/package.json"
    data = json.loads(manifest.read_text())
    data["scripts"]["pretest"] = "echo from-the-pretest-hook"
    manifest.write_text(json.dumps(data, indent=2))
    graph = discover_workspace(ws)
    await build_acts.install_workspace(InstallInput(workspace_root=str(ws)))
    checked = await build_acts.check_package(
        CheckInput(
            workspace_root=str(ws),
            package=graph.by_name()["@pm/a"],
            settings=load_settings(ws, env={}),
            log_dir=str(tmp_path / "logs"),
        )
    )
    assert [(s.step, s.ok) for s in checked.steps[:2]] == [("build", True), ("test", True)]
    test_log = (tmp_path / "logs" / "test.log").read_text()
    hook_log = (tmp_path / "logs" / "test-pretest.log").read_text()
    assert "from-the-pretest-hook" in hook_log and "from-the-pretest-hook" not in test_log
    assert "pass 1" in test_log  # node --test's summary: the test's own output
