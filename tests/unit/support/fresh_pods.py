"""Passes of a run whose tests' pods were just created: pods stamped with their creation time, as the API
server stamps them (when a run's first write goes out, and whether its gate opened, are read from it), an
observation with nothing left to fetch, and what a decision wrote or requeued."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pods import iso

from helm_e2e.core.lifecycle.actions import Observed, PatchStatus, Replanned, Requeue
from helm_e2e.core.model import names
from helm_e2e.core.outcomes import rollback as rollbacks
from helm_e2e.core.plan.build import PlannedTest
from helm_e2e.core.results.run_tests import TestObjects

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
NO_HISTORY = rollbacks.History(deployed=None, revisions=set())


def pod(test: str, phase: str, *, created: datetime = T0) -> dict[str, Any]:
    meta = {"name": f"web-2-{test}", "labels": {names.TEST_LABEL: test}, "creationTimestamp": iso(created)}
    return {"metadata": meta, "status": {"phase": phase, "startTime": iso(created)}}


def planned(name: str) -> PlannedTest:
    return PlannedTest(
        name=name, source="hook", timeout_seconds=600, pod_spec={"containers": [{"name": "t", "image": "b"}]}
    )


def observe(now: datetime, pods: dict[str, Any], plan: dict[str, PlannedTest] | None = None) -> Observed:
    return Observed(
        now=now,
        objects=TestObjects(pods=pods),
        logs={},
        events={},
        plan=Replanned(tests=plan) if plan is not None else None,
        history=NO_HISTORY,
    )


def writes(actions: list[Any]) -> list[PatchStatus]:
    return [a for a in actions if isinstance(a, PatchStatus)]


def requeue(actions: list[Any]) -> float:
    return min(a.after for a in actions if isinstance(a, Requeue))
