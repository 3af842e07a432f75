"""The plan of a requested run (pure): a scheduled suite's check runs its own suite's tests only."""

from __future__ import annotations

from helm_e2e.core.model.run import RunRequest
from helm_e2e.core.plan.build import Plan


def plan_for_request(plan: Plan, request: RunRequest | None) -> Plan | None:
    """The plan to create the run from; None: nothing to run (the request's suite does not test the
    release). A request without a suite (a re-run, a new revision) runs the whole plan."""
    if request is None or not request.suite:
        return plan
    tests = [t for t in plan.tests if t.source == f"suite/{request.suite}"]
    return plan.model_copy(update={"tests": tests}) if tests else None
