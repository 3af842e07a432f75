"""What a run's decision sees (observations) and what it returns (typed actions), as plain data (pure).

`core.lifecycle.decide` decides; reconcile/observe.py answers the Fetch actions and reconcile/executor.py
applies the others, each through the shell module of its kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from helm_e2e.core.artifacts.rules import CollectorSpec, Manifest
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import RunPhase, RunStatus, TestResult
from helm_e2e.core.outcomes import rollback as rollbacks
from helm_e2e.core.plan.build import PlannedTest
from helm_e2e.core.plan.chart_hooks import HookResource
from helm_e2e.core.plan.readiness import ObjectKey
from helm_e2e.core.results.run_tests import TestObjects


# --- what the executor observed ---
@dataclass(frozen=True)
class Observed:
    """Everything a decision may look at besides the run itself. None = not fetched yet."""

    now: datetime
    objects: TestObjects  # the run's test pods and Jobs, by test name
    logs: Mapping[str, str] | None = None
    events: Mapping[str, Sequence[object]] | None = None  # test → its pod's Events (FetchEvents)
    plan: Replanned | None = None  # the plan of the tests that still need a pod or Job
    refused: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # test → (API reason, message)
    rollout: Rollout | None = None
    history: rollbacks.History | None = None  # the release's revisions and runs (rollback decisions)
    artifacts: Mapping[str, Manifest] = field(default_factory=dict)  # finished tests' stored artifacts
    flux: Mapping[str, TestResult] | None = None  # what Flux recorded of its tests (FetchFluxTests)


@dataclass(frozen=True)
class Replanned:
    """The planned tests asked for (or why each cannot be planned) and the hook objects they rely on."""

    tests: Mapping[str, PlannedTest | str]
    resources: Sequence[HookResource] = ()
    rollout: Sequence[ObjectKey] = ()  # the release's objects the readiness gate waits for
    server_side_apply: bool = False  # the hook objects are applied server-side (the release's apply_method)


@dataclass(frozen=True)
class Rollout:
    """One look at the release's objects (core.readiness.summarize)."""

    ready: bool
    failed: str = ""  # an object that will never become ready, e.g. `job/migrate failed`
    pending: str = ""  # what is still rolling out, e.g. `deployment/web 1/3 updated`


@dataclass(frozen=True)
class Policy:
    """The settings a decision depends on (built from Settings by the executor)."""

    resync_seconds: float
    pod_ttl_seconds: int
    mail_to: tuple[str, ...]
    report_cancelled: bool
    smtp_enabled: bool
    mail_retry_base_seconds: float
    webhooks: tuple[str, ...] = ()  # webhook targets of every report (core/outcomes/outbox.py)
    webhook_retry_base_seconds: float = 2.0
    # a run's own report.to is re-checked against these when the mail goes out (None: unchecked)
    mail_allowed_domains: frozenset[str] | None = None
    history_limit: int = 10  # a release keeps this many final runs (HELM_E2E_HISTORY_LIMIT)
    # the artifacts collector every test pod gets (its token is "": minted per test by the shell); None: off
    collector: CollectorSpec | None = None


# --- actions ---
@dataclass(frozen=True)
class FetchLogs:
    tests: tuple[str, ...]


@dataclass(frozen=True)
class FetchEvents:
    """The Kubernetes Events of these tests' pods: they end this pass without passing (diagnostics)."""

    tests: tuple[str, ...]


@dataclass(frozen=True)
class FetchPlan:
    tests: tuple[str, ...]


@dataclass(frozen=True)
class FetchRollout:
    """Look at the objects of the re-plan's `rollout` (asked for together with, and after, FetchPlan)."""


@dataclass(frozen=True)
class FetchReleaseHistory:
    """The release's runs and revisions (secret labels); `descriptions`: newer revisions' descriptions too;
    `revisions=False`: the runs alone (a regression verdict compares runs: no LIST of Helm's Secrets)."""

    descriptions: bool = False
    revisions: bool = True


@dataclass(frozen=True)
class FetchFluxTests:
    """What the release's Flux HelmRelease recorded of the chart tests Flux runs (core/sources/flux.py)."""


@dataclass(frozen=True)
class Rollback:
    """Run `helm rollback <release> <target>`; `status` (the intent) was written just before."""

    target: int
    status: RunStatus


@dataclass(frozen=True)
class CreateHookObjects:
    """A chart's test hook objects (ServiceAccount, ConfigMap, ...), in Helm's order, before its tests."""

    bodies: tuple[dict[str, Any], ...]
    replace_ours: tuple[bool, ...]  # per body: before-hook-creation replaces an earlier run's object
    tests: tuple[str, ...]  # the hook tests that rely on them: refused with them
    server_side_apply: bool = False  # applied server-side, Helm's field manager (Helm 4, apply_method ssa)


@dataclass(frozen=True)
class CreateTest:
    test: str
    kind: str  # Pod | Job
    body: dict[str, Any]
    # the collector sidecar to add once the shell minted its upload token (core.lifecycle.creation)
    collector: CollectorSpec | None = None


@dataclass(frozen=True)
class PatchStatus:
    status: RunStatus
    mail_outcome: str = ""  # the outbox skips the e-mail: counted by reason once the write is done
    rollback_outcome: str = ""  # a final rollback outcome: counted by result once the write is done


@dataclass(frozen=True)
class PostEvent:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class DeletePods:
    names: tuple[str, ...]


@dataclass(frozen=True)
class DeleteJobs:
    names: tuple[str, ...]


@dataclass(frozen=True)
class DeleteHookObjects:
    objects: tuple[tuple[str, str], ...]  # (kind, name), once the run's results are saved


@dataclass(frozen=True)
class Deliver:
    """Send the run's report on one outbox channel (in Sending): the e-mail (`@mail`, to `recipients`) or
    one webhook target (core/outcomes/outbox.py); the shell records the outcome at once."""

    channel: str
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class PruneHistory:
    release: str
    runs: Sequence[Run] | None = None  # the release's runs, when this pass listed them already (else: list)
    limit: int = 10  # keep the newest `limit` runs (Policy.history_limit)


@dataclass(frozen=True)
class Requeue:
    after: float  # seconds


@dataclass(frozen=True)
class EndRun:
    """End an active run from outside its own pass (core.lifecycle.end_runs.decide_end on a fresh read)."""

    phase: RunPhase
    reason: str
    message: str


Action = (
    FetchLogs
    | FetchEvents
    | FetchPlan
    | FetchRollout
    | FetchReleaseHistory
    | FetchFluxTests
    | Rollback
    | CreateHookObjects
    | CreateTest
    | PatchStatus
    | PostEvent
    | DeletePods
    | DeleteJobs
    | DeleteHookObjects
    | Deliver
    | PruneHistory
    | Requeue
)
