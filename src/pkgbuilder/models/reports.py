"""Inputs/outputs of the report and workspace activities."""

from __future__ import annotations

from pydantic import Field

from pkgbuilder.models.build import BuildReport, PackageBuildReport
from pkgbuilder.models.common import Model


class DiscoverInput(Model):
    workspace_root: str
    plan_path: str | None = None
    only: list[str] = Field(default_factory=list)
    depends_on: dict[str, list[str]] = Field(default_factory=dict)  # config graph.dependsOn


class WritePackageReportInput(Model):
    report: PackageBuildReport
    reports_root: str
    date: str


class WritePackageReportsInput(Model):
    reports: list[PackageBuildReport]
    reports_root: str
    date: str


class WriteSuiteSummaryInput(Model):
    report: BuildReport
    reports_root: str
    date: str


class WrittenReport(Model):
    path: str


class EstimatesInput(Model):
    reports_root: str


class Estimates(Model):
    durations_ms: dict[str, float] = Field(default_factory=dict)
