"""core/plan/requested.py: a scheduled suite's check runs its own suite's tests only."""

from __future__ import annotations

from helm_e2e.core.model.run import RequestTrigger, RunRequest
from helm_e2e.core.plan.build import Plan, PlannedTest
from helm_e2e.core.plan.requested import plan_for_request


def planned(name: str, source: str) -> PlannedTest:
    return PlannedTest(name=name, source=source, timeout_seconds=60, pod_spec={})


PLAN = Plan(
    image_tag="1", tests=[planned("smoke", "hook"), planned("api", "suite/api"), planned("ui", "suite/ui")]
)


def test_a_suites_check_runs_its_tests_only_and_nothing_when_it_tests_none() -> None:
    check = RunRequest(trigger=RequestTrigger.SCHEDULE, token="t", suite="api")
    only = plan_for_request(PLAN, check)
    assert only is not None
    assert [t.name for t in only.tests] == ["api"]
    assert plan_for_request(PLAN, check.model_copy(update={"suite": "other"})) is None


def test_a_rerun_or_a_new_revision_runs_the_whole_plan() -> None:
    assert plan_for_request(PLAN, None) is PLAN
    assert plan_for_request(PLAN, RunRequest(trigger=RequestTrigger.RERUN, token="t")) is PLAN
