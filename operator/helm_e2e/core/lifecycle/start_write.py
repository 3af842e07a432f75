"""When a run's first status write (it started: `Running`, `startedAt`, its tests `Pending`) goes out.

On a warm node a test pod runs within a second of its creation, so the started write was followed at once
by the one that says the test is `Running`: two writes, two E2ERun events and two passes where one says
both. The started write now waits up to `START_WRITE_GRACE_SECONDS` for the tests' first change and goes
out with it; a pod that takes longer (scheduling, an image pull) gets it at the grace, as before. Nothing
is lost in the wait: the pods are named by the run and found again by any pass (after a restart, too), and
`startedAt` (and so the deadline) is the first pod's creation, not the time of the write.
"""

from __future__ import annotations

from datetime import datetime

from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import RunPhase, RunStatus, TestPhase
from helm_e2e.core.results.run_tests import Step

START_WRITE_GRACE_SECONDS = 2.0


def started_from_pods(run: Run, born: datetime | None, now: datetime) -> Run:
    """The run with its `startedAt` from its first pod's creation while none is written (the started write
    may be held, or a restart may have come in between): the deadline counts from when the tests started,
    not from whenever the write goes out. `born`: `TestObjects.first_created`."""
    if run.status.started_at is not None or born is None:
        return run
    return run.model_copy(update={"status": run.status.model_copy(update={"started_at": min(born, now)})})


def hold_started_write(
    before: RunStatus, step: Step, born: datetime | None, *, creating: bool, now: datetime
) -> float | None:
    """Seconds to hold the run's first write for its tests' first change, or None: write it now.

    Held only while nothing but "started" (and the readiness gate's opening, `gate.opened_by_pods`) would be
    written: the run was Pending, every test is still Pending, no Event or deletion rides on the write, and
    its tests' pods are being created by this very pass (`creating`) or were created less than the grace
    ago (`born`: `TestObjects.first_created`)."""
    if before.phase != RunPhase.PENDING or step.finished or step.events:
        return None
    if step.delete_pods or step.delete_jobs or not step.status.tests:
        return None
    if any(t.phase != TestPhase.PENDING for t in step.status.tests):
        return None
    if born is None:
        return START_WRITE_GRACE_SECONDS if creating else None
    left = START_WRITE_GRACE_SECONDS - (now - born).total_seconds()
    return left if left > 0 else None
