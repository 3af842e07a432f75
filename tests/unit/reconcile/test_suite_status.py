"""reconcile/suite_status.py: the suites' `Valid` condition and Events written as the core decides."""

from __future__ import annotations

from typing import Any

from fake_kube import NOW, FakeKube

from helm_e2e.core.model import names
from helm_e2e.core.model.suite import Suite
from helm_e2e.core.plan.build import Plan, SuiteProblem
from helm_e2e.reconcile.suite_status import on_suite_event, record_suite_problems

NS = "shop"


def suite_body(
    spec: dict[str, Any], *, generation: int = 1, status: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": "api", "namespace": NS, "generation": generation, "uid": "u1"}
    }
    return {**body, "spec": spec, "status": status or {}}


GOOD = {"tests": [{"name": "api", "template": {"containers": [{"name": "t", "image": "busybox"}]}}]}
BAD = {"tests": [{"name": "api"}]}  # no template


async def edited(kube: FakeKube, body: dict[str, Any]) -> dict[str, Any]:
    """The suite's event handled, then its status as the fake stored it (what the next event carries)."""
    kube.suites[NS] = [body]
    await on_suite_event(kube, body, now=NOW)
    return dict(kube.suites[NS][0].get("status") or {})


async def test_an_invalid_suite_is_marked_once_with_a_warning_event() -> None:
    kube = FakeKube()
    status = await edited(kube, suite_body(BAD))
    condition = status["conditions"][0]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        names.COND_VALID,
        "False",
        names.SUITE_SCHEMA_INVALID,
    )
    assert "spec.tests[0].template" in condition["message"]
    assert status["observedGeneration"] == 1
    assert kube.reasons() == [names.SUITE_SCHEMA_INVALID]
    await edited(kube, suite_body(BAD, status=status))  # its own status patch comes back as an event
    assert kube.reasons() == [names.SUITE_SCHEMA_INVALID]  # nothing written again


async def test_a_fixed_suite_is_valid_again_without_an_event() -> None:
    kube = FakeKube()
    status = await edited(kube, suite_body(BAD))
    status = await edited(kube, suite_body(GOOD, generation=2, status=status))
    condition = status["conditions"][0]
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "True",
        names.SUITE_VALID,
        "schema is valid",
    )
    assert kube.reasons() == [names.SUITE_SCHEMA_INVALID]


async def test_a_template_error_found_by_a_plan_is_not_undone_by_the_suites_own_status_event() -> None:
    kube = FakeKube()
    failed = {
        "observedGeneration": 1,
        "conditions": [{"type": names.COND_VALID, "status": "False", "reason": names.SUITE_TEMPLATE_ERROR}],
    }
    await edited(kube, suite_body(GOOD, status=failed))
    assert kube.suites[NS][0]["status"] == failed  # not edited since: the plan's finding stays


async def test_after_a_plan_failed_suites_are_invalid_and_used_ones_valid() -> None:
    kube = FakeKube()
    suites = [Suite(name=n, namespace=NS, generation=3, spec={}) for n in ("broken", "used", "unused")]
    kube.suites[NS] = [{"metadata": {"name": s.name, "namespace": NS}} for s in suites]
    plan = Plan(
        image_tag="1", used_suites=["used"], problems=[SuiteProblem(suite="broken", message="x" * 2000)]
    )
    await record_suite_problems(kube, suites, plan, now=NOW)
    written = {b["metadata"]["name"]: b.get("status") for b in kube.suites[NS]}
    assert written["unused"] is None
    assert written["broken"]["conditions"][0]["reason"] == names.SUITE_TEMPLATE_ERROR
    assert len(written["broken"]["conditions"][0]["message"]) == 1024  # bounded
    assert written["used"]["conditions"][0]["message"] == "rendered for the last run"
    assert written["used"]["observedGeneration"] == 3
    assert kube.reasons() == [names.SUITE_TEMPLATE_ERROR]
