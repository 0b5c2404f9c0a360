"""Custom search attributes so the Temporal UI can filter builds (workflow-safe module)."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

BUILD_ID = SearchAttributeKey.for_keyword("PkgBuildId")
BUILD_PHASE = SearchAttributeKey.for_keyword("PkgBuildPhase")
PACKAGE_NAME = SearchAttributeKey.for_keyword("PkgPackage")
KIND = SearchAttributeKey.for_keyword("PkgKind")
# A package child's outcome: success / failed / cancelled / cached (a PackageStatus value).
STATUS = SearchAttributeKey.for_keyword("PkgStatus")
# A suite's outcome: success / failed / cancelled.
RESULT = SearchAttributeKey.for_keyword("PkgResult")

ALL_KEYS = (BUILD_ID, BUILD_PHASE, PACKAGE_NAME, KIND, STATUS, RESULT)
