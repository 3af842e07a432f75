"""The whole life of one E2ERun as one pure decision: what was observed in, typed actions out.

`decide_run(run, observed, policy)` is called by the executor (controller.py) on every pass. When it needs
to see more (log tails, a re-plan of tests whose pods are missing) it returns Fetch actions first and is
called again with the answers; otherwise it returns, in the order they must be applied:

    CreatePod* → PatchStatus → PostEvent* → DeletePods → SendReport → PruneHistory → Requeue

A status patch carries the resourceVersion the decision was made on; when it conflicts, the executor
drops the rest and decides again on a fresh read, so nothing after it happens twice. Pods are deleted only
after the status that explains why was written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from . import attempts, names
from .models import Condition, Run, RunPhase, RunStatus
from .plan import PlannedTest
from .report import decide_mail
from .results import decide_next_step, end_run, get_condition, set_condition, tests_needing_logs

Pod = Mapping[str, Any]
EMAIL_DONE_REASONS = frozenset(
    {names.MAIL_SENT, names.MAIL_FAILED, names.MAIL_DISABLED, "OnlyOnFailure", "NoRecipients", "NotReported"}
    | {"NoTests"}
)
MAX_MAIL_BACKOFF_SECONDS = 300.0


# --- what the executor observed ---
@dataclass(frozen=True)
class Observed:
    """Everything a decision may look at besides the run itself. None = not fetched yet."""

    now: datetime
    pods: Mapping[str, Pod]  # by test name: the highest attempt's pod (core.attempts.index_pods)
    logs: Mapping[str, str] | None = None
    plan: Mapping[str, PlannedTest | str] | None = None  # re-planned missing tests, or why they cannot be
    refused: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # test → (API reason, message)
    earlier_pods: tuple[str, ...] = ()  # pods of earlier attempts: kept as evidence until the pod TTL


@dataclass(frozen=True)
class Policy:
    """The settings a decision depends on (built from Settings by the executor)."""

    resync_seconds: float
    pod_ttl_seconds: int
    mail_to: tuple[str, ...]
    report_cancelled: bool
    smtp_enabled: bool
    mail_retry_base_seconds: float


# --- actions ---
@dataclass(frozen=True)
class FetchLogs:
    tests: tuple[str, ...]


@dataclass(frozen=True)
class FetchPlan:
    tests: tuple[str, ...]


@dataclass(frozen=True)
class CreatePod:
    test: str
    body: dict[str, Any]


@dataclass(frozen=True)
class PatchStatus:
    status: RunStatus


@dataclass(frozen=True)
class PostEvent:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class DeletePods:
    names: tuple[str, ...]


@dataclass(frozen=True)
class SendReport:
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class PruneHistory:
    release: str


@dataclass(frozen=True)
class Requeue:
    after: float  # seconds


Action = (
    FetchLogs
    | FetchPlan
    | CreatePod
    | PatchStatus
    | PostEvent
    | DeletePods
    | SendReport
    | PruneHistory
    | Requeue
)


# --- the decision ---
def decide_run(run: Run, observed: Observed, policy: Policy) -> list[Action]:
    if run.status.phase.is_final:
        return _decide_finished(run, observed, policy)
    return _decide_active(run, observed, policy)


def _missing_tests(run: Run, observed: Observed) -> list[str]:
    """Tests with no pod that still need one (not final, not refused by the API)."""
    recorded = {r.name: r for r in run.status.tests}
    return [
        t.name
        for t in run.spec.tests
        if t.name not in observed.pods
        and t.name not in observed.refused
        and not (t.name in recorded and recorded[t.name].phase.is_final)
    ]


def _decide_active(run: Run, observed: Observed, policy: Policy) -> list[Action]:
    observed = replace(observed, pods=attempts.current_pods(run, observed.pods))
    fetch: list[Action] = []
    if observed.logs is None and (need := tests_needing_logs(run, observed.pods)):
        fetch.append(FetchLogs(tuple(need)))
    missing = _missing_tests(run, observed)
    if observed.plan is None and missing:
        fetch.append(FetchPlan(tuple(missing)))
    if fetch:
        return fetch
    plan = observed.plan or {}
    unrunnable = dict(observed.refused)
    for name in missing:
        planned = plan.get(name, "the test is no longer part of the plan")
        if isinstance(planned, str):
            unrunnable[name] = (names.REASON_NOT_PLANNED, planned)
        elif planned.policy_violation:
            unrunnable[name] = (names.REASON_POLICY_VIOLATION, planned.policy_violation)
    pod_names = attempts.pod_names(run)
    step = decide_next_step(
        run,
        observed.pods,
        pod_names=pod_names,
        logs=observed.logs or {},
        now=observed.now,
        unrunnable=unrunnable,
    )
    creatable = [t for name in step.create_tests if isinstance(t := plan.get(name), PlannedTest)]
    at = attempts.current_attempts(run)
    actions: list[Action] = [
        CreatePod(t.name, attempts.build_attempt_pod(run=run, test=t, attempt=at.get(t.name, 1)))
        for t in creatable
    ]
    if step.changed:
        actions.append(PatchStatus(step.status))
    actions += [PostEvent(e.type, e.reason, e.message) for e in step.events]
    if step.delete_pods:
        actions.append(DeletePods(tuple(step.delete_pods)))
    if step.finished:
        actions += [PruneHistory(run.spec.release.name), Requeue(0.0)]  # mail and TTL on a fresh read
    else:
        actions.append(Requeue(policy.resync_seconds))
    return actions


def _decide_finished(run: Run, observed: Observed, policy: Policy) -> list[Action]:
    """A final run: its unfinished pods go at once, the report goes out once, finished pods at the TTL."""
    unfinished = tuple(
        p["metadata"]["name"]
        for p in observed.pods.values()
        if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    )
    actions: list[Action] = [DeletePods(unfinished)] if unfinished else []
    outbox = decide_outbox(run, observed.now, policy)
    if any(isinstance(a, PatchStatus) for a in outbox):
        return [*actions, *outbox, Requeue(0.0)]  # one status write per pass: the rest on a fresh read
    ttl = decide_pod_cleanup(run, observed, policy)
    waits = [a.after for a in (*outbox, *ttl) if isinstance(a, Requeue)]
    others = [a for a in (*outbox, *ttl) if not isinstance(a, Requeue)]
    return actions + others + ([Requeue(min(waits))] if waits else [])


def decide_outbox(run: Run, now: datetime, policy: Policy) -> list[Action]:
    """Record the intent (Sending), then send; the outcome is recorded by `record_mail_outcome`."""
    sent = get_condition(run.status, names.COND_EMAIL_SENT)
    if sent is not None and sent.reason in EMAIL_DONE_REASONS:
        return []
    due = run.status.email_next_attempt_at
    if due is not None and (wait := (due - now).total_seconds()) > 0:
        return [Requeue(wait)]
    decision = decide_mail(
        run, mail_to=policy.mail_to, report_cancelled=policy.report_cancelled, enabled=policy.smtp_enabled
    )
    if not decision.send:
        message = "SMTP is not configured" if decision.reason == names.MAIL_DISABLED else "not sent"
        return [
            PatchStatus(
                _with_email(run.status, now, "False", decision.reason, f"{message}: {decision.reason}")
            )
        ]
    if sent is None or sent.reason != names.MAIL_SENDING:
        return [
            PatchStatus(_with_email(run.status, now, "Unknown", names.MAIL_SENDING, "delivery in progress"))
        ]
    return [SendReport(tuple(decision.recipients))]


def record_mail_outcome(
    run: Run, *, now: datetime, policy: Policy, recipients: int, error: str = "", permanent: bool = False
) -> tuple[RunStatus, float | None]:
    """The status after one delivery attempt, and when to try again (None: done)."""
    if not error:
        status = _with_email(run.status, now, "True", names.MAIL_SENT, f"sent to {recipients} recipient(s)")
        return status, None
    attempts = run.status.email_attempts + 1
    delay = min(MAX_MAIL_BACKOFF_SECONDS, policy.mail_retry_base_seconds * 2 ** min(attempts, 8))
    reason = names.MAIL_FAILED if permanent else names.MAIL_RETRYING
    status = _with_email(run.status, now, "False", reason, f"attempt {attempts}: {error}")
    status.email_attempts = attempts
    status.email_next_attempt_at = None if permanent else now + timedelta(seconds=delay)
    return status, None if permanent else delay


def _with_email(status: RunStatus, now: datetime, value: str, reason: str, message: str) -> RunStatus:
    new = status.model_copy(deep=True)
    condition = Condition(
        type=names.COND_EMAIL_SENT, status=value, reason=reason, message=message, last_transition_time=now
    )
    new.conditions = set_condition(new.conditions, condition)
    new.email_next_attempt_at = None
    return new


def decide_pod_cleanup(run: Run, observed: Observed, policy: Policy) -> list[Action]:
    """Delete the test pods `podTTLSeconds` after completion (the results are already in the status)."""
    if run.status.pods_deleted_at or not run.status.completed_at:
        return []
    wait = (
        run.status.completed_at + timedelta(seconds=policy.pod_ttl_seconds) - observed.now
    ).total_seconds()
    if wait > 0:
        return [Requeue(wait)]
    pods = tuple(p["metadata"]["name"] for p in observed.pods.values()) + observed.earlier_pods
    status = run.status.model_copy(update={"pods_deleted_at": observed.now})
    return [*([DeletePods(pods)] if pods else []), PatchStatus(status)]


# --- decisions about other runs of the same release ---
def decide_end(run: Run, *, phase: RunPhase, reason: str, message: str, now: datetime) -> list[Action]:
    """Supersede, cancel or fail an active run: its status first; its pods go on the run's next pass."""
    if run.status.phase.is_final:
        return []
    status = end_run(run, phase=phase, reason=reason, message=message, now=now)
    kind = "Warning" if phase == RunPhase.ERROR else "Normal"
    return [PatchStatus(status), PostEvent(kind, reason, message)]


def decide_superseded(runs: Sequence[Run], *, revision: int, attempt: int = 1) -> list[Run]:
    """Active runs of older revisions, or older attempts of this one: a newer run replaces them."""
    newer = (revision, attempt)
    return [
        r
        for r in runs
        if (r.spec.release.revision, r.spec.attempt or 1) < newer and not r.status.phase.is_final
    ]


def decide_prune(runs: Sequence[Run], *, limit: int, keep: str) -> list[str]:
    """Names of the runs beyond the newest `limit` (by revision); active runs and `keep` are never pruned."""
    ordered = sorted(runs, key=lambda r: (r.spec.release.revision, r.spec.attempt or 1, r.name), reverse=True)
    return [r.name for r in ordered[limit:] if r.status.phase.is_final and r.name != keep]
