"""Rollback on failure (pure): whether a run asks for one, to which revision, and what to record.

Opt-in, decided when the run is planned and recorded in `spec.onFailure`: globally
(`HELM_E2E_ROLLBACK=on-failure`), by an E2ESuite the run uses (`spec.onFailure: rollback`), or by the
chart (`helm-e2e.dev/on-failure: rollback` in Chart.yaml's `annotations`).

When the revision's own run ends Failed (never Error, Cancelled, Superseded, NoTests) the release goes
back to the newest *earlier* revision whose run Succeeded, through the real `helm rollback` (Helm's own
semantics; the shell runs it). The guards: never when a newer revision was deployed meanwhile, never from
a revision that is itself a rollback (no loops), never without a passing revision (recorded as
`RolledBack=False/NoPassingRevision`). At most one rollback per failing revision, across restarts: the
intent (`status.rollback`, condition `RolledBack=Unknown/RollingBack`) is written before every helm call;
a restarted operator that finds it first looks for the revision Helm wrote (`info.rollback_revision` ==
target, Helm 4.3; `Rollback to <target>` in Helm 3's description), and calls helm again at most once more.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime

from helm_e2e.core.model import names
from helm_e2e.core.model.release import OnFailure, Trigger
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import Condition, RollbackRecord, RunPhase, RunStatus
from helm_e2e.core.plan.on_failure import (
    decide_on_failure as decide_on_failure,  # re-exported: planning decides with it
)
from helm_e2e.core.results.run_tests import get_condition, set_condition
from helm_e2e.core.sources import flux

MAX_HELM_CALLS = 2  # the first call, and one retry after a restart that found no trace of it
MAX_ERROR_CHARS = 200
VERDICTS = frozenset({RunPhase.SUCCEEDED, RunPhase.FAILED, RunPhase.ERROR})  # a revision's tested outcome
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LOG_RECORD = re.compile(r"(time=\S+ )?level=[A-Z]+ ")  # slog's text handler (Helm 4's warnings)


@dataclass(frozen=True)
class History:
    """What the shell observed of the release (release secret labels, its E2ERuns)."""

    deployed: int | None  # the revision Helm marks deployed
    revisions: Set[int]  # every revision Helm still stores (a pruned one cannot be rolled back to)
    runs: Sequence[Run] = ()
    rolled_back_to: Mapping[int, int] = field(default_factory=dict)  # newer rollback revisions → their target


@dataclass(frozen=True)
class RollbackDecision:
    target: int | None
    reason: str  # RollingBack when there is a target; else why not (a RolledBack=False reason)
    message: str


def wants_rollback(run: Run) -> bool:
    """The run asked for a rollback decision: opted in, the revision's own run, and it ended Failed."""
    return (
        run.spec.on_failure == OnFailure.ROLLBACK
        and run.spec.request is None
        and run.status.phase == RunPhase.FAILED
    )


def settled(run: Run) -> bool:
    """Nothing (more) to decide about a rollback: the report may go out."""
    if not wants_rollback(run):
        return True
    cond = get_condition(run.status, names.COND_ROLLED_BACK)
    return cond is not None and cond.status != "Unknown"


def passing_revisions(runs: Sequence[Run]) -> set[int]:
    """Revisions whose newest run with a verdict (Succeeded, Failed, Error) Succeeded."""
    newest: dict[int, Run] = {}
    for r in runs:
        if r.status.phase not in VERDICTS:
            continue
        rev = r.spec.release.revision
        if rev not in newest or (r.spec.attempt or 1) > (newest[rev].spec.attempt or 1):
            newest[rev] = r
    return {rev for rev, r in newest.items() if r.status.phase == RunPhase.SUCCEEDED}


def decide_rollback(
    run: Run, runs: Sequence[Run], *, deployed_revision: int | None, revisions: Set[int]
) -> RollbackDecision:
    """Where a Failed run's release goes back to, or why it stays (never a blind `previous revision`)."""
    revision = run.spec.release.revision
    if run.spec.release.managed_by is not None:  # Flux upgrades back a revision it did not write: a loop
        return RollbackDecision(
            None, names.REASON_MANAGED_BY_FLUX, flux.describe_flux_rollback(run.spec.release.managed_by)
        )
    if run.spec.release.trigger == Trigger.ROLLBACK:
        return RollbackDecision(
            None,
            names.REASON_ROLLBACK_REVISION,
            f"revision {revision} is itself a rollback: not rolled back again",
        )
    if deployed_revision != revision:
        now = f"revision {deployed_revision}" if deployed_revision else "no revision"
        return RollbackDecision(None, names.REASON_NEWER_REVISION, f"{now} is deployed now: not rolled back")
    candidates = sorted((r for r in passing_revisions(runs) if r < revision and r in revisions), reverse=True)
    if not candidates:
        return RollbackDecision(
            None,
            names.REASON_NO_PASSING_REVISION,
            f"no revision before {revision} passed its tests: not rolled back",
        )
    target = candidates[0]
    return RollbackDecision(target, names.REASON_ROLLING_BACK, f"rolling back to revision {target}")


def rollback_revision(target: int, after: int, rolled_back_to: Mapping[int, int]) -> int | None:
    """The revision Helm wrote for `helm rollback <target>` after revision `after`, if there is one
    (`rolled_back_to`: revision → `Release.rollback_revision`, whichever helm major wrote it)."""
    found = [r for r, to in rolled_back_to.items() if r > after and to == target]
    return min(found, default=None)


