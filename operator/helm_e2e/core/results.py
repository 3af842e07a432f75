"""Pod status → TestResult, and the pure decision of what a run needs next.

Pods arrive as plain dicts (the Kubernetes JSON). `decide_next_step` never performs I/O: the caller
fetches pods and the log tails it asks for, then executes the returned Step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from . import attempts, names
from .models import (
    Condition,
    PytestSummary,
    Run,
    RunPhase,
    RunStatus,
    Summary,
    TestPhase,
    TestResult,
    TestSource,
)

MESSAGE_LIMIT = 1024  # bytes of a termination message kept when it is not the pytest plugin's JSON
Pod = Mapping[str, Any]


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_pytest_summary(message: str) -> PytestSummary | None:
    """The helm-e2e pytest plugin writes a JSON object to the termination log; anything else is None."""
    try:
        data = json.loads(message)
    except ValueError:
        return None
    if not isinstance(data, dict) or not {"passed", "failed"} <= data.keys():
        return None
    try:
        return PytestSummary.model_validate(data)
    except ValidationError:
        return None


def _terminated(statuses: object) -> list[tuple[str, Mapping[str, Any]]]:
    found = []
    for status in statuses if isinstance(statuses, list) else []:
        term = (status.get("state") or {}).get("terminated")
        if term:
            found.append((str(status.get("name", "")), term))
    return found


def _failed_init(pod: Pod) -> tuple[str, Mapping[str, Any]] | None:
    for name, term in _terminated(pod.get("status", {}).get("initContainerStatuses")):
        if term.get("exitCode", 0) != 0:
            return name, term
    return None


# Waiting reasons no amount of waiting fixes (ImagePullBackOff may be transient: it waits for the timeout)
FATAL_WAITING = {
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
}


def _fatal_waiting(status: Mapping[str, Any]) -> tuple[str, str] | None:
    for key in ("initContainerStatuses", "containerStatuses"):
        for container in status.get(key) or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in FATAL_WAITING:
                message = f"container {container.get('name', '?')}: {waiting.get('message', '')}".strip()
                return str(waiting["reason"]), _truncate(message, MESSAGE_LIMIT)
    return None


def _truncate(text: str, limit: int) -> str:
    data = text.encode()
    return text if len(data) <= limit else data[: limit - 3].decode(errors="ignore") + "..."


def result_from_pod(test: TestSource, pod: Pod | None, *, pod_name: str, log_tail: str = "") -> TestResult:
    """Project one test pod's status onto a TestResult (phase, exit code, reason, message, times)."""
    result = TestResult(name=test.name, pod=pod_name)
    if pod is None:
        return result
    status = pod.get("status") or {}
    phase = status.get("phase", "Pending")
    result.started_at = parse_time(status.get("startTime"))
    if phase == "Running":
        result.phase = TestPhase.RUNNING
        return result
    if phase not in ("Succeeded", "Failed"):
        stuck = _fatal_waiting(status)
        if stuck:  # it can never start: say so now instead of waiting for the timeout
            result.phase, result.reason, result.message = TestPhase.ERROR, stuck[0], stuck[1]
        return result

    main = _terminated(status.get("containerStatuses"))
    failing = [(n, t) for n, t in main if t.get("exitCode", 0) != 0]
    name, term = (failing or main or [("", {})])[0]
    starts = [t for t in (parse_time(x.get("startedAt")) for _, x in main) if t]
    ends = [t for t in (parse_time(x.get("finishedAt")) for _, x in main) if t]
    result.started_at = min(starts) if starts else result.started_at
    result.completed_at = max(ends) if ends else None
    if result.started_at and result.completed_at:
        result.duration_seconds = round((result.completed_at - result.started_at).total_seconds(), 3)
    result.log_tail = log_tail

    init_failure = _failed_init(pod)
    if init_failure:
        init_name, init_term = init_failure
        result.phase = TestPhase.ERROR
        result.exit_code = int(init_term.get("exitCode", 1))
        result.reason = names.REASON_INIT_FAILED
        result.message = _truncate(
            f"init container {init_name}: {init_term.get('message', '')}".strip(), MESSAGE_LIMIT
        )
        return result
    if not term:  # Failed without a terminated container: evicted, deadline exceeded, rejected
        result.phase = TestPhase.ERROR
        result.reason = str(status.get("reason") or "PodFailed")
        result.message = _truncate(str(status.get("message") or ""), MESSAGE_LIMIT)
        return result

    result.exit_code = int(term.get("exitCode", 0))
    result.phase = TestPhase.SUCCEEDED if phase == "Succeeded" and result.exit_code == 0 else TestPhase.FAILED
    result.reason = str(term.get("reason") or ("Completed" if result.exit_code == 0 else "Error"))
    message = str(term.get("message") or "")
    result.pytest = parse_pytest_summary(message)
    result.message = "" if result.pytest else _truncate(message, MESSAGE_LIMIT)
    if name and len(main) > 1 and failing:
        result.reason = f"{result.reason} ({name})"
    return result


