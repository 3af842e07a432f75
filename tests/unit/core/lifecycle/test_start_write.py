"""A run's first status write waits up to the grace for its tests' first change and goes out with it: one
write (and one E2ERun event, one pass) less per run whose pod starts within the grace; a slow pod gets the
started write at the grace, and `startedAt` is its first pod's creation either way."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from policies import MAILING as POLICY
from runs import make_run

from helm_e2e.core.lifecycle.actions import (
    CreateTest,
    Observed,
    PatchStatus,
    Replanned,
    Requeue,
    Rollout,
)
from helm_e2e.core.lifecycle.decide import decide_run
from helm_e2e.core.lifecycle.start_write import START_WRITE_GRACE_SECONDS, first_created
from helm_e2e.core.model import names
from helm_e2e.core.model.run import ReadinessMode, ReadinessSpec
from helm_e2e.core.model.run_status import RunPhase, TestPhase
from helm_e2e.core.outcomes import rollback as rollbacks
from helm_e2e.core.plan.build import PlannedTest
from helm_e2e.core.results.run_tests import TestObjects, get_condition

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
NO_HISTORY = rollbacks.History(deployed=None, revisions=set())


def pod(test: str, phase: str, *, created: datetime = T0) -> dict[str, Any]:
    meta = {"name": f"web-2-{test}", "labels": {names.TEST_LABEL: test}, "creationTimestamp": _iso(created)}
    return {"metadata": meta, "status": {"phase": phase, "startTime": _iso(created)}}


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


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


def test_the_pass_that_creates_the_pods_holds_the_started_write_for_the_grace() -> None:
    actions = decide_run(make_run("a"), observe(T0, {}, plan={"a": planned("a")}), POLICY)
    assert [type(a) for a in actions if isinstance(a, CreateTest)] == [CreateTest]
    assert writes(actions) == []
    assert requeue(actions) == START_WRITE_GRACE_SECONDS


def test_a_pod_that_runs_within_the_grace_is_said_with_the_start_in_one_write() -> None:
    now = T0 + timedelta(seconds=0.8)
    [write] = writes(decide_run(make_run("a"), observe(now, {"a": pod("a", "Running")}), POLICY))
    assert write.status.phase == RunPhase.RUNNING
    assert [t.phase for t in write.status.tests] == [TestPhase.RUNNING]
    assert write.status.started_at == T0  # the pod's creation, not the time of the write


def test_a_pod_still_pending_within_the_grace_holds_the_write_for_what_is_left() -> None:
    now = T0 + timedelta(seconds=0.5)
    actions = decide_run(make_run("a"), observe(now, {"a": pod("a", "Pending")}), POLICY)
    assert writes(actions) == []
    assert requeue(actions) == START_WRITE_GRACE_SECONDS - 0.5


def test_a_pod_still_pending_at_the_grace_gets_the_started_write() -> None:
    now = T0 + timedelta(seconds=START_WRITE_GRACE_SECONDS)
    [write] = writes(decide_run(make_run("a"), observe(now, {"a": pod("a", "Pending")}), POLICY))
    assert write.status.phase == RunPhase.RUNNING
    assert [t.phase for t in write.status.tests] == [TestPhase.PENDING]
    assert write.status.started_at == T0


def test_after_a_restart_a_run_whose_pods_are_older_than_the_grace_is_written_at_once() -> None:
    """The started write was never made (killed within the grace): the next process finds the pod."""
    now = T0 + timedelta(minutes=3)
    [write] = writes(decide_run(make_run("a"), observe(now, {"a": pod("a", "Pending")}), POLICY))
    assert write.status.started_at == T0  # the deadline counts from the pods, not from the restart


def test_a_run_that_started_keeps_its_start_time() -> None:
    run = make_run("a")
    earlier = T0 - timedelta(minutes=1)
    status = run.status.model_copy(update={"phase": RunPhase.RUNNING, "started_at": earlier})
    run = run.model_copy(update={"status": status})
    [write] = writes(decide_run(run, observe(T0 + timedelta(seconds=1), {"a": pod("a", "Running")}), POLICY))
    assert write.status.started_at == earlier


def gated(run: Any) -> Any:
    return run.model_copy(
        update={"spec": run.spec.model_copy(update={"readiness": ReadinessSpec(mode=ReadinessMode.ROLLOUT)})}
    )


def test_the_pass_that_opens_the_gate_holds_its_write_and_the_pods_say_it_opened() -> None:
    run = gated(make_run("a"))
    observed = replace(observe(T0, {}, plan={"a": planned("a")}), rollout=Rollout(ready=True))
    opening = decide_run(run, observed, POLICY)
    assert any(isinstance(a, CreateTest) for a in opening)
    assert writes(opening) == []
    # the next pass looks at no rollout (no FetchRollout: the pods exist) and writes the gate open
    [write] = writes(decide_run(run, observe(T0 + timedelta(seconds=1), {"a": pod("a", "Running")}), POLICY))
    ready = get_condition(write.status, names.COND_RELEASE_READY)
    assert ready is not None
    assert ready.status == "True"
    assert ready.reason == names.EVENT_ROLLED_OUT
    assert ready.last_transition_time == T0


def test_a_gate_still_closed_is_written_at_once() -> None:
    run = gated(make_run("a"))
    pending = Rollout(ready=False, pending="deployment/web: 0 of 2")
    observed = replace(observe(T0, {}, plan={"a": planned("a")}), rollout=pending)
    [write] = writes(decide_run(run, observed, POLICY))
    ready = get_condition(write.status, names.COND_RELEASE_READY)
    assert ready is not None
    assert ready.status == "False"


def test_a_run_whose_tests_flux_runs_is_written_at_once() -> None:
    """No pod of ours will ever change: there is nothing to wait for."""
    run = make_run("a")
    tests = [t.model_copy(update={"source": names.TEST_SOURCE_FLUX}) for t in run.spec.tests]
    run = run.model_copy(update={"spec": run.spec.model_copy(update={"tests": tests})})
    actions = decide_run(run, replace(observe(T0, {}), flux={}), POLICY)
    [write] = writes(actions)
    assert write.status.phase == RunPhase.RUNNING
    assert requeue(actions) != START_WRITE_GRACE_SECONDS


def test_first_created_is_the_earliest_pod_or_job() -> None:
    later = T0 + timedelta(seconds=3)
    objects = TestObjects(pods={"a": pod("a", "Running", created=later), "b": pod("b", "Pending")})
    assert first_created(objects) == T0
    assert first_created(TestObjects()) is None
