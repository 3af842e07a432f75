"""Job tests: the Job manifest we create and the Job's outcome as a TestResult (as `helm test` decides)."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import runs

from helm_e2e.core.model import names
from helm_e2e.core.model.run import TestSource
from helm_e2e.core.model.run_status import TestPhase
from helm_e2e.core.plan.planned_test import PlannedTest
from helm_e2e.core.results.hook_jobs import build_job_manifest, last_pod, result_from_job

TEST = TestSource(name="db-check", source="hook", timeout_seconds=120)
T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:00:07Z"


# web r4 (chart web-chart 1.0.0, image tag 2.0)
make_run = functools.partial(
    runs.make_run,
    release={"revision": 4, "chart": "web-chart", "chart_version": "1.0.0", "image_tag": "2.0"},
    uid="uid-9",
)


def make_test(**job_spec: Any) -> PlannedTest:
    return PlannedTest(
        name="db-check",
        source="hook",
        kind="Job",
        timeout_seconds=120,
        pod_spec={"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "OnFailure"},
        labels={"app": "db"},
        annotations={"sim.helm-e2e.dev/exit-code": "1"},
        job_spec=job_spec,
        job_labels={"team": "data"},
        job_annotations={"note": "x"},
    )


def test_a_job_manifest_keeps_the_job_fields_and_adds_our_name_labels_owner_and_env() -> None:
    job = build_job_manifest(run=make_run(), test=make_test(backoffLimit=2, podFailurePolicy={"rules": []}))
    meta, spec = job["metadata"], job["spec"]
    assert (job["apiVersion"], job["kind"], meta["name"], meta["namespace"]) == (
        "batch/v1", "Job", "web-4-db-check", "shop"
    )  # fmt: skip
    assert meta["labels"]["team"] == "data"
    assert meta["labels"][names.RUN_LABEL] == "web-4"
    assert meta["labels"][names.TEST_LABEL] == "db-check"
    assert meta["annotations"] == {"note": "x", names.SOURCE_ANNOTATION: "hook"}
    assert meta["ownerReferences"][0]["kind"] == "E2ERun"
    assert meta["ownerReferences"][0]["uid"] == "uid-9"
    assert spec["backoffLimit"] == 2
    assert spec["podFailurePolicy"] == {"rules": []}
    assert spec["activeDeadlineSeconds"] == 120
    pod_meta, pod_spec = spec["template"]["metadata"], spec["template"]["spec"]
    assert pod_meta["labels"]["app"] == "db"
    assert pod_meta["labels"][names.MANAGED_BY_LABEL] == "helm-e2e"
    assert pod_meta["annotations"] == {"sim.helm-e2e.dev/exit-code": "1"}
    assert pod_spec["restartPolicy"] == "Never"
    assert {"name": "HELM_E2E_RUN", "value": "web-4"} in pod_spec["containers"][0]["env"]


@pytest.mark.parametrize(("given", "kept"), [(60, 60), (600, 120), (0, 120), ("7", 120)])
def test_a_job_deadline_is_kept_only_when_it_is_within_the_test_timeout(given: Any, kept: int) -> None:
    job = build_job_manifest(run=make_run(), test=make_test(activeDeadlineSeconds=given))
    assert job["spec"]["activeDeadlineSeconds"] == kept


def pod(
    name: str, phase: str, *, code: int | None = None, created: str = T0, waiting: str = ""
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "startTime": T0}
    if code is not None:
        term = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": T0,
            "finishedAt": T1,
        }
        status["containerStatuses"] = [{"name": "c", "state": {"terminated": term}}]
    if waiting:
        status["containerStatuses"] = [
            {"name": "c", "state": {"waiting": {"reason": waiting, "message": "m"}}}
        ]
    return {"metadata": {"name": name, "creationTimestamp": created}, "spec": {}, "status": status}


def job(condition: str = "", reason: str = "", *, active: int = 0, failed: int = 0) -> dict[str, Any]:
    status: dict[str, Any] = {"active": active, "failed": failed}
    if condition:
        status["conditions"] = [
            {"type": "FailureTarget" if condition == "Failed" else "SuccessCriteriaMet", "status": "True"},
            {"type": condition, "status": "True", "reason": reason, "message": "Job has reached its limit"},
        ]
    return {"metadata": {"name": "web-4-db-check"}, "status": status}


@pytest.mark.parametrize(
    ("the_job", "pods", "phase", "reason", "exit_code"),
    [
        (None, [], TestPhase.PENDING, "", None),
        (job(), [], TestPhase.PENDING, "", None),
        (job(active=1), [pod("p1", "Pending")], TestPhase.RUNNING, "", None),
        (job(active=1), [pod("p1", "Running")], TestPhase.RUNNING, "", None),
        (job(active=1, failed=1), [pod("p1", "Failed", code=1), pod("p2", "Running", created=T1)],
         TestPhase.RUNNING, "", None),
        (job("Complete", "CompletionsReached"),
         [pod("p1", "Failed", code=1), pod("p2", "Succeeded", code=0, created=T1)],
         TestPhase.SUCCEEDED, "Completed", 0),
        (job("Failed", "BackoffLimitExceeded", failed=3),
         [pod("p1", "Failed", code=1), pod("p3", "Failed", code=3, created=T1)],
         TestPhase.FAILED, "BackoffLimitExceeded", 3),
        (job("Failed", "PodFailurePolicy", failed=1), [pod("p1", "Failed", code=42)],
         TestPhase.FAILED, "PodFailurePolicy", 42),
        (job("Failed", "DeadlineExceeded"), [], TestPhase.ERROR, "DeadlineExceeded", None),
        (job(active=1), [pod("p1", "Pending", waiting="CreateContainerConfigError")],
         TestPhase.ERROR, "CreateContainerConfigError", None),
    ],
)  # fmt: skip
def test_a_job_tests_outcome_is_the_jobs_with_the_last_pods_details(
    the_job: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    phase: TestPhase,
    reason: str,
    exit_code: int | None,
) -> None:
    result = result_from_job(TEST, the_job, pods, job_name="web-4-db-check", log_tail="tail")
    assert (result.phase, result.reason, result.exit_code) == (phase, reason, exit_code)


def test_a_failed_job_names_the_last_pod_and_says_how_many_pods_failed() -> None:
    pods = [pod("p1", "Failed", code=1), pod("p3", "Failed", code=3, created=T1)]
    result = result_from_job(TEST, job("Failed", "BackoffLimitExceeded", failed=2), pods,
                             job_name="web-4-db-check", log_tail="boom")  # fmt: skip
    assert result.pod == "p3"
    assert result.log_tail == "boom"
    assert result.message == "job BackoffLimitExceeded after 2 failed pod(s): Job has reached its limit"
    assert result.duration_seconds == 7


def test_a_job_without_pods_reports_the_job_name() -> None:
    assert result_from_job(TEST, job(), [], job_name="web-4-db-check").pod == "web-4-db-check"


def test_the_last_pod_is_the_newest_then_the_greatest_name() -> None:
    pods = [pod("b", "Failed", created=T0), pod("a", "Failed", created=T1), pod("c", "Failed", created=T1)]
    assert last_pod(pods) is pods[2]
    assert last_pod([]) is None