def created_revision(deployed: int | None, failing: int) -> int | None:
    """The revision a successful `helm rollback` wrote, seen right after it: the deployed one now, when it
    is newer than the failing revision (else a newer upgrade or nothing is known: not recorded)."""
    return deployed if deployed is not None and deployed > failing else None


@dataclass(frozen=True)
class RollbackStep:
    """One pass's answer: the status to write, then (call) the helm rollback to run, and an Event."""

    status: RunStatus | None = None
    call: int | None = None  # the target revision: run `helm rollback` after `status` is written
    event: tuple[str, str] | None = None  # (type, message) of a RolledBack Event once `status` is written
    result: str = ""  # the metric's result label, once the outcome is final


@dataclass(frozen=True)
class Outcome:
    """A final outcome: the status to write, the Event's type and message, the metric's result."""

    status: RunStatus
    event: tuple[str, str]
    result: str

    def step(self) -> RollbackStep:
        return RollbackStep(status=self.status, event=self.event, result=self.result)


def decide_rollback_step(run: Run, history: History, *, now: datetime) -> RollbackStep:
    """Record the decision, record the intent and call helm, or recognise a call that already happened."""
    cond = get_condition(run.status, names.COND_ROLLED_BACK)
    record = run.status.rollback
    revision = run.spec.release.revision
    if cond is not None and record is None:  # an older CRD pruned status.rollback: never call helm blindly
        message = (
            "the rollback's record was not stored (is the E2ERun CRD up to date?): helm is not called again"
        )
        status = with_rollback(run.status, now, "False", names.REASON_ROLLBACK_FAILED, message)
        return RollbackStep(status=status, event=("Warning", message), result=names.REASON_ROLLBACK_FAILED)
    if cond is None or record is None:
        decision = decide_rollback(
            run, history.runs, deployed_revision=history.deployed, revisions=history.revisions
        )
        if decision.target is None:
            status = with_rollback(run.status, now, "False", decision.reason, decision.message)
            return RollbackStep(status=status, event=("Warning", decision.message), result=decision.reason)
        return _call(run.status, RollbackRecord(target=decision.target), now)
    done = rollback_revision(record.target, revision, history.rolled_back_to)
    if done is not None:  # helm ran before a restart: record it, never call again
        return record_rollback_outcome(run.status, record, now=now, revision=done).step()
    if history.deployed != revision:
        message = f"revision {history.deployed} was deployed before the rollback to {record.target} happened"
        status = with_rollback(run.status, now, "False", names.REASON_NEWER_REVISION, message)
        return RollbackStep(status=status, event=("Warning", message), result=names.REASON_NEWER_REVISION)
    if record.attempts >= MAX_HELM_CALLS:
        error = f"helm rollback to revision {record.target} did not complete after {record.attempts} attempts"
        return record_rollback_outcome(run.status, record, now=now, error=error).step()
    return _call(run.status, record, now)


def _call(status: RunStatus, record: RollbackRecord, now: datetime) -> RollbackStep:
    intent = record.model_copy(update={"attempts": record.attempts + 1})
    message = f"rolling back to revision {record.target} (attempt {intent.attempts})"
    new = with_rollback(status, now, "Unknown", names.REASON_ROLLING_BACK, message)
    new.rollback = intent
    return RollbackStep(status=new, call=record.target)


def record_rollback_outcome(
    status: RunStatus, record: RollbackRecord, *, now: datetime, error: str = "", revision: int | None = None
) -> Outcome:
    """The outcome of a helm call (or of finding its revision): True/RolledBack or False/RollbackFailed."""
    if error:
        message = f"rollback to revision {record.target} failed: {error}"
        new = with_rollback(status, now, "False", names.REASON_ROLLBACK_FAILED, message)
        new.rollback = record
        return Outcome(new, ("Warning", message), names.REASON_ROLLBACK_FAILED)
    created = f" (revision {revision})" if revision else ""
    message = f"rolled back to revision {record.target}{created}"
    new = with_rollback(status, now, "True", names.REASON_ROLLED_BACK, message)
    new.rollback = record.model_copy(update={"revision": revision})
    return Outcome(new, ("Normal", message), names.REASON_ROLLED_BACK)


def with_rollback(status: RunStatus, now: datetime, value: str, reason: str, message: str) -> RunStatus:
    new = status.model_copy(deep=True)
    condition = Condition(
        type=names.COND_ROLLED_BACK, status=value, reason=reason, message=message, last_transition_time=now
    )
    new.conditions = set_condition(new.conditions, condition)
    return new


def summarize_helm_error(stderr: str) -> str:
    """The first `Error:` line of helm's stderr, else its first line that is not a log record, bounded: its
    later lines may quote manifests or values. Helm 4 logs with slog before its error (`level=WARN
    msg="--wait=false is deprecated ..."`, helm v4.3.1 pkg/cmd/flags.go), Helm 3 prints the error alone."""
    lines = [clean for line in stderr.splitlines() if (clean := _CONTROL.sub(" ", line).strip())]
    errors = [line for line in lines if line.startswith("Error:")]
    others = [line for line in lines if not _LOG_RECORD.match(line)]
    if not lines:
        return "helm rollback failed without a message"
    line = (errors or others or lines)[0]
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 3] + "..."


def build_rollback_argv(helm: str, *, release: str, namespace: str, revision: int) -> list[str]:
    """`helm rollback` as a person would run it, flags first and `--` before the positionals (a release
    named like a flag stays a name); no wait (the rollback revision gets its own run)."""
    return [helm, "rollback", "--namespace", namespace, "--wait=false", "--", release, str(revision)]
