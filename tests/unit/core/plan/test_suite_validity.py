"""core/plan/suite_validity.py: when a suite's `Valid` condition is rewritten, and to what."""

from __future__ import annotations

from typing import Any

import pytest

from helm_e2e.core.model import names
from helm_e2e.core.model.suite import Suite
from helm_e2e.core.plan.build import Plan, SuiteProblem
from helm_e2e.core.plan.suite_validity import SetValid, decide_after_plan, decide_on_edit, suite_from_body

GOOD = {"tests": [{"name": "api", "template": {"containers": [{"name": "t", "image": "busybox"}]}}]}
BAD = {"tests": [{"name": "api"}]}


def suite(spec: dict[str, Any], generation: int = 2) -> Suite:
    return Suite(name="api", namespace="shop", generation=generation, spec=spec)


def valid(status: str, reason: str, message: str = "", generation: int = 2) -> dict[str, Any]:
    condition = {"type": names.COND_VALID, "status": status, "reason": reason, "message": message}
    return {"observedGeneration": generation, "conditions": [condition]}


def test_a_suite_body_is_read_as_a_suite() -> None:
    body = {"metadata": {"name": "api", "namespace": "shop", "generation": 4}, "spec": GOOD}
    assert suite_from_body(body) == Suite(name="api", namespace="shop", generation=4, spec=GOOD)


def test_an_invalid_schema_is_written_unless_that_very_message_is_there() -> None:
    decided = decide_on_edit(suite(BAD), {})
    assert decided is not None
    assert (decided.valid, decided.reason) == (False, names.SUITE_SCHEMA_INVALID)
    assert decide_on_edit(suite(BAD), valid("False", names.SUITE_SCHEMA_INVALID, decided.message)) is None
    assert (
        decide_on_edit(suite(BAD), valid("False", names.SUITE_SCHEMA_INVALID, "an older problem")) is not None
    )


@pytest.mark.parametrize(
    ("status", "writes"),
    [
        ({}, True),  # never written
        (valid("True", names.SUITE_VALID), False),  # nothing changes
        (valid("False", names.SUITE_SCHEMA_INVALID), True),  # its schema was the problem: fixed
        (valid("False", names.SUITE_TEMPLATE_ERROR), False),  # a plan's finding, not edited since: stays
        (valid("False", names.SUITE_TEMPLATE_ERROR, generation=1), True),  # edited since: checked again
    ],
    ids=["unwritten", "valid", "schema-fixed", "template-error-kept", "template-error-edited"],
)
def test_a_valid_schema_is_written_when_it_changes_something(status: dict[str, Any], writes: bool) -> None:
    decided = decide_on_edit(suite(GOOD), status)
    assert (decided is not None) is writes
    if decided is not None:
        assert decided == SetValid(suite(GOOD), True, names.SUITE_VALID, "schema is valid")


def test_after_a_plan_the_failed_suites_are_invalid_and_the_used_valid() -> None:
    suites = [suite(GOOD).model_copy(update={"name": n}) for n in ("broken", "used", "unused")]
    plan = Plan(image_tag="1", used_suites=["used"], problems=[SuiteProblem(suite="broken", message="boom")])
    assert [(d.suite.name, d.valid, d.reason, d.message) for d in decide_after_plan(suites, plan)] == [
        ("broken", False, names.SUITE_TEMPLATE_ERROR, "boom"),
        ("used", True, names.SUITE_VALID, "rendered for the last run"),
    ]
