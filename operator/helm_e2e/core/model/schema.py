"""Pydantic models of the decoded Helm release and of the E2ERun / E2ESuite custom resources.

Field names are snake_case in Python and camelCase on the wire (the CRD schema in crds/); use
`model_dump(by_alias=True, exclude_none=True, mode="json")` to build API bodies.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields from the API are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Trigger(StrEnum):
    INSTALL = "install"
    UPGRADE = "upgrade"
    ROLLBACK = "rollback"
    SYNC = "sync"  # an Argo CD Application's sync (core/sources/argocd.py)


class OnFailure(StrEnum):
    """What happens when a revision's own run ends Failed (core/outcomes/rollback.py)."""

    ROLLBACK = "rollback"  # `helm rollback` to the newest earlier revision whose run Succeeded
    NONE = "none"


class RunPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"
    CANCELLED = "Cancelled"
    SUPERSEDED = "Superseded"
    NO_TESTS = "NoTests"  # the revision was seen and has nothing to run: `helm-e2e wait` returns at once
    REFUSED = "Refused"  # not the operator's run of its release (core/lifecycle/trust.py): left alone

    @property
    def is_final(self) -> bool:
        return self not in (RunPhase.PENDING, RunPhase.RUNNING)


class TestPhase(StrEnum):
    __test__ = False  # not a pytest class

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"  # the test could not run: pod rejected, image missing, timed out, pod lost
    CANCELLED = "Cancelled"

    @property
    def is_final(self) -> bool:
        return self not in (TestPhase.PENDING, TestPhase.RUNNING)


# --- the decoded Helm release (never stored as a whole: values stay in memory only) ---------------


class Hook(BaseModel):
    name: str
    kind: str
    path: str = ""
    manifest: str
    events: list[str] = Field(default_factory=list)


class Release(BaseModel):
    name: str
    namespace: str
    revision: int
    status: str
    description: str = ""
    chart_name: str
    chart_version: str
    app_version: str = ""
    values: dict[str, Any] = Field(default_factory=dict)  # chart defaults merged with user config
    hooks: list[Hook] = Field(default_factory=list)
    manifest: str = ""  # the rendered objects (multi-document YAML): the readiness gate waits for them
    chart_annotations: dict[str, str] = Field(default_factory=dict)  # Chart.yaml `annotations` (strings)
    first_deployed: datetime | None = None
    last_deployed: datetime | None = None
    trigger: Trigger
    rollback_revision: int | None = None  # the revision a rollback restored: Helm 4's info.rollback_revision
    # Helm 4's `apply_method` of the revision: "ssa" = server-side apply, which its `helm test` also uses
    # for the test hooks' objects (pkg/action/release_testing.go); "csa" or "" (Helm 3) = create
    apply_method: str = ""
    app_labels: dict[str, str] = Field(default_factory=dict)  # an Argo CD Application's labels (suites)


# --- E2ERun ----------------------------------------------------------------------------------------


class ManagedBy(WireModel):
    """spec.release.managedBy: the GitOps object that owns the release (core/sources/flux.py)."""

    kind: str  # HelmRelease (Flux) or Application (Argo CD)
    name: str
    namespace: str
    tests: bool = False  # its controller runs the chart's test hooks itself: this run does not


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


