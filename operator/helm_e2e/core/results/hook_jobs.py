"""Chart test hooks that are Jobs: the Job manifest we create, and its outcome as a TestResult (pure).

A Job test passes when the Job is Complete and fails when it is Failed, as `helm test` decides (Helm v3.19
pkg/kube/client.go `waitForJob`: condition Complete → success, Failed → "job failed: <reason>"). The Job
keeps its backoffLimit, activeDeadlineSeconds (capped by the test's timeout), podFailurePolicy and the like;
it gets our labels, the HELM_E2E_* env, an ownerReference to the E2ERun and the name `<run>-<test>`.
The details (exit code, times, log tail, pytest summary) are those of the Job's last pod.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from helm_e2e.core.model import names
from helm_e2e.core.model.dns_names import build_pod_name, label_value
from helm_e2e.core.model.run import Run, TestSource
from helm_e2e.core.model.run_codec import build_owner_reference
from helm_e2e.core.model.run_status import TestPhase, TestResult
from helm_e2e.core.plan.planned_test import PlannedTest
from helm_e2e.core.plan.pod_manifest import pod_spec as _pod_spec
from helm_e2e.core.results.pod_result import MESSAGE_LIMIT, result_from_pod

Body = Mapping[str, Any]
TIMEOUT_REASONS = frozenset({"DeadlineExceeded"})  # the Job ran out of time: Error, like a pod timeout


def _our_labels(run: Run, test: PlannedTest) -> dict[str, str]:
    ref = run.spec.release
    return {
        names.MANAGED_BY_LABEL: names.MANAGED_BY,
        names.RUN_LABEL: label_value(run.name),
        names.RELEASE_LABEL: label_value(ref.name),
        names.REVISION_LABEL: str(ref.revision),
        names.TEST_LABEL: label_value(test.name),
    }


def build_job_manifest(*, run: Run, test: PlannedTest) -> dict[str, Any]:
    """The batch/v1 Job for one Job test of a run (its pods never restart in place: restartPolicy Never)."""
    ours = _our_labels(run, test)
    spec = dict(test.job_spec)
    deadline = spec.get("activeDeadlineSeconds")
    if not (type(deadline) is int and 0 < deadline <= test.timeout_seconds):
        spec["activeDeadlineSeconds"] = test.timeout_seconds
    spec["template"] = {
        "metadata": {"labels": {**test.labels, **ours}, "annotations": dict(test.annotations)},
        "spec": _pod_spec(run, test),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": build_pod_name(run.name, test.name),
            "namespace": run.namespace,
            "labels": {**test.job_labels, **ours},
            "annotations": {**test.job_annotations, names.SOURCE_ANNOTATION: test.source},
            "ownerReferences": [build_owner_reference(run)],
        },
        "spec": spec,
    }


def _final_condition(job: Body) -> Mapping[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return dict(cond)
    return None


def job_finished(job: Body) -> bool:
    """The Job has its final condition (Complete or Failed)."""
    return _final_condition(job) is not None


def last_pod(pods: Sequence[Body]) -> Body | None:
    """The Job's most recent pod (by creation time, then name): the one whose details explain the result."""
    if not pods:
        return None
    return max(pods, key=lambda p: (str(p["metadata"].get("creationTimestamp") or ""), p["metadata"]["name"]))


def result_from_job(
    test: TestSource, job: Body | None, pods: Sequence[Body], *, job_name: str, log_tail: str = ""
) -> TestResult:
    """Project a Job test's Job and pods onto a TestResult. `log_tail`: of the last pod's log container."""
    if job is None:
        return TestResult(name=test.name, pod=job_name)
    pod = last_pod(pods)
    pod_name = str(pod["metadata"]["name"]) if pod else job_name
    result = result_from_pod(test, pod, pod_name=pod_name, log_tail=log_tail)
    cond = _final_condition(job)
    if cond is None:  # still running; a pod that can never start ends it now (the Job would retry forever)
        if result.phase == TestPhase.ERROR:
            return result
        active = bool((job.get("status") or {}).get("active"))
        phase = TestPhase.RUNNING if active or result.phase != TestPhase.PENDING else TestPhase.PENDING
        return result.model_copy(update={"phase": phase, "log_tail": ""})
    reason = str(cond.get("reason") or cond["type"])
    if cond["type"] == "Complete":
        return result.model_copy(update={"phase": TestPhase.SUCCEEDED, "reason": "Completed"})
    failed = int((job.get("status") or {}).get("failed") or 0)
    job_message = str(cond.get("message") or "")
    detail = f"job {reason} after {failed} failed pod(s)" + (f": {job_message}" if job_message else "")
    message = f"{detail}; {result.message}" if result.message else detail
    errored = reason in TIMEOUT_REASONS or result.phase == TestPhase.ERROR or pod is None
    return result.model_copy(
        update={
            "phase": TestPhase.ERROR if errored else TestPhase.FAILED,
            "reason": reason,
            "message": message[:MESSAGE_LIMIT],
        }
    )
