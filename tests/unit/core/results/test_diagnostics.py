"""core/results/diagnostics.py: a failed test's pod and Events → bounded Diagnostics, whatever the input holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helm_e2e.core.model.run_status import ContainerDiagnosis, Diagnostics, RunStatus
from helm_e2e.core.results import diagnostics
from helm_e2e.core.results.diagnostics import (
    MAX_CONTAINERS,
    MAX_EVENTS,
    MESSAGE_LIMIT,
    build_diagnostics,
    diagnose_containers,
    pod_events,
)
from helm_e2e.core.results.pod_result import log_container

POD = "web-1-smoke"
UID = "1111-2222"


def pod(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": POD, "uid": UID},
        "spec": {"initContainers": [{"name": "jwt-setup"}], "containers": [{"name": "test"}]},
        "status": status,
    }


def event(reason: str, *, at: str = "2026-11-25T10:05:00Z", **extra: Any) -> dict[str, Any]:
    return {
        "involvedObject": {"kind": "Pod", "name": POD, "uid": UID},
        "type": "Warning",
        "reason": reason,
        "message": f"{reason} happened",
        "count": 1,
        "lastTimestamp": at,
        **extra,
    }


JWT_FAILED = pod(
    phase="Failed",
    initContainerStatuses=[
        {
            "name": "jwt-setup",
            "restartCount": 0,
            "state": {"terminated": {"exitCode": 2, "reason": "Error", "message": "no key"}},
        }
    ],
    containerStatuses=[
        {"name": "test", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}
    ],
)


def test_an_init_container_failure_lists_the_init_container_first_with_its_exit_code() -> None:
    found = diagnose_containers(JWT_FAILED)
    assert found == [
        ContainerDiagnosis(
            name="jwt-setup",
            init=True,
            state="terminated",
            reason="Error",
            exit_code=2,
            message="no key",
            restart_count=0,
        ),
        ContainerDiagnosis(name="test", state="waiting", reason="PodInitializing", restart_count=0),
    ]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (
            {"waiting": {"reason": "ErrImageNeverPull", "message": "never pull"}},
            ("waiting", "ErrImageNeverPull", None),
        ),
        ({"running": {"startedAt": "2026-11-25T10:05:00Z"}}, ("running", "", None)),
        ({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}, ("terminated", "OOMKilled", 137)),
        ({"terminated": {"exitCode": "137", "reason": 5}}, ("terminated", "", None)),  # wrong types: dropped
        ({}, ("", "", None)),
        ("garbage", ("", "", None)),
    ],
)
def test_a_containers_state_reason_and_exit_code_come_from_its_one_state(
    state: object, expected: tuple[str, str, int | None]
) -> None:
    [found] = diagnose_containers(
        pod(containerStatuses=[{"name": "test", "state": state, "restartCount": 3}])
    )
    assert (found.state, found.reason, found.exit_code) == expected
    assert found.restart_count == 3
    assert not found.init


def test_a_log_container_is_the_failed_init_container_when_one_failed() -> None:
    assert log_container(JWT_FAILED) == "jwt-setup"
    passed_init = pod(
        initContainerStatuses=[{"name": "jwt-setup", "state": {"terminated": {"exitCode": 0}}}],
        containerStatuses=[{"name": "test", "state": {"terminated": {"exitCode": 1}}}],
    )
    assert log_container(passed_init) == "test"


def test_events_are_newest_first_and_only_the_pods_own() -> None:
    events = [
        event("Scheduled", at="2026-11-25T10:00:00Z"),
        event("Failed", at="2026-11-25T10:02:00Z"),
        event("BackOff", at="2026-11-25T10:01:00Z"),
        {**event("Other"), "involvedObject": {"kind": "Pod", "name": "another-pod"}},
        {**event("Namesake"), "involvedObject": {"kind": "Pod", "name": POD, "uid": "an-earlier-pod"}},
    ]
    found = pod_events(pod(), events)
    assert [e.reason for e in found] == ["Failed", "BackOff", "Scheduled"]
    assert found[0].last_seen == datetime(2026, 11, 25, 10, 2, tzinfo=UTC)
    assert found[0].type == "Warning"
    assert found[0].count == 1
    assert found[0].message == "Failed happened"


def test_an_events_time_and_count_fall_back_to_its_series_and_event_time() -> None:
    new_style = {
        "involvedObject": {"name": POD},
        "reason": "Pulling",
        "lastTimestamp": None,
        "eventTime": "2026-11-25T10:03:00.123456Z",
        "series": {"count": 7, "lastObservedTime": "2026-11-25T10:04:00.000000Z"},
    }
    [found] = pod_events(pod(), [new_style])
    assert found.count == 7
    assert found.last_seen == datetime(2026, 11, 25, 10, 4, tzinfo=UTC)


def test_thousands_of_events_keep_the_newest_twenty() -> None:
    start = datetime(2026, 11, 25, tzinfo=UTC)
    events = [event(f"R{i}", at=(start + timedelta(seconds=i)).isoformat()) for i in range(5000)]
    found = pod_events(pod(), events)
    assert len(found) == MAX_EVENTS
    assert [e.reason for e in found[:2]] == ["R4999", "R4998"]


def test_huge_messages_are_cut_to_the_byte_limit_even_in_multibyte_text() -> None:
    huge = "é" * 100_000
    [found] = pod_events(pod(), [event("Failed", message=huge)])
    assert len(found.message.encode()) <= MESSAGE_LIMIT
    assert found.message.endswith("...")
    status = {
        "name": "test",
        "state": {"terminated": {"exitCode": 1, "message": huge, "reason": "x" * 10_000}},
    }
    [container] = diagnose_containers(pod(containerStatuses=[status]))
    assert len(container.message.encode()) <= MESSAGE_LIMIT
    assert len(container.reason.encode()) <= diagnostics.FIELD_LIMIT


def test_a_pod_with_hundreds_of_containers_keeps_a_bounded_list() -> None:
    statuses = [{"name": f"c{i}", "state": {"running": {}}} for i in range(500)]
    found = diagnose_containers(pod(initContainerStatuses=statuses, containerStatuses=statuses))
    assert len(found) == MAX_CONTAINERS
    assert all(c.init for c in found)


def test_no_pod_means_no_diagnostics() -> None:
    assert build_diagnostics(None, [event("Failed")]) is None


def test_a_pod_without_status_or_events_gives_empty_diagnostics() -> None:
    assert build_diagnostics({"metadata": {"name": POD}}) == Diagnostics()


garbage = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
key_parts = st.sampled_from(
    ["status", "state", "terminated", "waiting", "name", "exitCode", "message", "involvedObject", "count"]
)
shaped = st.dictionaries(key_parts, garbage, max_size=5)


@settings(max_examples=300, deadline=None)
@given(
    status=st.dictionaries(
        st.sampled_from(["initContainerStatuses", "containerStatuses", "phase"]),
        st.lists(shaped | garbage, max_size=5) | garbage,
        max_size=3,
    ),
    events=st.lists(shaped | garbage, max_size=10),
)
def test_any_garbage_gives_valid_bounded_diagnostics_never_an_error(status: Any, events: list[Any]) -> None:
    found = build_diagnostics({"metadata": {"name": POD}, "status": status}, events)
    assert found is not None
    assert len(found.containers) <= MAX_CONTAINERS
    assert len(found.events) <= MAX_EVENTS
    for text in [c.message for c in found.containers] + [e.message for e in found.events]:
        assert len(text.encode()) <= MESSAGE_LIMIT
    RunStatus.model_validate({"tests": [{"name": "t", "diagnostics": found.model_dump(mode="json")}]})