class PytestSummary(WireModel):
    """What the helm-e2e pytest plugin writes to the termination log (JSON)."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0
    duration_seconds: float | None = None
    first_failures: list[str] = Field(default_factory=list)


class AttemptRecord(WireModel):
    """status.tests[].attempts[]: one finished attempt of a test that may be retried."""

    attempt: int
    pod: str = ""
    phase: TestPhase = TestPhase.FAILED
    exit_code: int | None = None
    reason: str = ""
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_seconds: float | None = None


class ArtifactFile(WireModel):
    """status.tests[].artifacts[]: one file a test left in its artifacts directory, stored with the run."""

    name: str  # the path relative to the artifacts directory, e.g. `junit.xml` or `screens/login.png`
    size: int
    sha256: str


class PytestFailure(WireModel):
    """status.tests[].failures[]: one failing pytest test (from the test's junit.xml)."""

    id: str  # pytest node id, e.g. `tests/test_api.py::test_token`
    message: str = ""


class ContainerDiagnosis(WireModel):
    """One container's (or init container's) last state, for a test that did not pass."""

    name: str
    init: bool = False
    state: str = ""  # waiting | running | terminated
    reason: str = ""
    exit_code: int | None = None
    message: str = ""
    restart_count: int | None = None


class PodEventRecord(WireModel):
    """One Kubernetes Event about a test's pod (ImagePullBackOff, OOMKilled, FailedMount, ...)."""

    type: str = ""
    reason: str = ""
    message: str = ""
    count: int | None = None
    last_seen: datetime | None = None


class Diagnostics(WireModel):
    """status.tests[].diagnostics: what explains a test that did not pass, kept after its pod is gone."""

    containers: list[ContainerDiagnosis] = Field(default_factory=list)
    events: list[PodEventRecord] = Field(default_factory=list)


class TestResult(WireModel):
    __test__ = False

    name: str
    pod: str = ""
    phase: TestPhase = TestPhase.PENDING
    exit_code: int | None = None
    reason: str = ""
    message: str = ""
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_seconds: float | None = None
    pytest: PytestSummary | None = None
    log_tail: str = ""
    attempt: int | None = None  # the attempt running or recorded (None: 1); see core.attempts
    attempts: list[AttemptRecord] = Field(default_factory=list)  # every finished attempt of a retried test
    flaky: bool = False  # Succeeded on a retry after a failed attempt
    failed_log_tail: str = ""  # the log tail of the last failed attempt that was retried
    log_container: str = ""  # whose log `log_tail` is: an init container when one failed
    artifacts: list[ArtifactFile] = Field(default_factory=list)  # see docs/artifacts.md
    artifacts_message: str = ""  # why an upload was refused or artifacts are missing
    failures: list[PytestFailure] = Field(default_factory=list)  # failing pytest ids (junit.xml), bounded
    diagnostics: Diagnostics | None = None  # for a test that did not pass


class Summary(WireModel):
    total: int = 0
    passed: int = 0
    failed: int = 0
    errored: int = 0
    flaky: int = 0  # Succeeded tests that needed a retry


class Condition(WireModel):
    """Kubernetes API conventions: status is the string "True", "False" or "Unknown"."""

    type: str
    status: str
    reason: str
    message: str = ""
    last_transition_time: datetime | None = None


class NotificationState(StrEnum):
    SENDING = "Sending"  # the intent is recorded: the next pass sends
    SENT = "Sent"
    RETRYING = "Retrying"  # a transient failure: sent again at nextAttemptAt
    FAILED = "Failed"  # permanent: never sent again
    SKIPPED = "Skipped"  # decided not to send (the e-mail: `reason` says why); never sent


class NotificationStatus(WireModel):
    """status.notifications[]: one outbox channel, the e-mail (target `@mail`) or one webhook target."""

    target: str
    state: NotificationState
    type: str = ""  # email | cloudevents | slack | teams, once known
    reason: str = ""  # Skipped: why (NoRecipients, Disabled, ...; the EmailSent condition's reason)
    attempts: int = 0  # failed delivery attempts so far (drives the retry backoff)
    next_attempt_at: datetime | None = None
    message: str = ""  # what happened, never the URL or a reply beyond a short cleaned excerpt
    last_transition_time: datetime | None = None


class RollbackRecord(WireModel):
    """status.rollback: written before every `helm rollback` call, so a restart never calls it blindly."""

    target: int  # the revision rolled back to
    attempts: int = 0  # helm calls started so far (each recorded before it starts)
    revision: int | None = None  # the revision the rollback created, once seen


class Regression(WireModel):
    """status.regression: this run against the previous revision's finished run of the same release."""

    compared_with: str  # the E2ERun compared with
    revision: int
    newly_failing: list[str] = Field(default_factory=list)  # pytest ids where known, else test names
    fixed: list[str] = Field(default_factory=list)
    still_failing: list[str] = Field(default_factory=list)


class RunStatus(WireModel):
    phase: RunPhase = RunPhase.PENDING
    started_at: datetime | None = None
    completed_at: datetime | None = None
    summary: Summary = Field(default_factory=Summary)
    tests: list[TestResult] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    message: str = ""
    # written by versions before the one outbox (the e-mail's state was the EmailSent condition and these):
    # read only to take such a run's e-mail channel over (core.outcomes.outbox.channels)
    email_attempts: int = 0
    email_next_attempt_at: datetime | None = None
    pods_deleted_at: datetime | None = None  # test pods removed after podTTLSeconds
    notifications: list[NotificationStatus] = Field(default_factory=list)  # the outbox, one per channel
    rollback: RollbackRecord | None = None  # the rollback this Failed run asked for (condition RolledBack)
    regression: Regression | None = None  # see core/results/regressions.py


class Run(BaseModel):
    """An E2ERun as the core sees it: identity, spec and status."""

    name: str
    namespace: str
    uid: str = ""
    created_at: datetime | None = None
    spec: RunSpec
    status: RunStatus = Field(default_factory=RunStatus)


# --- E2ESuite --------------------------------------------------------------------------------------


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
