"""The pure decision core: pod status → TestResult, and decide_next_step over a run's pods."""

from __future__ import annotations

import functools
import json
from datetime import timedelta

import pytest
import runs
from fresh_pods import pod as fresh_pod
from pods import T0, iso, pod

from helm_e2e.core.model.run import Run, TestSource
from helm_e2e.core.model.run_status import RunPhase, RunStatus, TestPhase, TestResult
from helm_e2e.core.results.run_tests import (
    TestObjects,
    decide_next_step,
    end_run,
    log_container,
    log_tail,
    parse_pytest_summary,
    result_from_pod,
)
from helm_e2e.core.results.run_tests import (
    tests_needing_logs as needing_logs,
)

make_run = functools.partial(runs.make_run, **runs.SHORT_TESTS)


def pod_names(run: Run) -> dict[str, str]:
    return {t.name: f"{run.name}-{t.name}" for t in run.spec.tests}


def test_succeeded_pod_becomes_a_passed_result_with_duration() -> None:
    result = result_from_pod(
        TestSource(name="a", source="hook", timeout_seconds=5),
        pod("Succeeded", exit_code=0),
        pod_name="web-2-a",
        log_tail="ok",
    )
    assert (result.phase, result.exit_code, result.reason) == (TestPhase.SUCCEEDED, 0, "Completed")
    assert result.duration_seconds == 3.0
    assert result.log_tail == "ok"


def test_failed_pod_records_exit_code_and_termination_message() -> None:
    result = result_from_pod(
        TestSource(name="a", source="hook", timeout_seconds=5),
        pod("Failed", exit_code=3, message="boom"),
        pod_name="p",
    )
    assert (result.phase, result.exit_code, result.message) == (TestPhase.FAILED, 3, "boom")


def test_pytest_plugin_json_in_the_termination_message_becomes_a_pytest_summary() -> None:
    msg = json.dumps(
        {
            "passed": 4,
            "failed": 1,
            "skipped": 2,
            "errors": 0,
            "durationSeconds": 1.5,
            "firstFailures": ["tests/test_api.py::test_login"],
            "exitStatus": 1,
        }
    )
    result = result_from_pod(
        TestSource(name="a", source="hook", timeout_seconds=5),
        pod("Failed", exit_code=1, message=msg),
        pod_name="p",
    )
    assert result.pytest is not None
    assert (result.pytest.passed, result.pytest.failed, result.pytest.skipped) == (4, 1, 2)
    assert result.pytest.first_failures == ["tests/test_api.py::test_login"]
    assert result.message == ""


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", '{"passed": "many", "failed": 0}', '{"x": 1}'])
def test_anything_but_the_plugin_json_is_not_a_pytest_summary(text: str) -> None:
    assert parse_pytest_summary(text) is None


def test_failed_init_container_is_an_error_not_a_test_failure() -> None:
    result = result_from_pod(
        TestSource(name="a", source="hook", timeout_seconds=5), pod("Failed", init_exit=2), pod_name="p"
    )
    assert (result.phase, result.reason, result.exit_code) == (TestPhase.ERROR, "InitContainerFailed", 2)
    assert "jwt-setup" in result.message


def test_failed_pod_without_terminated_container_is_an_error_with_the_pod_reason() -> None:
    result = result_from_pod(
        TestSource(name="a", source="hook", timeout_seconds=5),
        pod("Failed", reason="DeadlineExceeded"),
        pod_name="p",
    )
    assert (result.phase, result.reason) == (TestPhase.ERROR, "DeadlineExceeded")


def test_long_termination_messages_are_truncated() -> None:
    result = result_from_pod(
        TestSource(name="a", source="hook", timeout_seconds=5),
        pod("Failed", exit_code=1, message="x" * 5000),
        pod_name="p",
    )
    assert len(result.message.encode()) <= 1024


def test_new_run_with_running_pods_starts_without_an_event() -> None:
    run = make_run("a", "b")
    step = decide_next_step(
        run,
        TestObjects(pods={"a": pod("Running"), "b": pod("Pending")}),
        pod_names=pod_names(run),
        logs={},
        now=T0,
    )
    assert step.status.phase == RunPhase.RUNNING
    assert step.status.started_at == T0
    assert step.events == []  # its phase and startedAt say it: no request for a Normal Event
    assert step.changed
    assert not step.finished


