"""The readiness gate's condition (`ReleaseReady`), and its opening as the run's test pods say it."""

from __future__ import annotations

from datetime import datetime

from helm_e2e.core.model import names
from helm_e2e.core.model.run import ReadinessMode, Run
from helm_e2e.core.model.run_status import Condition
from helm_e2e.core.results.run_tests import get_condition, set_condition

ROLLED_OUT = "the release is rolled out"


def ready_condition(status: str, reason: str, message: str, now: datetime) -> Condition:
    return Condition(
        type=names.COND_RELEASE_READY, status=status, reason=reason, message=message, last_transition_time=now
    )


def opened_by_pods(run: Run, born: datetime | None) -> Run:
    """The run with its readiness gate open if its test pods exist: they are created only once it opened,
    on a pass whose write may have been held (so the gate's `True` was not written yet); no rollout is
    looked at again for it, and the held write says it. `born`: `TestObjects.first_created`."""
    ready = get_condition(run.status, names.COND_RELEASE_READY)
    if run.spec.readiness.mode != ReadinessMode.ROLLOUT or (ready is not None and ready.status == "True"):
        return run
    if born is None:
        return run
    opened = ready_condition("True", names.EVENT_ROLLED_OUT, ROLLED_OUT, born)
    conditions = set_condition(run.status.conditions, opened)
    return run.model_copy(update={"status": run.status.model_copy(update={"conditions": conditions})})
