"""E2ESuite `Valid` condition: whether to rewrite it, and to what (pure; reconcile/suite_status.py writes).

Two moments decide it: a suite's own edit (its schema, checked at once) and a run's planning (its
templates, known only when rendered for a release). A write is decided only when it changes something,
so a suite's watch event does not loop on the operator's own status patch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from helm_e2e.core.model import names
from helm_e2e.core.model.suite import Suite
from helm_e2e.core.plan.build import Plan
from helm_e2e.core.plan.suites import validate_suite
from helm_e2e.errors import SuiteInvalid

MESSAGE_LIMIT = 1024  # characters of a condition's message


@dataclass(frozen=True)
class SetValid:
    """Write the suite's `Valid` condition (and, when not valid, a Warning Event)."""

    suite: Suite
    valid: bool
    reason: str
    message: str


def suite_from_body(body: Mapping[str, Any]) -> Suite:
    meta = body.get("metadata") or {}
    return Suite(
        name=meta["name"],
        namespace=meta["namespace"],
        generation=meta.get("generation", 0),
        spec=body.get("spec") or {},
    )


def valid_condition(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == names.COND_VALID:
            return cond  # type: ignore[no-any-return]
    return None


def decide_on_edit(suite: Suite, status: Mapping[str, Any]) -> SetValid | None:
    """A suite's schema checked when it changes (template errors are only known when a run is planned):
    invalid is written unless that very message is there already; valid when nothing is written yet, or
    it was not valid and either the suite was edited since or its schema was the problem."""
    current = valid_condition(status)
    try:
        validate_suite(suite)
    except SuiteInvalid as e:
        written = current is not None and current.get("status") == "False"
        same = written and current.get("message") == e.message[:MESSAGE_LIMIT]  # type: ignore[union-attr]
        return None if same else SetValid(suite, False, names.SUITE_SCHEMA_INVALID, e.message)
    edited = status.get("observedGeneration") != suite.generation
    if current is None or (
        current.get("status") != "True" and (edited or current.get("reason") == names.SUITE_SCHEMA_INVALID)
    ):
        return SetValid(suite, True, names.SUITE_VALID, "schema is valid")
    return None


def decide_after_plan(suites: Sequence[Suite], plan: Plan) -> list[SetValid]:
    """After a run was planned: not valid for the suites that failed to render, valid for those used."""
    problems = {p.suite: p.message for p in plan.problems}
    decided = []
    for suite in suites:
        if suite.name in problems:
            decided.append(SetValid(suite, False, names.SUITE_TEMPLATE_ERROR, problems[suite.name]))
        elif suite.name in plan.used_suites:
            decided.append(SetValid(suite, True, names.SUITE_VALID, "rendered for the last run"))
    return decided
