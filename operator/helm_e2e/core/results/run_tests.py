"""A run's tests → their results, and the pure decision of what the run's tests need next.

Pods and Jobs arrive as plain dicts (the Kubernetes JSON). `decide_next_step` never performs I/O: the
caller fetches pods, Jobs and the log tails it asks for, then executes the returned Step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from helm_e2e.core.model import names
from helm_e2e.core.model.run import Run, TestSource
from helm_e2e.core.model.run_status import Condition, RunPhase, RunStatus, Summary, TestPhase, TestResult
from helm_e2e.core.model.times import parse_time
from helm_e2e.core.results import retries
from helm_e2e.core.results.diagnostics import build_diagnostics
from helm_e2e.core.results.hook_jobs import job_finished, last_pod, result_from_job
from helm_e2e.core.results.pod_result import (
    MESSAGE_LIMIT,
    log_container,
    log_tail,
    parse_pytest_summary,
    result_from_pod,
)

__all__ = [
    "MESSAGE_LIMIT",
    "log_container",
    "log_tail",
    "parse_pytest_summary",
    "parse_time",
    "result_from_pod",
]
Pod = Mapping[str, Any]
FINISHED_POD_PHASES = ("Succeeded", "Failed")


@dataclass(frozen=True)
class TestObjects:
    """What runs the tests of a run, by test name: plain pods, and Jobs with their pods."""

    __test__ = False

    pods: Mapping[str, Pod] = field(default_factory=dict)
    jobs: Mapping[str, Pod] = field(default_factory=dict)
    job_pods: Mapping[str, Sequence[Pod]] = field(default_factory=dict)
    earlier_pods: tuple[str, ...] = ()  # pods of earlier attempts (core.attempts): evidence until the TTL

    def exists(self, test: TestSource) -> bool:
        return test.name in (self.jobs if test.kind == "Job" else self.pods)

    def first_created(self) -> datetime | None:
        """When the run's first test pod or Job was created, if any exists yet."""
        bodies = [*self.pods.values(), *self.jobs.values()]
        times = [t for b in bodies if (t := parse_time((b.get("metadata") or {}).get("creationTimestamp")))]
        return min(times, default=None)

    def finished(self, test: TestSource) -> bool:
        if test.kind == "Job":
            job = self.jobs.get(test.name)
            return job is not None and job_finished(job)
        pod = self.pods.get(test.name)
        return pod is not None and (pod.get("status") or {}).get("phase") in FINISHED_POD_PHASES

    def log_pod(self, test: TestSource) -> Pod | None:
        """The pod whose log explains the result (a Job's last pod)."""
        if test.kind == "Job":
            return last_pod(list(self.job_pods.get(test.name, [])))
        return self.pods.get(test.name)

    def result(self, test: TestSource, *, name: str, log: str) -> TestResult:
        if test.kind == "Job":
            pods = list(self.job_pods.get(test.name, []))
            return result_from_job(test, self.jobs.get(test.name), pods, job_name=name, log_tail=log)
        return result_from_pod(test, self.pods.get(test.name), pod_name=name, log_tail=log)


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
    delete_jobs: list[str] = field(default_factory=list)
    events: list[RunEvent] = field(default_factory=list)
    changed: bool = False

    @property
    def finished(self) -> bool:
        return self.status.phase.is_final


def tests_needing_logs(run: Run, objects: TestObjects) -> list[str]:
    """Tests whose pod (or Job) has finished but whose log tail is not recorded yet."""
    recorded = {r.name: r for r in run.status.tests}
    return [
        t.name
        for t in run.spec.tests
        if objects.finished(t) and not (t.name in recorded and recorded[t.name].phase.is_final)
    ]


def tests_needing_diagnostics(run: Run, objects: TestObjects, *, now: datetime) -> list[str]:
    """Tests that end this pass without passing while their pod is still there to explain it: finished and
    not passed, unable to ever start, or out of time. Their pod's Events are fetched once, for this pass."""
    recorded = {r.name: r for r in run.status.tests}
    need = []
    for test in run.spec.tests:
        prev = recorded.get(test.name)
        if (prev is not None and prev.phase.is_final) or objects.log_pod(test) is None:
            continue
        result, _ = retries.continue_attempts(test, prev, objects.result(test, name="", log=""), now=now)
        final = result.phase.is_final
        if (final and result.phase != TestPhase.SUCCEEDED) or (
            not final and _overdue(run, test, result, now=now)
        ):
            need.append(test.name)
    return need


def _overdue(run: Run, test: TestSource, result: TestResult, *, now: datetime) -> str:
    """Why a test that has not finished is out of time ('' while it is not)."""
    started = run.status.started_at or now
    if now >= started + timedelta(seconds=run.spec.deadline_seconds):
        return "run deadline"
    if now >= (result.started_at or started) + timedelta(seconds=test.timeout_seconds):
        return f"timeout of {test.timeout_seconds}s"
    return ""


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


