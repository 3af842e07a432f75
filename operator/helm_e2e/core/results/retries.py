"""Retries of failed tests (pure): which pod is a test's current attempt, and what a failed attempt becomes.

A test with `retries: N` gets up to N further attempts, each a fresh pod. Only a **Failed** attempt is
retried: the test container ran and exited non-zero, which a flaky dependency can explain. An **Error** is
never retried, because another pod would meet the same cause: the pod policy forbids it, the API refused
it, its image can never be pulled or its spec never started (FATAL_WAITING), an init container failed
(the setup, not the test, is broken), it timed out or hit the run deadline, it was lost or evicted.

Names are deterministic so a retry after `kill -9` adopts its pod instead of making a second one: attempt 1
keeps `<run>-<test>`, attempt k ≥ 2 is `<run>-<test>-a<k>` (hashed like every name when too long), and every
pod carries the label `helm-e2e.dev/attempt`. The status is the record of truth: a failed attempt is first
written to `status.tests[].attempts` with the test back at Pending and `attempt: k+1`; only the next pass,
seeing no pod of attempt k+1, creates it.

Per-attempt annotations: a planned annotation whose key ends in `.attempt-<k>` is set, without that suffix,
on attempt k's pod only (and wins over the plain key); other attempts drop it. It lets a test's pods differ
between attempts (more verbose logging on a retry; a simulated flaky failure in the integration tests).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from helm_e2e.core.model import names
from helm_e2e.core.model.dns_names import build_pod_name
from helm_e2e.core.model.run import Run, TestSource
from helm_e2e.core.model.run_status import AttemptRecord, TestPhase, TestResult
from helm_e2e.core.plan.build import PlannedTest, build_pod_manifest

Pod = Mapping[str, Any]
ATTEMPT_LABEL = f"{names.GROUP}/attempt"
EVENT_TEST_RETRIED = "TestRetried"
_PER_ATTEMPT = re.compile(r"^(?P<key>.+)\.attempt-(?P<attempt>[1-9][0-9]*)$")


def build_attempt_pod_name(run_name: str, test_name: str, attempt: int) -> str:
    """`<run>-<test>` for attempt 1 (as before retries existed), `<run>-<test>-a<k>` after."""
    return build_pod_name(run_name, test_name if attempt <= 1 else f"{test_name}-a{attempt}")


def pod_attempt(pod: Pod) -> int:
    """The attempt a pod runs; pods without the label (made before retries existed) are attempt 1."""
    value = ((pod.get("metadata") or {}).get("labels") or {}).get(ATTEMPT_LABEL, "1")
    try:
        return max(1, int(value))
    except ValueError:
        return 1


def index_pods(pods: Iterable[Pod]) -> tuple[dict[str, Pod], tuple[str, ...]]:
    """Pods of a run → (the highest attempt's pod per test, the names of all the others)."""
    current: dict[str, Pod] = {}
    others: list[str] = []
    for pod in pods:
        test = ((pod.get("metadata") or {}).get("labels") or {}).get(names.TEST_LABEL, "")
        held = current.get(test)
        if held is None or pod_attempt(pod) > pod_attempt(held):
            if held is not None:
                others.append(held["metadata"]["name"])
            current[test] = pod
        else:
            others.append(pod["metadata"]["name"])
    return current, tuple(others)


def current_attempts(run: Run) -> dict[str, int]:
    """The attempt each test is at, as recorded in the status (1 for tests not recorded yet)."""
    recorded = {r.name: r.attempt or 1 for r in run.status.tests}
    return {t.name: recorded.get(t.name, 1) for t in run.spec.tests}


def current_pods(run: Run, pods: Mapping[str, Pod]) -> dict[str, Pod]:
    """Only pods of the attempt the status is at: an older attempt's pod is history, not the test's pod."""
    at = current_attempts(run)
    return {test: pod for test, pod in pods.items() if pod_attempt(pod) >= at.get(test, 1)}


def pod_names(run: Run) -> dict[str, str]:
    return {t: build_attempt_pod_name(run.name, t, k) for t, k in current_attempts(run).items()}


def _annotations_for(annotations: Mapping[str, str], attempt: int) -> dict[str, str]:
    plain = {k: v for k, v in annotations.items() if not _PER_ATTEMPT.match(k)}
    for key, value in annotations.items():
        match = _PER_ATTEMPT.match(key)
        if match and int(match["attempt"]) == attempt:
            plain[match["key"]] = value
    return plain


def build_attempt_pod(*, run: Run, test: PlannedTest, attempt: int) -> dict[str, Any]:
    """The test's pod for one attempt: the planned manifest, renamed, labelled, per-attempt annotations."""
    body = build_pod_manifest(run=run, test=test)
    meta = body["metadata"]
    meta["name"] = build_attempt_pod_name(run.name, test.name, attempt)
    meta["labels"][ATTEMPT_LABEL] = str(attempt)
    meta["annotations"] = _annotations_for(meta["annotations"], attempt)
    return body


def _record(result: TestResult, attempt: int) -> AttemptRecord:
    return AttemptRecord(
        attempt=attempt,
        pod=result.pod,
        phase=result.phase,
        exit_code=result.exit_code,
        reason=result.reason,
        started_at=result.started_at,
        completed_at=result.completed_at,
        duration_seconds=result.duration_seconds,
    )


def continue_attempts(
    test: TestSource, prev: TestResult | None, result: TestResult, *, now: datetime
) -> tuple[TestResult, bool]:
    """Carry the attempt history into this pass's result; a Failed attempt with retries left becomes the
    next attempt, Pending. Returns (result, retried)."""
    attempt = (prev.attempt if prev else None) or 1
    history = list(prev.attempts) if prev else []
    carried = result.model_copy(
        update={
            "attempt": attempt if attempt > 1 else None,
            "attempts": history,
            "failed_log_tail": prev.failed_log_tail if prev else "",
        }
    )
    if carried.started_at is None and prev is not None and not prev.phase.is_final:
        carried.started_at = prev.started_at  # a retry's clock starts when it was decided
    if not result.phase.is_final or not (test.retries or 0):
        return carried, False
    carried.attempts = [*history, _record(result, attempt)]
    if result.phase == TestPhase.FAILED and attempt <= (test.retries or 0):
        retry = TestResult(
            name=test.name,
            pod="",
            attempt=attempt + 1,
            attempts=carried.attempts,
            failed_log_tail=result.log_tail,
            started_at=now,
            message=f"attempt {attempt} failed; attempt {attempt + 1} of {1 + (test.retries or 0)} next",
        )
        return retry, True
    carried.flaky = result.phase == TestPhase.SUCCEEDED and any(a.phase == TestPhase.FAILED for a in history)
    return carried, False
