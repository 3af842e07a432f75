"""An E2ERun: the release revision it tests, its tests and report spec, and the run itself (pure models).

Field names are snake_case in Python and camelCase on the wire (the CRD schema in crds/).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from helm_e2e.core.model.release import ManagedBy, OnFailure, Trigger
from helm_e2e.core.model.run_status import RunStatus
from helm_e2e.core.model.wire import WireModel


class ReleaseRef(WireModel):
    """spec.release: what was deployed. Never holds values or secret data."""

    name: str
    namespace: str
    revision: int
    chart: str
    chart_version: str
    app_version: str = ""
    image_tag: str = ""
    trigger: Trigger
    deployed_at: datetime | None = None
    # the uid of the Helm release Secret this run was planned from: a run is only ever worked on against
    # that very Secret (core/lifecycle/trust.py); "" on runs an operator before 0.3 created
    secret_uid: str = ""
    commit: str | None = None  # the git revision the deploy carries (core/sources/flux.py), if it carries one
    managed_by: ManagedBy | None = None  # a Flux HelmRelease: never rolled back by helm, tests not doubled


class TestSource(WireModel):
    """spec.tests[]: one planned test. `source` is "hook" or "suite/<name>"."""

    __test__ = False

    name: str
    source: str
    timeout_seconds: int
    kind: Literal["Pod", "Job"] = "Pod"  # a chart's Job test hook runs as a Job
    retries: int | None = None  # attempts after a failed one (None: 0); see core.attempts
    log_on_success: bool | None = None  # its log is in the report even when it passed (hook log policy)


class HookObject(WireModel):
    """spec.hookObjects[]: a supporting object a chart's test hooks needed (created by the run)."""

    kind: str
    name: str
    delete_policies: list[str] = Field(default_factory=list)


class ReadinessMode(StrEnum):
    ROLLOUT = "rollout"  # wait until the release's objects are rolled out (helm --wait / kstatus rules)
    NONE = "none"  # start the tests at once


class ReadinessSpec(WireModel):
    """spec.readiness: the gate before the first test pod."""

    mode: ReadinessMode = ReadinessMode.ROLLOUT
    timeout_seconds: int = Field(default=600, ge=1)


class SuiteReadiness(WireModel):
    """An E2ESuite's say on the gate: `mode: none` turns it off for runs of this suite alone."""

    mode: ReadinessMode | None = None
    timeout_seconds: int | None = Field(default=None, ge=1)


TargetName = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]


class ReportSpec(WireModel):
    to: list[str] = Field(default_factory=list)
    only_on_failure: bool = False
    # notification targets by name: the admin defines them (URL, type, signing key) in the webhooks Secret;
    # a suite can only pick among them, never give a URL
    webhooks: list[TargetName] = Field(default_factory=list, max_length=20)


class RequestTrigger(StrEnum):
    RERUN = "rerun"  # `helm-e2e rerun` / the helm-e2e.dev/rerun annotation
    SCHEDULE = "schedule"  # an E2ESuite's spec.schedule


class RunRequest(WireModel):
    """spec.request: why a revision that already had a run is tested again (see core.reruns)."""

    trigger: RequestTrigger
    token: str  # rerun: the annotation's token; schedule: "<suite>@<slot>"; the idempotence key
    suite: str | None = None  # schedule: the E2ESuite whose tests run


class RunSpec(WireModel):
    release: ReleaseRef
    tests: list[TestSource] = Field(default_factory=list)
    deadline_seconds: int = 1800
    report: ReportSpec = Field(default_factory=ReportSpec)
    hook_objects: list[HookObject] = Field(default_factory=list)
    readiness: ReadinessSpec = Field(default_factory=lambda: ReadinessSpec(mode=ReadinessMode.NONE))
    attempt: int | None = None  # the revision's n-th run (None: the first, `<release>-<revision>`)
    request: RunRequest | None = None  # set on re-runs and scheduled runs
    on_failure: OnFailure | None = (
        None  # decided at planning (core/outcomes/rollback.py); None: runs before it existed
    )


class Run(BaseModel):
    """An E2ERun as the core sees it: identity, spec and status."""

    name: str
    namespace: str
    uid: str = ""
    created_at: datetime | None = None
    spec: RunSpec
    status: RunStatus = Field(default_factory=RunStatus)


# --- E2ESuite --------------------------------------------------------------------------------------
