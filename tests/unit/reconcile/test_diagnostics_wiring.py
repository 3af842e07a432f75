"""Failure diagnostics through the executor: decided in core (FetchEvents), fetched once, kept in status.

Driven through the in-memory fake of the Kube port, as tests/unit/reconcile/test_controller.py does.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import timedelta
from typing import Any

import pytest
import runs
from controller_harness import NS, RUN, deploy, deployed_secret, make_controller, passing_hook, status
from fake_kube import Clock, FakeKube
from pods import T0, pod

from helm_e2e.core.lifecycle import decide
from helm_e2e.core.model import names
from helm_e2e.core.model.run import TestSource
from helm_e2e.core.model.run_codec import run_from_body
from helm_e2e.core.results import run_tests as results
from helm_e2e.core.results.run_tests import TestObjects

POD = "web-1-smoke"


def pod_event(reason: str, message: str, *, at: str = "2026-11-25T10:05:02Z") -> dict[str, Any]:
    return {
        "involvedObject": {"kind": "Pod", "name": POD},
        "type": "Warning",
        "reason": reason,
        "message": message,
        "count": 2,
        "lastTimestamp": at,
    }


async def started(kube: FakeKube, clock: Clock) -> Any:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    await controller.reconcile((NS, RUN))
    return controller


async def test_a_failed_test_keeps_its_container_states_and_pod_events_fetched_once(
    kube: FakeKube, clock: Clock
) -> None:
    controller = await started(kube, clock)
    kube.finish_pod(NS, POD, exit_code=3)
    kube.pod_events[POD] = [
        pod_event("BackOff", "back-off restarting", at="2026-11-25T10:05:01Z"),
        pod_event("Unhealthy", "probe failed"),
    ]
    kube.logs[POD] = "boom\n"
    await controller.reconcile((NS, RUN))
    test = status(kube)["tests"][0]
    assert test["phase"] == "Failed"
    assert test["logTail"] == "boom\n"
    assert test["logContainer"] == "t"
    diag = test["diagnostics"]
    [container] = diag["containers"]
    assert (container["name"], container["state"], container["exitCode"]) == ("t", "terminated", 3)
    assert [(e["reason"], e["count"]) for e in diag["events"]] == [("Unhealthy", 2), ("BackOff", 2)]
    await controller.reconcile((NS, RUN))
    await controller.reconcile((NS, RUN))
    assert kube.pod_event_lists == [POD]  # once, in the pass that recorded the result


async def test_a_passing_test_gets_no_diagnostics_and_no_event_list(kube: FakeKube, clock: Clock) -> None:
    controller = await started(kube, clock)
    kube.finish_pod(NS, POD, exit_code=0)
    kube.pod_events[POD] = [pod_event("Pulled", "pulled")]
    await controller.reconcile((NS, RUN))
    test = status(kube)["tests"][0]
    assert test["phase"] == "Succeeded"
    assert "diagnostics" not in test
    assert kube.pod_event_lists == []


async def test_a_pod_that_can_never_start_keeps_its_waiting_reason_and_events_before_it_goes(
    kube: FakeKube, clock: Clock
) -> None:
    controller = await started(kube, clock)
    waiting = {"reason": "ErrImageNeverPull", "message": "image is not present with pull policy of Never"}
    kube.pods[(NS, POD)]["status"] = {
        "phase": "Pending",
        "containerStatuses": [{"name": "t", "restartCount": 0, "state": {"waiting": waiting}}],
    }
    kube.pod_events[POD] = [pod_event("ErrImageNeverPull", waiting["message"])]
    await controller.reconcile((NS, RUN))
    test = status(kube)["tests"][0]
    assert (test["phase"], test["reason"]) == ("Error", "ErrImageNeverPull")
    assert test["diagnostics"]["containers"][0]["state"] == "waiting"
    assert test["diagnostics"]["events"][0]["reason"] == "ErrImageNeverPull"
    assert kube.deleted_pods == [POD]  # deleted after the status that explains it


async def test_a_test_out_of_time_keeps_its_pods_events(kube: FakeKube, clock: Clock) -> None:
    controller = await started(kube, clock)
    waiting = {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}
    kube.pods[(NS, POD)]["status"] = {
        "phase": "Pending",
        "containerStatuses": [{"name": "t", "state": {"waiting": waiting}}],
    }
    kube.pod_events[POD] = [pod_event("Failed", "Failed to pull image: not found")]
    clock.now += timedelta(days=2)
    await controller.reconcile((NS, RUN))
    test = status(kube)["tests"][0]
    assert (test["phase"], test["reason"]) == ("Error", names.REASON_TIMEOUT)
    assert test["diagnostics"]["containers"][0]["reason"] == "ImagePullBackOff"
    assert test["diagnostics"]["events"][0]["message"] == "Failed to pull image: not found"


async def test_the_decision_asks_for_events_only_of_tests_that_end_without_passing(
    kube: FakeKube, clock: Clock
) -> None:
    controller = make_controller(kube, clock)
    hooks = [passing_hook("smoke"), passing_hook("api"), passing_hook("slow")]
    await deploy(controller, kube, deployed_secret(hooks=hooks))
    await controller.reconcile((NS, RUN))
    kube.finish_pod(NS, "web-1-smoke", exit_code=1)
    kube.finish_pod(NS, "web-1-api", exit_code=0)
    kube.pods[(NS, "web-1-slow")]["status"] = {"phase": "Running"}
    run = run_from_body(kube.runs[(NS, RUN)])
    objects = TestObjects(pods={name.removeprefix("web-1-"): p for (_, name), p in kube.pods.items()})
    assert results.tests_needing_diagnostics(run, objects, now=clock.now) == ["smoke"]
    observed = decide.Observed(now=clock.now, objects=objects, logs={}, plan=decide.Replanned(tests={}))
    policy = controller.executor.policy
    actions = decide.decide_run(run, observed, policy)
    assert actions[0] == decide.FetchEvents(("smoke",))
    answered = decide.decide_run(run, dataclasses.replace(observed, events={}), policy)
    assert not any(isinstance(a, decide.FetchEvents) for a in answered)


make_run = functools.partial(runs.make_run, **runs.SHORT_TESTS)


# --- the decision alone (core/results/run_tests.py), over the pod shapes of tests/unit/support/pods.py ---------------


@pytest.mark.parametrize(
    ("pod_args", "retries", "diagnosed", "log_container"),
    [
        ({"phase": "Succeeded", "exit_code": 0}, 0, False, "main"),
        ({"phase": "Failed", "exit_code": 1}, 0, True, "main"),
        ({"phase": "Failed", "exit_code": 1}, 1, False, ""),  # retried: the next attempt explains itself
        ({"phase": "Failed", "init_exit": 2}, 0, True, "jwt-setup"),
    ],
)
def test_only_a_test_that_ends_without_passing_keeps_diagnostics(
    pod_args: dict[str, Any], retries: int, diagnosed: bool, log_container: str
) -> None:
    run = make_run("a")
    run.spec.tests[0].retries = retries
    phase = pod_args.pop("phase")
    objects = TestObjects(pods={"a": pod(phase, **pod_args)})
    events = {"a": [{"involvedObject": {"name": "p"}, "reason": "BackOff", "message": "m"}]}
    need = results.tests_needing_diagnostics(run, objects, now=T0)
    assert need == (["a"] if diagnosed else [])
    step = results.decide_next_step(
        run, objects, pod_names={"a": "web-2-a"}, logs={"a": "tail"}, now=T0, events=events
    )
    [result] = step.status.tests
    assert (result.diagnostics is not None) == diagnosed
    assert result.log_container == log_container
    if diagnosed:
        assert result.diagnostics is not None
        assert [e.reason for e in result.diagnostics.events] == ["BackOff"]


def test_a_job_tests_diagnostics_come_from_its_last_pod() -> None:
    test = TestSource(name="j", source="hook", timeout_seconds=60, kind="Job")
    run = make_run("j")
    run.spec.tests[0] = test
    job = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}}
    older = pod("Failed", exit_code=1)
    newer = pod("Failed", exit_code=7)
    older["metadata"] = {"name": "j-1", "creationTimestamp": "2026-11-25T10:00:00Z"}
    newer["metadata"] = {"name": "j-2", "creationTimestamp": "2026-11-25T10:01:00Z"}
    objects = TestObjects(jobs={"j": job}, job_pods={"j": [older, newer]})
    assert results.tests_needing_diagnostics(run, objects, now=T0) == ["j"]
    step = results.decide_next_step(run, objects, pod_names={"j": "web-2-j"}, logs={}, now=T0)
    diagnostics = step.status.tests[0].diagnostics
    assert diagnostics is not None
    assert [c.exit_code for c in diagnostics.containers] == [7]
