"""An E2ERun's status: phases, per-test results, conditions, the outbox's channels, rollback, regressions.

Field names are snake_case in Python and camelCase on the wire (the CRD schema in crds/).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from helm_e2e.core.model.wire import WireModel


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