def test_run_fails_when_a_test_pod_exits_nonzero() -> None:
    run = make_run("a", "b", status=RunStatus(phase=RunPhase.RUNNING, started_at=T0))
    pods = {"a": pod("Succeeded", exit_code=0), "b": pod("Failed", exit_code=1)}
    step = decide_next_step(
        run, TestObjects(pods=pods), pod_names=pod_names(run), logs={"b": "AssertionError"}, now=T0
    )
    assert step.status.phase == RunPhase.FAILED
    assert step.status.summary.model_dump() == {
        "total": 2,
        "passed": 1,
        "failed": 1,
        "errored": 0,
        "flaky": 0,
    }
    assert [(e.type, e.reason) for e in step.events] == [("Warning", "TestFailed"), ("Warning", "Completed")]
    conds = {c.type: c.status for c in step.status.conditions}
    assert conds == {"Complete": "True", "Succeeded": "False"}
    assert step.status.tests[1].log_tail == "AssertionError"


def test_run_succeeds_when_every_test_pod_succeeds() -> None:
    run = make_run("a", status=RunStatus(phase=RunPhase.RUNNING, started_at=T0))
    step = decide_next_step(
        run, TestObjects(pods={"a": pod("Succeeded", exit_code=0)}), pod_names=pod_names(run), logs={}, now=T0
    )
    assert step.status.phase == RunPhase.SUCCEEDED
    assert {c.type: c.status for c in step.status.conditions} == {"Complete": "True", "Succeeded": "True"}


def test_test_running_past_its_timeout_errors_and_its_pod_is_deleted() -> None:
    run = make_run("a", timeout=30, status=RunStatus(phase=RunPhase.RUNNING, started_at=T0))
    step = decide_next_step(
        run,
        TestObjects(pods={"a": pod("Running")}),
        pod_names=pod_names(run),
        logs={},
        now=T0 + timedelta(seconds=31),
    )
    assert step.status.tests[0].phase == TestPhase.ERROR
    assert step.status.tests[0].reason == "Timeout"
    assert step.delete_pods == ["web-2-a"]
    assert step.status.phase == RunPhase.ERROR


def test_run_deadline_ends_tests_that_never_got_a_pod() -> None:
    run = make_run(
        "a", timeout=10_000, deadline_seconds=60, status=RunStatus(phase=RunPhase.RUNNING, started_at=T0)
    )
    step = decide_next_step(
        run, TestObjects(pods={}), pod_names=pod_names(run), logs={}, now=T0 + timedelta(seconds=61)
    )
    assert step.status.tests[0].reason == "Timeout"
    assert step.create_tests == []


def test_missing_pod_is_asked_for_and_a_lost_running_pod_is_an_error() -> None:
    running = RunStatus(
        phase=RunPhase.RUNNING,
        started_at=T0,
        tests=[TestResult(name="a", phase=TestPhase.RUNNING), TestResult(name="b")],
    )
    run = make_run("a", "b", status=running)
    step = decide_next_step(run, TestObjects(pods={}), pod_names=pod_names(run), logs={}, now=T0)
    assert step.create_tests == ["b"]
    assert step.status.tests[0].reason == "PodLost"


def test_tests_that_cannot_be_planned_again_become_errors() -> None:
    run = make_run("a")
    step = decide_next_step(
        run,
        TestObjects(pods={}),
        pod_names=pod_names(run),
        logs={},
        now=T0,
        unrunnable={"a": ("NotPlanned", "secret gone")},
    )
    assert (step.status.tests[0].phase, step.status.tests[0].message) == (TestPhase.ERROR, "secret gone")
    assert step.status.phase == RunPhase.ERROR


def test_final_results_are_kept_and_final_runs_are_left_alone() -> None:
    done = RunStatus(phase=RunPhase.SUCCEEDED, tests=[TestResult(name="a", phase=TestPhase.SUCCEEDED)])
    run = make_run("a", status=done)
    step = decide_next_step(
        run, TestObjects(pods={"a": pod("Failed", exit_code=1)}), pod_names=pod_names(run), logs={}, now=T0
    )
    assert step.status == done
    assert not step.changed


