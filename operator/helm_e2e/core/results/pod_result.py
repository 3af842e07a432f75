"""One test pod's status → TestResult, and which container's log explains it (pure).

Pods arrive as plain dicts (the Kubernetes JSON, as `kubectl get -o json` shows them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from helm_e2e.core.model import names
from helm_e2e.core.model.run import TestSource
from helm_e2e.core.model.run_status import PytestSummary, TestPhase, TestResult
from helm_e2e.core.model.times import parse_time

MESSAGE_LIMIT = 1024  # bytes of a termination message kept when it is not the pytest plugin's JSON
Pod = Mapping[str, Any]


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


def _sidecars(pod: Pod) -> set[str]:
    """Init containers that run beside the test (`restartPolicy: Always`), the artifacts collector among
    them: the kubelet stops them after the test, so how they exit never says how the test went."""
    spec = pod.get("spec") or {}
    inits = spec.get("initContainers") if isinstance(spec, Mapping) else None
    found = {names.COLLECTOR_CONTAINER}
    for c in inits if isinstance(inits, list) else []:
        if isinstance(c, Mapping) and c.get("restartPolicy") == "Always":
            found.add(str(c.get("name", "")))
    return found


def _failed_init(pod: Pod) -> tuple[str, Mapping[str, Any]] | None:
    sidecars = _sidecars(pod)
    for name, term in _terminated(pod.get("status", {}).get("initContainerStatuses")):
        if term.get("exitCode", 0) != 0 and name not in sidecars:
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


def progress(pod: Pod) -> tuple[object, ...]:
    """What a run's decision reads of a test pod that the pod's later writes can change: its phase, reason
    and deletion, and each container's step (terminated with its exit code, running, restarted, or waiting
    for a reason that ends the test). A write that changes nothing of it decides nothing new (the
    scheduler's binding and PodScheduled condition, IPs, a `ContainerCreating` wait): the watch cache keeps
    it without waking a pass; the next change, or the run's resync, decides on it."""
    status = pod.get("status") or {}
    steps = [
        (key, container.get("name"), step)
        for key in ("initContainerStatuses", "containerStatuses")
        for container in status.get(key) or []
        if isinstance(container, Mapping) and (step := _container_step(container))
    ]
    deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
    return status.get("phase"), status.get("reason"), deleting, tuple(steps)


def _container_step(container: Mapping[str, Any]) -> tuple[object, ...]:
    """() while nothing a decision reads happened to the container (absent and being created are alike)."""
    state = container.get("state") or {}
    restarts = container.get("restartCount") or 0
    if isinstance(term := state.get("terminated"), Mapping):
        return "terminated", term.get("exitCode"), term.get("reason"), restarts
    if state.get("running") is not None:
        return "running", restarts
    reason = (state.get("waiting") or {}).get("reason")
    return ("waiting", reason, restarts) if reason in FATAL_WAITING or restarts else ()


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
    return _from_finished_pod(result, pod, status, succeeded=phase == "Succeeded", log_tail=log_tail)


def _from_finished_pod(
    result: TestResult, pod: Pod, status: Mapping[str, Any], *, succeeded: bool, log_tail: str
) -> TestResult:
    """A finished pod's result: its failing (else first) container's exit, an init container's failure,
    or the pod's own reason when no container terminated (evicted, deadline exceeded, rejected)."""
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
    result.log_container = log_container(pod)  # whose log `log_tail` is (or would be: it may be empty)

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
    result.phase = TestPhase.SUCCEEDED if succeeded and result.exit_code == 0 else TestPhase.FAILED
    result.reason = str(term.get("reason") or ("Completed" if result.exit_code == 0 else "Error"))
    message = str(term.get("message") or "")
    result.pytest = parse_pytest_summary(message)
    result.message = "" if result.pytest else _truncate(message, MESSAGE_LIMIT)
    if name and len(main) > 1 and failing:
        result.reason = f"{result.reason} ({name})"
    return result


def log_container(pod: Pod) -> str:
    """The container whose log explains the result: a failed init container (the main ones never ran),
    else the first failing main container, else the first one."""
    init_failure = _failed_init(pod)
    if init_failure:
        return init_failure[0]
    main = _terminated((pod.get("status") or {}).get("containerStatuses"))
    failing = [name for name, term in main if term.get("exitCode", 0) != 0]
    if failing:
        return failing[0]
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return str(containers[0].get("name", ""))


def log_tail(text: str, limit: int) -> str:
    """The last `limit` bytes of a log, cut at a line start when possible."""
    data = text.encode()
    if len(data) <= limit:
        return text
    tail = data[-limit:].decode(errors="ignore")
    newline = tail.find("\n")
    return tail[newline + 1 :] if 0 <= newline < len(tail) - 1 else tail
