"""E2ESuite status: the `Valid` condition and Events (shell; validation itself is core.plan)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog

from helm_e2e.clients.kube import ObjectRef
from helm_e2e.clients.kube_port import KubePort
from helm_e2e.core.model import names
from helm_e2e.core.model.schema import Suite
from helm_e2e.core.plan import build as planning
from helm_e2e.errors import SuiteInvalid

log = structlog.get_logger(__name__)


def _valid_condition(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for cond in (body.get("status") or {}).get("conditions") or []:
        if cond.get("type") == names.COND_VALID:
            return cond  # type: ignore[no-any-return]
    return None


async def _set_valid(
    kube: KubePort, suite: Suite, *, valid: bool, reason: str, message: str, now: datetime, uid: str = ""
) -> None:
    status = {
        "observedGeneration": suite.generation,
        "conditions": [
            {
                "type": names.COND_VALID,
                "status": "True" if valid else "False",
                "reason": reason,
                "message": message[:1024],
                "lastTransitionTime": now.isoformat(),
                "observedGeneration": suite.generation,
            }
        ],
    }
    await kube.patch_suite_status(suite.namespace, suite.name, status)
    if not valid:
        ref = ObjectRef(
            kind=names.SUITE_KIND,
            api_version=names.API_VERSION,
            namespace=suite.namespace,
            name=suite.name,
            uid=uid,
        )
        await kube.post_event(ref, type="Warning", reason=reason, message=message)
        log.warning(
            "suite.invalid", suite=suite.name, namespace=suite.namespace, reason=reason, error=message
        )


async def on_suite_event(kube: KubePort, body: Mapping[str, Any], *, now: datetime) -> None:
    """Schema-check a suite when it changes. Template errors are only known when a run is planned."""
    meta = body.get("metadata", {})
    suite = Suite(
        name=meta["name"],
        namespace=meta["namespace"],
        generation=meta.get("generation", 0),
        spec=body.get("spec") or {},
    )
    current = _valid_condition(body)
    try:
        planning.validate_suite(suite)
    except SuiteInvalid as e:
        if not (current and current.get("status") == "False" and current.get("message") == e.message[:1024]):
            await _set_valid(
                kube,
                suite,
                valid=False,
                reason=names.SUITE_SCHEMA_INVALID,
                message=e.message,
                now=now,
                uid=meta.get("uid", ""),
            )
        return
    edited = (body.get("status") or {}).get("observedGeneration") != suite.generation
    if current is None or (
        current.get("status") != "True" and (edited or current.get("reason") == names.SUITE_SCHEMA_INVALID)
    ):
        await _set_valid(
            kube, suite, valid=True, reason=names.SUITE_VALID, message="schema is valid", now=now
        )


async def record_suite_problems(
    kube: KubePort, suites: Sequence[Suite], plan: planning.Plan, *, now: datetime
) -> None:
    """After planning: Valid=False (+ Event) for suites that failed to render, Valid=True for suites used."""
    problems = {p.suite: p.message for p in plan.problems}
    for suite in suites:
        if suite.name in problems:
            await _set_valid(
                kube,
                suite,
                valid=False,
                reason=names.SUITE_TEMPLATE_ERROR,
                message=problems[suite.name],
                now=now,
            )
        elif suite.name in plan.used_suites:
            await _set_valid(
                kube,
                suite,
                valid=True,
                reason=names.SUITE_VALID,
                message="rendered for the last run",
                now=now,
            )