def summarize(results: Sequence[TestResult]) -> Summary:
    return Summary(
        total=len(results),
        passed=sum(r.phase == TestPhase.SUCCEEDED for r in results),
        failed=sum(r.phase == TestPhase.FAILED for r in results),
        errored=sum(r.phase in (TestPhase.ERROR, TestPhase.CANCELLED) for r in results),
        flaky=sum(r.flaky for r in results),
    )


def run_phase(results: Sequence[TestResult]) -> RunPhase:
    if not all(r.phase.is_final for r in results):
        return RunPhase.RUNNING
    if any(r.phase in (TestPhase.ERROR, TestPhase.CANCELLED) for r in results):
        return RunPhase.ERROR
    if any(r.phase == TestPhase.FAILED for r in results):
        return RunPhase.FAILED
    return RunPhase.SUCCEEDED


def set_condition(conditions: list[Condition], new: Condition) -> list[Condition]:
    """Replace the condition of the same type; keep lastTransitionTime when the status did not change."""
    out = []
    for old in conditions:
        if old.type == new.type:
            if old.status == new.status:
                new = new.model_copy(update={"last_transition_time": old.last_transition_time})
            continue
        out.append(old)
    return [*out, new]


def get_condition(status: RunStatus, kind: str) -> Condition | None:
    return next((c for c in status.conditions if c.type == kind), None)


@dataclass
class RunEvent:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Step:
    """What the shell must do for a run, in order: create pods, patch status, post events, delete pods."""

    status: RunStatus
    create_tests: list[str] = field(default_factory=list)
    delete_pods: list[str] = field(default_factory=list)
    events: list[RunEvent] = field(default_factory=list)
    changed: bool = False

    @property
    def finished(self) -> bool:
        return self.status.phase.is_final