def _next_test_result(
    run: Run,
    test: TestSource,
    prev: TestResult | None,
    objects: TestObjects,
    step: Step,
    *,
    name: str,
    log: str,
    now: datetime,
    unrunnable: Mapping[str, tuple[str, str]],
    events: Sequence[object],
) -> TestResult:
    """One test's result this pass (not final before it); what it needs done is added to `step`."""
    exists = objects.exists(test)
    result = objects.result(test, name=name, log=log)
    if not exists and prev is not None and prev.phase == TestPhase.RUNNING:
        result.phase, result.reason = TestPhase.ERROR, names.REASON_POD_LOST
        result.message = f"the test {test.kind.lower()} disappeared before it finished"
    elif not exists and test.name in unrunnable:
        result.phase, (result.reason, result.message) = TestPhase.ERROR, unrunnable[test.name]
        result.completed_at = now
    elif not exists:
        step.create_tests.append(test.name)
    result, retried = retries.continue_attempts(test, prev, result, now=now)
    if retried:
        message = f"test {test.name}: {result.message}"
        step.events.append(RunEvent("Normal", retries.EVENT_TEST_RETRIED, message))
    if not result.phase.is_final and (why := _overdue(run, test, result, now=now)):
        result.phase, result.reason = TestPhase.ERROR, names.REASON_TIMEOUT
        result.message = f"test did not finish within the {why}"
        result.completed_at = now
        if test.name in step.create_tests:
            step.create_tests.remove(test.name)
    if result.phase == TestPhase.ERROR and exists and not objects.finished(test):
        (step.delete_jobs if test.kind == "Job" else step.delete_pods).append(name)
    if result.phase.is_final and result.phase != TestPhase.SUCCEEDED and exists:
        result.diagnostics = build_diagnostics(objects.log_pod(test), events)
    if result.phase == TestPhase.FAILED or result.phase == TestPhase.ERROR:
        step.events.append(RunEvent("Warning", names.EVENT_TEST_FAILED, _describe(result)))
    return result


def _next_run_status(old: RunStatus, results: list[TestResult], step: Step, *, now: datetime) -> RunStatus:
    """The run's status from its tests' results; its Started/Completed Events are added to `step`."""
    # a shallow copy: every field that changes is assigned anew below, never changed in place (a deep copy
    # of the old tests, replaced at once, was a tenth of the operator's own CPU per run)
    status = old.model_copy()
    status.tests = results
    status.summary = summarize(results)
    status.phase = run_phase(results) if results else RunPhase.NO_TESTS
    if old.phase == RunPhase.PENDING:
        status.started_at = old.started_at or now  # no Event: the phase and startedAt say it (a request less)
    if status.phase.is_final:
        status.completed_at = now
        status.conditions = _final_conditions(status, now=now)
        status.message = _summary_text(status)
        kind = "Normal" if status.phase in (RunPhase.SUCCEEDED, RunPhase.NO_TESTS) else "Warning"
        step.events.append(RunEvent(kind, names.EVENT_COMPLETED, f"{status.phase.value}: {status.message}"))
    else:
        running = Condition(
            type=names.COND_COMPLETE,
            status="False",
            reason=names.REASON_RUNNING,
            message="tests are running",
            last_transition_time=now,
        )
        status.conditions = set_condition(status.conditions, running)
    return status


def decide_next_step(
    run: Run,
    objects: TestObjects,
    *,
    pod_names: Mapping[str, str],
    logs: Mapping[str, str],
    now: datetime,
    unrunnable: Mapping[str, tuple[str, str]] | None = None,
    events: Mapping[str, Sequence[object]] | None = None,
) -> Step:
    """Decide the next state of an active run from its pods and Jobs. Final runs are returned unchanged.

    `unrunnable` maps tests that have no pod and never will to (reason, message): the API refused the pod,
    the pod policy forbids it, or it can no longer be planned. They end `Error` at once.
    `events`: the pod Events fetched for `tests_needing_diagnostics`; a test that ends without passing keeps
    its pod's container states and these Events as `diagnostics`.
    """
    old = run.status
    if old.phase.is_final:
        return Step(status=old)
    recorded = {r.name: r for r in old.tests}
    results: list[TestResult] = []
    step = Step(status=old)
    for test in run.spec.tests:
        prev = recorded.get(test.name)
        if prev is not None and prev.phase.is_final:
            results.append(prev)
            continue
        result = _next_test_result(
            run,
            test,
            prev,
            objects,
            step,
            name=pod_names[test.name],
            log=logs.get(test.name, ""),
            now=now,
            unrunnable=unrunnable or {},
            events=(events or {}).get(test.name, ()),
        )
        results.append(result)
    step.status = _next_run_status(old, results, step, now=now)
    step.changed = step.status != old
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