def test_deciding_twice_on_the_same_pods_changes_nothing_the_second_time() -> None:
    run = make_run("a", "b")
    pods = {"a": pod("Succeeded", exit_code=0), "b": pod("Running")}
    first = decide_next_step(run, TestObjects(pods=pods), pod_names=pod_names(run), logs={}, now=T0)
    again = decide_next_step(
        run.model_copy(update={"status": first.status}),
        TestObjects(pods=pods),
        pod_names=pod_names(run),
        logs={},
        now=T0,
    )
    assert not again.changed
    assert again.events == []


def test_logs_are_requested_once_per_finished_test() -> None:
    run = make_run("a", "b")
    pods = {"a": pod("Succeeded", exit_code=0), "b": pod("Running")}
    assert needing_logs(run, TestObjects(pods=pods)) == ["a"]
    step = decide_next_step(run, TestObjects(pods=pods), pod_names=pod_names(run), logs={"a": "ok"}, now=T0)
    assert needing_logs(run.model_copy(update={"status": step.status}), TestObjects(pods=pods)) == []


def test_superseding_cancels_unfinished_tests_and_keeps_finished_ones() -> None:
    status = RunStatus(
        phase=RunPhase.RUNNING,
        started_at=T0,
        tests=[TestResult(name="a", phase=TestPhase.SUCCEEDED), TestResult(name="b")],
    )
    ended = end_run(
        make_run("a", "b", status=status),
        phase=RunPhase.SUPERSEDED,
        reason="Superseded",
        message="superseded by revision 3",
        now=T0,
    )
    assert ended.phase == RunPhase.SUPERSEDED
    assert [t.phase for t in ended.tests] == [TestPhase.SUCCEEDED, TestPhase.CANCELLED]
    assert {c.type: c.status for c in ended.conditions} == {"Complete": "True", "Succeeded": "False"}


def test_log_tail_keeps_the_last_bytes_from_a_line_start() -> None:
    text = "".join(f"line {i}\n" for i in range(1000))
    tail = log_tail(text, 100)
    assert len(tail.encode()) <= 100
    assert tail.startswith("line ")
    assert tail.endswith("line 999\n")
    assert log_tail("short", 100) == "short"


def test_log_container_is_the_failing_one() -> None:
    p = pod("Failed", exit_code=1)
    p["status"]["containerStatuses"].insert(0, {"name": "sidecar", "state": {"terminated": {"exitCode": 0}}})
    assert log_container(p) == "main"
    assert log_container({"spec": {"containers": [{"name": "x"}]}, "status": {}}) == "x"


def test_a_pod_that_can_never_start_errors_at_once_and_is_deleted() -> None:
    stuck = pod("Pending")
    stuck["status"]["containerStatuses"] = [
        {
            "name": "main",
            "state": {
                "waiting": {"reason": "CreateContainerConfigError", "message": 'secret "jwt" not found'}
            },
        }
    ]
    run = make_run("a", status=RunStatus(phase=RunPhase.RUNNING, started_at=T0))
    step = decide_next_step(run, TestObjects(pods={"a": stuck}), pod_names=pod_names(run), logs={}, now=T0)
    result = step.status.tests[0]
    assert (result.phase, result.reason) == (TestPhase.ERROR, "CreateContainerConfigError")
    assert 'secret "jwt" not found' in result.message
    assert step.delete_pods == ["web-2-a"]


def test_image_pull_backoff_keeps_waiting_for_the_timeout() -> None:
    pulling = pod("Pending")
    pulling["status"]["containerStatuses"] = [
        {"name": "main", "state": {"waiting": {"reason": "ImagePullBackOff"}}}
    ]
    run = make_run("a", status=RunStatus(phase=RunPhase.RUNNING, started_at=T0))
    step = decide_next_step(run, TestObjects(pods={"a": pulling}), pod_names=pod_names(run), logs={}, now=T0)
    assert step.status.tests[0].phase == TestPhase.PENDING
    assert step.delete_pods == []


def test_first_created_is_the_earliest_pod_or_job() -> None:
    later = T0 + timedelta(seconds=3)
    job = {"metadata": {"name": "j", "creationTimestamp": iso(later)}}
    objects = TestObjects(
        pods={"a": fresh_pod("a", "Running", created=later), "b": fresh_pod("b", "Pending")}
    )
    assert objects.first_created() == T0
    assert TestObjects(jobs={"j": job}).first_created() == later
    assert TestObjects(pods={"a": {"metadata": {"name": "a"}}}).first_created() is None  # not stamped
    assert TestObjects().first_created() is None