def tests_needing_logs(run: Run, pods: Mapping[str, Pod]) -> list[str]:
    """Tests whose pod has terminated but whose log tail is not recorded yet."""
    recorded = {r.name: r for r in run.status.tests}
    names = []
    for test in run.spec.tests:
        pod = pods.get(test.name)
        done = pod is not None and (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if done and not (test.name in recorded and recorded[test.name].phase.is_final):
            names.append(test.name)
    return names


def _final_conditions(status: RunStatus, *, now: datetime) -> list[Condition]:
    succeeded = status.phase == RunPhase.SUCCEEDED
    conds = set_condition(
        status.conditions,
        Condition(
            type=names.COND_COMPLETE,
            status="True",
            reason=status.phase.value,
            message=_summary_text(status),
            last_transition_time=now,
        ),
    )
    return set_condition(
        conds,
        Condition(
            type=names.COND_SUCCEEDED,
            status="True" if succeeded else "False",
            reason=status.phase.value,
            message=_summary_text(status),
            last_transition_time=now,
        ),
    )


def _summary_text(status: RunStatus) -> str:
    s = status.summary
    return f"{s.passed}/{s.total} passed, {s.failed} failed, {s.errored} errored"


def log_container(pod: Pod) -> str:
    """The container whose log explains the result: the first failing one, else the first one."""
    main = _terminated((pod.get("status") or {}).get("containerStatuses"))
    failing = [name for name, term in main if term.get("exitCode", 0) != 0]
    if failing:
        return failing[0]
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return str(containers[0].get("name", ""))


def decide_next_step(
    run: Run,
    pods: Mapping[str, Pod],
    *,
    pod_names: Mapping[str, str],
    logs: Mapping[str, str],
    now: datetime,
    unrunnable: Mapping[str, tuple[str, str]] | None = None,
) -> Step:
    """Decide the next state of an active run from its pods. Final runs are returned unchanged.

    `unrunnable` maps tests that have no pod and never will to (reason, message): the API refused the pod,
    the pod policy forbids it, or it can no longer be planned. They end `Error` at once.
    """
    old = run.status
    if old.phase.is_final:
        return Step(status=old)
    recorded = {r.name: r for r in old.tests}
    results: list[TestResult] = []
    step = Step(status=old)
    started = old.started_at or now
    deadline = started + timedelta(seconds=run.spec.deadline_seconds)
    for test in run.spec.tests:
        prev = recorded.get(test.name)
        if prev is not None and prev.phase.is_final:
            results.append(prev)
            continue
        pod = pods.get(test.name)
        result = result_from_pod(test, pod, pod_name=pod_names[test.name], log_tail=logs.get(test.name, ""))
        if pod is None and prev is not None and prev.phase == TestPhase.RUNNING:
            result.phase, result.reason = TestPhase.ERROR, names.REASON_POD_LOST
            result.message = "the test pod disappeared before it finished"
        elif pod is None and unrunnable and test.name in unrunnable:
            result.phase, (result.reason, result.message) = TestPhase.ERROR, unrunnable[test.name]
            result.completed_at = now
        elif pod is None:
            step.create_tests.append(test.name)
        result, retried = attempts.continue_attempts(test, prev, result, now=now)
        if retried:
            message = f"test {test.name}: {result.message}"
            step.events.append(RunEvent("Normal", attempts.EVENT_TEST_RETRIED, message))
        if not result.phase.is_final:
            limit = (result.started_at or started) + timedelta(seconds=test.timeout_seconds)
            if now >= deadline or now >= limit:
                why = "run deadline" if now >= deadline else f"timeout of {test.timeout_seconds}s"
                result.phase, result.reason = TestPhase.ERROR, names.REASON_TIMEOUT
                result.message = f"test did not finish within the {why}"
                result.completed_at = now
                if pod is not None:
                    step.delete_pods.append(pod_names[test.name])
                if test.name in step.create_tests:
                    step.create_tests.remove(test.name)
        unfinished_pod = pod is not None and (pod.get("status") or {}).get("phase") not in (
            "Succeeded",
            "Failed",
        )
        if (
            result.phase == TestPhase.ERROR
            and unfinished_pod
            and pod_names[test.name] not in step.delete_pods
        ):
            step.delete_pods.append(pod_names[test.name])
        if result.phase == TestPhase.FAILED or result.phase == TestPhase.ERROR:
            step.events.append(RunEvent("Warning", names.EVENT_TEST_FAILED, _describe(result)))
        results.append(result)

    status = old.model_copy(deep=True)
    status.tests = results
    status.summary = summarize(results)
    status.phase = run_phase(results) if results else RunPhase.NO_TESTS
    if old.phase == RunPhase.PENDING:
        status.started_at = started
        step.events.insert(0, RunEvent("Normal", names.EVENT_STARTED, f"running {len(results)} test(s)"))
    if status.phase.is_final:
        status.completed_at = now
        status.conditions = _final_conditions(status, now=now)
        status.message = _summary_text(status)
        kind = "Normal" if status.phase == RunPhase.SUCCEEDED else "Warning"
        step.events.append(RunEvent(kind, names.EVENT_COMPLETED, f"{status.phase.value}: {status.message}"))
    else:
        status.conditions = set_condition(
            status.conditions,
            Condition(
                type=names.COND_COMPLETE,
                status="False",
                reason=names.REASON_RUNNING,
                message="tests are running",
                last_transition_time=now,
            ),
        )
    step.status = status
    step.changed = status != old
    return step


def _describe(result: TestResult) -> str:
    parts = [f"test {result.name} {result.phase.value.lower()}"]
    if result.exit_code is not None:
        parts.append(f"exit code {result.exit_code}")
    if result.reason:
        parts.append(result.reason)
    if result.pytest and result.pytest.first_failures:
        parts.append("first failure " + result.pytest.first_failures[0])
    return ", ".join(parts)


def end_run(run: Run, *, phase: RunPhase, reason: str, message: str, now: datetime) -> RunStatus:
    """Superseded or Cancelled: unfinished tests become Cancelled, finished ones keep their result."""
    status = run.status.model_copy(deep=True)
    known = {r.name: r for r in status.tests}
    tests = []
    for test in run.spec.tests:
        result = known.get(test.name) or TestResult(name=test.name)
        if not result.phase.is_final:
            result = result.model_copy(
                update={"phase": TestPhase.CANCELLED, "reason": reason, "completed_at": now}
            )
        tests.append(result)
    status.tests = tests
    status.summary = summarize(tests)
    status.phase = phase
    status.started_at = status.started_at or now
    status.completed_at = now
    status.message = message
    status.conditions = _final_conditions(status, now=now)
    return status


def log_tail(text: str, limit: int) -> str:
    """The last `limit` bytes of a log, cut at a line start when possible."""
    data = text.encode()
    if len(data) <= limit:
        return text
    tail = data[-limit:].decode(errors="ignore")
    newline = tail.find("\n")
    return tail[newline + 1 :] if 0 <= newline < len(tail) - 1 else tail
