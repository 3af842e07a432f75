"""An E2ESuite: which releases and applications it selects, its tests, report and schedule (pure models).

Field names are snake_case in Python and camelCase on the wire (the CRD schema in crds/).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, Field, field_validator

from helm_e2e.core.model.release import OnFailure, Trigger
from helm_e2e.core.model.run import ReportSpec, SuiteReadiness
from helm_e2e.core.model.wire import WireModel


class ReleaseSelector(WireModel):
    names: list[str] = Field(default_factory=list)
    charts: list[str] = Field(default_factory=list)


class ApplicationSelector(WireModel):
    """spec.applications: the Argo CD Applications deployed into this namespace that the suite tests."""

    names: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)


class ImageTagSource(WireModel):
    values_path: str | None = None


class PodMetadata(WireModel):
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class SuiteTest(WireModel):
    __test__ = False

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40)
    timeout_seconds: int | None = Field(default=None, ge=1)
    retries: int | None = Field(default=None, ge=0, le=10)  # None: HELM_E2E_DEFAULT_RETRIES
    metadata: PodMetadata = Field(default_factory=PodMetadata)  # extra pod labels/annotations (templated)
    template: dict[str, Any]  # a PodSpec whose string leaves are Jinja2 templates


class SuiteSchedule(WireModel):
    """spec.schedule: a standard 5-field cron expression, evaluated in `timeZone` (IANA, default UTC)."""

    cron: str = Field(min_length=1, max_length=200)
    time_zone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            CronSim(value, datetime(2000, 1, 1, tzinfo=UTC))
        except CronSimError as e:
            raise ValueError(f"not a cron expression: {e}") from e
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {value!r}") from e
        return value


class SuiteSpec(WireModel):
    releases: ReleaseSelector = Field(default_factory=ReleaseSelector)
    applications: ApplicationSelector | None = None  # Argo CD Applications (core/sources/argocd.py)
    triggers: list[Trigger] = Field(default_factory=lambda: list(Trigger))
    image_tag: ImageTagSource = Field(default_factory=ImageTagSource)
    tests: list[SuiteTest] = Field(default_factory=list)
    report: ReportSpec = Field(default_factory=ReportSpec)
    readiness: SuiteReadiness = Field(default_factory=SuiteReadiness)
    schedule: SuiteSchedule | None = None  # re-verify the deployed revision on a cron schedule
    on_failure: OnFailure | None = None  # `rollback`: a Failed run of a release it tests rolls it back


class Suite(BaseModel):
    name: str
    namespace: str
    generation: int = 0
    spec: dict[str, Any]  # raw: validated into SuiteSpec by core.plan so errors become conditions
