"""E2ESuite status: writes the `Valid` condition and its Event as core/plan/suite_validity.py decides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog

from helm_e2e.clients.kube import ObjectRef
from helm_e2e.clients.kube_port import KubePort
from helm_e2e.core.model import names
from helm_e2e.core.model.suite import Suite
from helm_e2e.core.plan import build as planning
from helm_e2e.core.plan import suite_validity
from helm_e2e.core.plan.suite_validity import SetValid

log = structlog.get_logger(__name__)


async def _set_valid(kube: KubePort, decided: SetValid, *, now: datetime, uid: str = "") -> None:
    suite = decided.suite
    status = {
        "observedGeneration": suite.generation,
        "conditions": [
            {
                "type": names.COND_VALID,
                "status": "True" if decided.valid else "False",
                "reason": decided.reason,
                "message": decided.message[: suite_validity.MESSAGE_LIMIT],
                "lastTransitionTime": now.isoformat(),
                "observedGeneration": suite.generation,
            }
        ],
    }
    await kube.patch_suite_status(suite.namespace, suite.name, status)
    if decided.valid:
        return
    ref = ObjectRef(
        kind=names.SUITE_KIND,
        api_version=names.API_VERSION,
        namespace=suite.namespace,
        name=suite.name,
        uid=uid,
    )
    await kube.post_event(ref, type="Warning", reason=decided.reason, message=decided.message)
    log.warning(
        "suite.invalid",
        suite=suite.name,
        namespace=suite.namespace,
        reason=decided.reason,
        error=decided.message,
    )


async def on_suite_event(kube: KubePort, body: Mapping[str, Any], *, now: datetime) -> None:
    """Schema-check a suite when it changes. Template errors are only known when a run is planned."""
    suite = suite_validity.suite_from_body(body)
    decided = suite_validity.decide_on_edit(suite, body.get("status") or {})
    if decided is not None:
        await _set_valid(kube, decided, now=now, uid=(body.get("metadata") or {}).get("uid", ""))


async def record_suite_problems(
    kube: KubePort, suites: Sequence[Suite], plan: planning.Plan, *, now: datetime
) -> None:
    """After planning: Valid=False (+ Event) for suites that failed to render, Valid=True for suites used."""
    for decided in suite_validity.decide_after_plan(suites, plan):
        await _set_valid(kube, decided, now=now)
