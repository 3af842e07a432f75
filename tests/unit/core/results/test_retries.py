"""Retries of failed tests: the pure decision (names, which pod is current, what a failed attempt becomes)
and the executor doing it through the fake Kube port."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import runs
from controller_harness import NS, RUN, deploy, deployed_secret, make_controller, status
from fake_kube import Clock, FakeKube
from hypothesis import given
from hypothesis import strategies as st

from helm_e2e.core.model import names
from helm_e2e.core.model.dns_names import MAX_NAME
from helm_e2e.core.model.release import Release, Trigger
from helm_e2e.core.model.run import Run, TestSource
from helm_e2e.core.model.run_status import RunPhase, RunStatus, TestPhase, TestResult
from helm_e2e.core.plan.build import PlannedTest
from helm_e2e.core.results import retries as attempts
from helm_e2e.core.results.retries import ATTEMPT_LABEL, build_attempt_pod_name, continue_attempts, index_pods
from helm_e2e.core.results.run_tests import TestObjects, decide_next_step

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def make_run(retries: int, *, status: RunStatus | None = None) -> Run:
    """web-2 with one test, `a`, given `retries` attempts after a failed one."""
    return runs.make_run("a", retries=retries or None, status=status)


def pod(phase: str, exit_code: int | None = None, *, attempt: int = 1, init_exit: int | None = None) -> Any:
    status: dict[str, Any] = {"phase": phase, "startTime": T0.isoformat()}
    if exit_code is not None:
        term = {"exitCode": exit_code, "startedAt": T0.isoformat(), "finishedAt": T0.isoformat()}
        status["containerStatuses"] = [{"name": "t", "state": {"terminated": term}}]
    if init_exit is not None:
        term = {"exitCode": init_exit}
        status["initContainerStatuses"] = [{"name": "setup", "state": {"terminated": term}}]
    labels = {names.TEST_LABEL: "a", ATTEMPT_LABEL: str(attempt)}
    return {
        "metadata": {"name": build_attempt_pod_name("web-2", "a", attempt), "labels": labels},
        "status": status,
    }


def step_for(run: Run, observed_pod: Any) -> Any:
    pods = attempts.current_pods(run, {"a": observed_pod} if observed_pod else {})
    objects = TestObjects(pods=pods)
    return decide_next_step(run, objects, pod_names=attempts.pod_names(run), logs={"a": "boom"}, now=T0)


# --- names ---
def test_attempt_one_keeps_the_pod_name_of_runs_without_retries() -> None:
    assert build_attempt_pod_name("shop-12", "api-smoke", 1) == "shop-12-api-smoke"
    assert build_attempt_pod_name("shop-12", "api-smoke", 2) == "shop-12-api-smoke-a2"


@given(run=st.from_regex(r"[a-z][a-z0-9-]{0,60}[a-z0-9]", fullmatch=True), attempt=st.integers(1, 11))
def test_attempt_pod_names_are_dns_labels_and_differ_per_attempt(run: str, attempt: int) -> None:
    name = build_attempt_pod_name(run, "a-very-long-test-name-that-needs-hashing", attempt)
    assert len(name) <= MAX_NAME
    assert name != build_attempt_pod_name(run, "a-very-long-test-name-that-needs-hashing", attempt + 1)


def test_the_highest_attempt_is_the_tests_pod_and_the_others_are_history() -> None:
    current, others = index_pods([pod("Failed", 1, attempt=2), pod("Failed", 1), pod("Running", attempt=3)])
    assert current["a"]["metadata"]["name"] == "web-2-a-a3"
    assert sorted(others) == ["web-2-a", "web-2-a-a2"]


# --- the decision table ---
@pytest.mark.parametrize(
    ("retries", "observed", "phase", "attempt", "retried"),
    [
        (0, pod("Failed", 1), TestPhase.FAILED, None, False),  # no retries: as before
        (1, pod("Failed", 1), TestPhase.PENDING, 2, True),  # failed, a retry left
        (1, pod("Succeeded", 0), TestPhase.SUCCEEDED, None, False),
        (1, pod("Failed", init_exit=1), TestPhase.ERROR, None, False),  # init container: never retried
        (1, pod("Failed"), TestPhase.ERROR, None, False),  # no terminated container (evicted): never
    ],
)
def test_only_a_failed_test_container_is_retried(
    retries: int, observed: Any, phase: TestPhase, attempt: int | None, retried: bool
) -> None:
    step = step_for(make_run(retries, status=RunStatus(phase=RunPhase.RUNNING, started_at=T0)), observed)
    result = step.status.tests[0]
    assert (result.phase, result.attempt) == (phase, attempt)
    assert (attempts.EVENT_TEST_RETRIED in {e.reason for e in step.events}) == retried
    assert step.status.phase == (RunPhase.RUNNING if retried else step.status.phase)
    assert step.create_tests == []  # the next attempt's pod only after its attempt is recorded


def test_a_recorded_retry_ignores_the_failed_pod_and_asks_for_the_next_attempts_pod() -> None:
    first = step_for(make_run(2, status=RunStatus(phase=RunPhase.RUNNING, started_at=T0)), pod("Failed", 1))
    run = make_run(2, status=first.status)
    second = step_for(run, pod("Failed", 1))  # the API still lists attempt 1's pod
    assert second.create_tests == ["a"]
    assert attempts.pod_names(run) == {"a": "web-2-a-a2"}
    record = second.status.tests[0]
    assert [a.attempt for a in record.attempts] == [1]
    assert record.failed_log_tail == "boom"


def test_a_test_that_passes_on_a_retry_succeeds_and_is_flaky() -> None:
    first = step_for(make_run(1, status=RunStatus(phase=RunPhase.RUNNING, started_at=T0)), pod("Failed", 1))
    run = make_run(1, status=first.status)
    done = step_for(run, pod("Succeeded", 0, attempt=2))
    result = done.status.tests[0]
    assert (result.phase, result.flaky, result.attempt) == (TestPhase.SUCCEEDED, True, 2)
    assert [(a.attempt, a.phase, a.exit_code) for a in result.attempts] == [
        (1, TestPhase.FAILED, 1),
        (2, TestPhase.SUCCEEDED, 0),
    ]
    assert (done.status.phase, done.status.summary.flaky) == (RunPhase.SUCCEEDED, 1)


def test_the_last_attempt_failing_fails_the_test_with_every_attempt_recorded() -> None:
    status = RunStatus(phase=RunPhase.RUNNING, started_at=T0)
    for attempt in (1, 2):
        status = step_for(make_run(1, status=status), pod("Failed", 1, attempt=attempt)).status
    result = status.tests[0]
    assert (result.phase, result.flaky, status.phase) == (TestPhase.FAILED, False, RunPhase.FAILED)
    assert [a.attempt for a in result.attempts] == [1, 2]


def test_a_retry_gets_its_own_timeout_but_never_outlives_the_run_deadline() -> None:
    late = T0 + timedelta(seconds=500)
    retry = continue_attempts(
        TestSource(name="a", source="hook", timeout_seconds=600, retries=1),
        TestResult(name="a", phase=TestPhase.RUNNING, started_at=T0),
        TestResult(name="a", phase=TestPhase.FAILED, exit_code=1, started_at=T0, completed_at=late),
        now=late,
    )[0]
    assert retry.started_at == late


@given(outcomes=st.lists(st.sampled_from([0, 1]), min_size=1, max_size=5), retries=st.integers(0, 4))
def test_attempts_never_exceed_one_plus_retries_and_flaky_means_a_failure_then_a_pass(
    outcomes: list[int], retries: int
) -> None:
    status = RunStatus(phase=RunPhase.RUNNING, started_at=T0)
    used = 0
    for code in outcomes:
        if status.phase.is_final:
            break
        used += 1
        status = step_for(
            make_run(retries, status=status), pod("Failed" if code else "Succeeded", code, attempt=used)
        ).status
    result = status.tests[0]
    assert used <= 1 + retries
    assert len(result.attempts) == (used if retries else 0)
    assert result.flaky == (result.phase == TestPhase.SUCCEEDED and used > 1)


def test_per_attempt_annotations_apply_to_their_attempt_only() -> None:
    test = PlannedTest(
        name="a",
        source="hook",
        timeout_seconds=60,
        pod_spec={"containers": [{"name": "t", "image": "busybox"}]},
        annotations={"sim/exit-code": "0", "sim/exit-code.attempt-1": "1", "debug.attempt-2": "on"},
    )
    run = make_run(1)
    first = attempts.build_attempt_pod(run=run, test=test, attempt=1)["metadata"]
    second = attempts.build_attempt_pod(run=run, test=test, attempt=2)["metadata"]
    assert first["annotations"] == {"sim/exit-code": "1", names.SOURCE_ANNOTATION: "hook"}
    assert second["annotations"] == {"sim/exit-code": "0", "debug": "on", names.SOURCE_ANNOTATION: "hook"}
    assert (first["name"], first["labels"][ATTEMPT_LABEL]) == ("web-2-a", "1")
    assert (second["name"], second["labels"][ATTEMPT_LABEL]) == ("web-2-a-a2", "2")


# --- the executor through the fake ---
def retried_hook(name: str, retries: int) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "Pod",
        "path": f"web/templates/{name}.yaml",
        "events": ["test"],
        "manifest": f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  annotations:\n"
        f"    helm-e2e.dev/retries: '{retries}'\nspec:\n  containers:\n  - name: t\n    image: busybox\n",
    }


async def test_the_executor_retries_a_failed_pod_once_and_records_a_flaky_success(
    kube: FakeKube, clock: Clock
) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=[retried_hook("smoke", 1)]))
    await controller.reconcile((NS, RUN))
    kube.finish_pod(NS, "web-1-smoke", exit_code=1)
    kube.logs["web-1-smoke"] = "connection refused\n"
    await controller.reconcile((NS, RUN))  # records attempt 1, the test back at Pending
    assert kube.created_pods == ["web-1-smoke"]
    await controller.reconcile((NS, RUN))  # creates attempt 2
    await controller.reconcile((NS, RUN))  # a repeated pass (restart) adopts it, never a third pod
    assert kube.created_pods == ["web-1-smoke", "web-1-smoke-a2"]
    kube.finish_pod(NS, "web-1-smoke-a2", exit_code=0)
    await controller.reconcile((NS, RUN))
    st_ = status(kube)
    test = st_["tests"][0]
    assert (st_["phase"], test["phase"], test["flaky"], st_["summary"]["flaky"]) == (
        "Succeeded",
        "Succeeded",
        True,
        1,
    )
    assert test["failedLogTail"] == "connection refused\n"
    assert [a["attempt"] for a in test["attempts"]] == [1, 2]
    assert "TestRetried" in kube.reasons()
    await controller.reconcile((NS, RUN))  # outbox
    clock.now += timedelta(seconds=3700)
    await controller.reconcile((NS, RUN))
    assert sorted(kube.deleted_pods) == ["web-1-smoke", "web-1-smoke-a2"]  # earlier attempts too


def test_a_job_test_is_never_retried_by_the_operator_its_job_has_a_backoff_limit() -> None:

    from helm_e2e.core.plan.build import Plan
    from helm_e2e.core.plan.run_spec import build_run_spec

    job = PlannedTest(name="j", source="hook", timeout_seconds=60, pod_spec={}, kind="Job", retries=3)
    pod = PlannedTest(name="p", source="hook", timeout_seconds=60, pod_spec={})
    run = make_run(0)
    release = Release(
        name="web", namespace="shop", revision=2, status="deployed", chart_name="c", chart_version="1",
        trigger=Trigger.UPGRADE,
    )  # fmt: skip
    spec = build_run_spec(
        release, Plan(image_tag="1", tests=[job, pod]), deadline_seconds=60, default_retries=2
    )
    assert [(t.name, t.retries) for t in spec.tests] == [("j", None), ("p", 2)]
    assert run.spec.tests[0].retries is None
