"""The readiness gate's opening on a pass whose write is held: the run's test pods then say it opened, and
no rollout is looked at again for it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from fresh_pods import T0, observe, planned, pod, writes
from policies import MAILING as POLICY
from runs import make_run

from helm_e2e.core.lifecycle.actions import (
    CreateTest,
    Rollout,
)
from helm_e2e.core.lifecycle.decide import decide_run
from helm_e2e.core.lifecycle.gate import opened_by_pods
from helm_e2e.core.model import names
from helm_e2e.core.model.run import ReadinessMode, ReadinessSpec
from helm_e2e.core.results.run_tests import TestObjects, get_condition


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


def test_a_run_without_the_gate_or_without_pods_is_left_as_it_is() -> None:
    run = make_run("a")
    assert opened_by_pods(run, TestObjects(pods={"a": pod("a", "Running")}).first_created()) is run
    assert opened_by_pods(gated(run), TestObjects().first_created()).status == gated(run).status
