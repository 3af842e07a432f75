"""A run's first status write waits up to the grace for its tests' first change and goes out with it: one
write (and one E2ERun event, one pass) less per run whose pod starts within the grace; a slow pod gets the
started write at the grace, and `startedAt` is its first pod's creation either way."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from fresh_pods import T0, observe, planned, pod, requeue, writes
from policies import MAILING as POLICY
from runs import make_run

from helm_e2e.core.lifecycle.actions import (
    CreateTest,
)
from helm_e2e.core.lifecycle.decide import decide_run
from helm_e2e.core.lifecycle.start_write import START_WRITE_GRACE_SECONDS
from helm_e2e.core.model import names
from helm_e2e.core.model.run_status import RunPhase, TestPhase


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


def test_a_run_whose_tests_flux_runs_is_written_at_once() -> None:
    """No pod of ours will ever change: there is nothing to wait for."""
    run = make_run("a")
    tests = [t.model_copy(update={"source": names.TEST_SOURCE_FLUX}) for t in run.spec.tests]
    run = run.model_copy(update={"spec": run.spec.model_copy(update={"tests": tests})})
    actions = decide_run(run, replace(observe(T0, {}), flux={}), POLICY)
    [write] = writes(actions)
    assert write.status.phase == RunPhase.RUNNING
    assert requeue(actions) != START_WRITE_GRACE_SECONDS
