"""Ending runs from outside their own pass (pure): supersede, cancel, give up after repeated reconcile
failures, refuse a run that does not parse, and prune a release's history of final runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from helm_e2e.core.lifecycle.actions import Action, EndRun, PatchStatus, PostEvent, Requeue
from helm_e2e.core.model import names
from helm_e2e.core.model.release import Trigger
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import RunPhase, RunStatus
from helm_e2e.core.results.run_tests import end_run

MAX_RECONCILE_FAILURES = 5  # then the run ends Error: never an endless traceback loop
GIVE_UP_REQUEUE_SECONDS = 1.0  # after ending the run: its next pass deletes its pods
MAX_INVALID_FIELDS = 5  # named in a refusal of a run that does not parse (names, never values)


def decide_end(run: Run, *, phase: RunPhase, reason: str, message: str, now: datetime) -> list[Action]:
    """Supersede, cancel or fail an active run: its status first; its pods go on the run's next pass."""
    if run.status.phase.is_final:
        return []
    status = end_run(run, phase=phase, reason=reason, message=message, now=now)
    kind = "Warning" if phase in (RunPhase.ERROR, RunPhase.REFUSED) else "Normal"
    return [PatchStatus(status), PostEvent(kind, reason, message)]


def decide_reconcile_failure(failures: int, error: str) -> list[EndRun | Requeue]:
    """After the `failures`-th pass in a row raised `error` (a type name): retry with exponential backoff,
    and at the bound end the run Error (then look once more, soon, to delete its pods)."""
    if failures < MAX_RECONCILE_FAILURES:
        return [Requeue(float(2**failures))]
    message = f"the operator failed {MAX_RECONCILE_FAILURES} times on this run ({error})"
    return [EndRun(RunPhase.ERROR, names.REASON_RECONCILE_FAILED, message), Requeue(GIVE_UP_REQUEUE_SECONDS)]


def decide_unreadable(phase: object, invalid: Sequence[str], *, now: datetime) -> list[Action]:
    """A run body that is not an E2ERun the operator writes (`invalid`: the fields that failed, by name):
    it ends Refused, once, and nothing in it is used."""
    if phase == RunPhase.REFUSED:
        return []
    fields = sorted(set(invalid))[:MAX_INVALID_FIELDS]
    why = f"the run is not one the helm-e2e operator writes (invalid: {', '.join(fields)})"
    status = RunStatus(phase=RunPhase.REFUSED, message=why, completed_at=now)
    return [PatchStatus(status), PostEvent("Warning", names.REASON_REFUSED, why)]


def decide_superseded(runs: Sequence[Run], *, revision: int, attempt: int = 1) -> list[Run]:
    """Active runs of older revisions, or older attempts of this one: a newer run replaces them."""
    newer = (revision, attempt)
    return [
        r
        for r in runs
        if (r.spec.release.revision, r.spec.attempt or 1) < newer and not r.status.phase.is_final
    ]


def may_supersede(*, revision: int, attempt: int, trigger: Trigger) -> bool:
    """Whether a new run can have older runs to supersede at all: a Helm release's first attempt of its
    first revision cannot (Helm numbers revisions from 1), so its creation lists no runs."""
    return trigger == Trigger.SYNC or (revision, attempt) > (1, 1)


def decide_prune(runs: Sequence[Run], *, limit: int, keep: str) -> list[str]:
    """Names of the runs beyond the newest `limit` (by revision); active runs and `keep` are never pruned."""
    ordered = sorted(runs, key=lambda r: (r.spec.release.revision, r.spec.attempt or 1, r.name), reverse=True)
    return [r.name for r in ordered[limit:] if r.status.phase.is_final and r.name != keep]
