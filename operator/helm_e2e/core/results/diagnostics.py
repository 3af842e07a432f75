"""What explains a test that did not pass: its pod's container states and Kubernetes Events (pure).

Pods and Events arrive as plain dicts (the Kubernetes JSON, as `kubectl get -o json` shows them) and are
hostile input: any field may be missing, of another type or huge. Everything kept is bounded: at most
`MAX_CONTAINERS` containers and `MAX_EVENTS` Events (newest first), each message cut at `MESSAGE_LIMIT`
bytes, so a run's status stays small whatever a pod or its Events hold.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from helm_e2e.core.model.run_status import ContainerDiagnosis, Diagnostics, PodEventRecord, TestResult
from helm_e2e.core.model.text import clean_log
from helm_e2e.core.model.times import parse_time

MAX_EVENTS = 20  # Events kept per test, newest first
MAX_CONTAINERS = 16  # containers (init containers first) kept per test
MESSAGE_LIMIT = 512  # bytes of an Event's or a container state's message
FIELD_LIMIT = 128  # bytes of a name, a reason or an Event type
STATES = ("terminated", "waiting", "running")  # the one a container status holds, most telling first
_EPOCH = datetime.min.replace(tzinfo=UTC)


def cut(value: object, limit: int) -> str:
    """A string field of hostile input as text of at most `limit` UTF-8 bytes ('' when not a string)."""
    if not isinstance(value, str):
        return ""
    data = value.encode(errors="replace")
    if len(data) <= limit:
        return value
    return data[: max(0, limit - 3)].decode(errors="ignore") + "..."


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> Sequence[Any]:
    return value if isinstance(value, list) else ()


def diagnose_container(status: object, *, init: bool) -> ContainerDiagnosis | None:
    """One entry of a pod's (init)containerStatuses → its last state; None when it is not one."""
    if not isinstance(status, Mapping) or not isinstance(status.get("name"), str):
        return None
    states = _mapping(status.get("state"))
    state = next((s for s in STATES if isinstance(states.get(s), Mapping)), "")
    detail = _mapping(states.get(state))
    return ContainerDiagnosis(
        name=cut(status["name"], FIELD_LIMIT),
        init=init,
        state=state,
        reason=cut(detail.get("reason"), FIELD_LIMIT),
        exit_code=_int(detail.get("exitCode")) if state == "terminated" else None,
        message=cut(detail.get("message"), MESSAGE_LIMIT),
        restart_count=_int(status.get("restartCount")),
    )


def diagnose_containers(pod: Mapping[str, Any]) -> list[ContainerDiagnosis]:
    """Init containers first, then the main ones, in the order the pod's status lists them (bounded)."""
    status = _mapping(pod.get("status"))
    found: list[ContainerDiagnosis] = []
    for key, init in (("initContainerStatuses", True), ("containerStatuses", False)):
        for entry in _list(status.get(key))[:MAX_CONTAINERS]:
            if (diagnosis := diagnose_container(entry, init=init)) is not None:
                found.append(diagnosis)
    return found[:MAX_CONTAINERS]


def _last_seen(event: Mapping[str, Any]) -> datetime | None:
    """When an Event was last seen: core/v1 lastTimestamp, else its series, eventTime or first time."""
    series = _mapping(event.get("series"))
    for value in (
        event.get("lastTimestamp"),
        series.get("lastObservedTime"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        _mapping(event.get("metadata")).get("creationTimestamp"),
    ):
        when = parse_time(value)
        if when is not None:
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None


def _is_about(event: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """The Event is about this pod: same name, and the same uid when both are known (not a namesake's)."""
    about = _mapping(event.get("involvedObject"))
    meta = _mapping(pod.get("metadata"))
    if about.get("name") != meta.get("name"):
        return False
    uid, pod_uid = about.get("uid"), meta.get("uid")
    return not (uid and pod_uid and uid != pod_uid)


def _record(event: Mapping[str, Any]) -> PodEventRecord:
    count = _int(event.get("count")) or _int(_mapping(event.get("series")).get("count"))
    return PodEventRecord(
        type=cut(event.get("type"), FIELD_LIMIT),
        reason=cut(event.get("reason"), FIELD_LIMIT),
        message=cut(event.get("message") or event.get("note"), MESSAGE_LIMIT),
        count=count,
        last_seen=_last_seen(event),
    )


def pod_events(pod: Mapping[str, Any], events: Iterable[object]) -> list[PodEventRecord]:
    """The pod's Events, newest first, at most MAX_EVENTS; what is not an Event about it is dropped."""
    about = [e for e in events if isinstance(e, Mapping) and _is_about(e, pod)]
    newest = heapq.nlargest(MAX_EVENTS, about, key=lambda e: _last_seen(e) or _EPOCH)
    return [_record(e) for e in newest]


def build_diagnostics(pod: Mapping[str, Any] | None, events: Iterable[object] = ()) -> Diagnostics | None:
    """A pod (and its Events) → Diagnostics; None without a pod (nothing ran, nothing to explain)."""
    if not isinstance(pod, Mapping):
        return None
    return Diagnostics(containers=diagnose_containers(pod), events=pod_events(pod, events))


def format_diagnostics(test: TestResult) -> list[str]:
    """A test's diagnostics as terminal lines (`helm-e2e logs`), ending with whose log follows; [] without
    diagnostics. Control characters and ANSI sequences are removed: the text came from the cluster."""
    if test.diagnostics is None:
        return []
    lines = ["containers:"]
    for c in test.diagnostics.containers:
        line = f"  {c.state or 'unknown':<10} {clean_log(c.name)}{' (init)' if c.init else ''}"
        line += f" - {clean_log(c.reason)}" if c.reason else ""
        line += f" (exit {c.exit_code})" if c.exit_code is not None else ""
        line += f", {c.restart_count} restart(s)" if c.restart_count else ""
        lines.append(line)
        lines += [f"      {_one_line(c.message)}"] if c.message else []
    lines.append("events (newest first):" if test.diagnostics.events else "events: none recorded")
    for e in test.diagnostics.events:
        when = e.last_seen.strftime("%Y-%m-%d %H:%M:%S") if e.last_seen else "-"
        times = f" (x{e.count})" if e.count and e.count > 1 else ""
        lines.append(f"  {when} {clean_log(e.type)} {clean_log(e.reason)}{times}: {_one_line(e.message)}")
    init = any(c.init and c.name == test.log_container for c in test.diagnostics.containers)
    if test.log_container:
        lines.append(f"log of container {clean_log(test.log_container)}{' (init)' if init else ''}:")
    return lines


def _one_line(text: str) -> str:
    return clean_log(text).replace("\n", " ")
