"""Leader election on a Lease, through the kubernetes client's own LeaderElection against an in-memory
Lease store: one holder, renewals, take-over after the leader dies, exit when the Lease is lost, hand-over
on release. Timings are the smallest the library accepts (lease 3 s, renew deadline 2 s, retry 1 s)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
from fake_lease_api import LeaseConnection, LeaseStore

from helm_e2e.runtime.leader import (
    LeaseElector,
    LeaseTimings,
    build_election_config,
    build_elector,
    decide_leadership_lost,
)
from helm_e2e.settings import Settings

LEASE, NAMESPACE = "helm-e2e-leader", "ops"
FAST = LeaseTimings(lease_seconds=3, renew_deadline_seconds=2, retry_period_seconds=1)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built here see only what the test passes."""
    for name in os.environ:
        if name.upper().startswith("HELM_E2E_"):
            monkeypatch.delenv(name)


class ExitRecorder:
    """Stands in for os._exit: records the code and lets a test wait for it."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self.called = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.called.set()


class Candidates:
    def __init__(self) -> None:
        self.store = LeaseStore()
        self.started: list[tuple[LeaseElector, LeaseConnection]] = []

    def new(self, identity: str) -> tuple[LeaseElector, LeaseConnection, ExitRecorder]:
        connection, exits = LeaseConnection(self.store), ExitRecorder()
        elector = LeaseElector(
            api=connection,
            name=LEASE,
            namespace=NAMESPACE,
            identity=identity,
            timings=FAST,
            exit_process=exits,
        )
        self.started.append((elector, connection))
        return elector, connection, exits

    def holder(self) -> str | None:
        return self.store.holder(NAMESPACE, LEASE)


@pytest.fixture
def candidates() -> Iterator[Candidates]:
    c = Candidates()
    yield c
    for _, connection in c.started:
        connection.unhang()
    for elector, _ in c.started:  # end every election thread
        elector.release()


def hold_in_background(elector: LeaseElector) -> threading.Event:
    elected = threading.Event()
    threading.Thread(target=lambda: elector.hold() and elected.set(), daemon=True).start()
    return elected


def wait_for(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout}s")


@pytest.mark.parametrize(
    ("last_renewal_started", "now", "lost"),
    [
        (None, 100.0, True),  # never renewed
        (100.0, 101.0, False),
        (100.0, 102.0, False),  # exactly at the deadline: still leading
        (100.0, 102.01, True),
    ],
)
def test_leadership_is_lost_past_the_renew_deadline_since_the_last_renewal_was_sent(
    last_renewal_started: float | None, now: float, lost: bool
) -> None:
    assert (
        decide_leadership_lost(last_renewal_started=last_renewal_started, now=now, renew_deadline=2) is lost
    )


def test_election_config_is_built_from_the_settings_timings() -> None:
    settings = Settings(
        leader_election=True,
        leader_election_namespace="ops",
        leader_election_lease_seconds=12,
        leader_election_renew_deadline_seconds=8,
        leader_election_retry_period_seconds=3,
    )
    timings = LeaseTimings.from_settings(settings)
    assert timings == LeaseTimings(lease_seconds=12, renew_deadline_seconds=8, retry_period_seconds=3)
    config = build_election_config(lock=object(), timings=timings, on_started=print, on_stopped=print)  # type: ignore[arg-type]
    assert (config.lease_duration, config.renew_deadline, config.retry_period) == (12, 8, 3)


def test_defaults_let_a_standby_take_over_within_15_seconds_of_the_leaders_death() -> None:
    settings = Settings()
    assert settings.leader_election is False  # local runs need no Lease
    worst = settings.leader_election_lease_seconds + 2 * settings.leader_election_retry_period_seconds
    assert worst <= 15
    # the leader has given up before any standby may take over
    assert settings.leader_election_renew_deadline_seconds < settings.leader_election_lease_seconds


def test_first_candidate_creates_the_lease_under_its_identity_and_keeps_renewing_it(
    candidates: Candidates,
) -> None:
    elector, connection, exits = candidates.new("helm-e2e@pod-a/7")
    assert elector.hold() is True
    assert elector.is_leader
    first = candidates.store.read(NAMESPACE, LEASE).spec
    assert (first.holder_identity, first.lease_duration_seconds) == ("helm-e2e@pod-a/7", 3)

    wait_for(lambda: candidates.store.read(NAMESPACE, LEASE).spec.renew_time > first.renew_time, timeout=3)
    renewed = candidates.store.read(NAMESPACE, LEASE).spec
    assert renewed.acquire_time == first.acquire_time
    assert renewed.renew_time.tzinfo is not None  # an instant, not a local wall-clock time
    assert set(connection.timeouts) == {FAST.retry_period_seconds}  # every call has a timeout
    assert exits.codes == []


def test_a_standby_waits_while_the_leader_renews_and_takes_over_once_it_dies(candidates: Candidates) -> None:
    leader, leader_connection, leader_exits = candidates.new("a")
    standby, _, standby_exits = candidates.new("b")
    assert leader.hold()
    elected = hold_in_background(standby)
    assert not elected.wait(timeout=FAST.lease_seconds + 1.5)  # more than a lease: renewals keep it
    assert candidates.holder() == "a"

    leader_connection.refused = True  # the leader is cut off from the apiserver
    died = time.monotonic()
    assert elected.wait(timeout=FAST.lease_seconds + 2 * FAST.retry_period_seconds + 1)
    assert time.monotonic() - died >= FAST.lease_seconds - FAST.retry_period_seconds
    assert candidates.holder() == "b"
    # the cut-off leader stopped itself (exit 1) before the standby could take over
    assert leader_exits.codes == [1]
    assert standby_exits.codes == []


def test_leader_exits_when_the_apiserver_refuses_connections(candidates: Candidates) -> None:
    """The library catches only ApiException: a urllib3 error would end its renew thread silently."""
    elector, connection, exits = candidates.new("a")
    assert elector.hold()
    connection.refused = True
    refused = time.monotonic()
    assert exits.called.wait(timeout=FAST.renew_deadline_seconds + FAST.retry_period_seconds + 1)
    assert exits.codes == [1]
    assert time.monotonic() - refused < FAST.lease_seconds  # before any standby can take over
    assert not elector.is_leader


def test_leader_exits_when_a_renewal_never_returns(candidates: Candidates) -> None:
    """A hung call blocks the library's renew loop forever; the watchdog ends the process anyway."""
    elector, connection, exits = candidates.new("a")
    assert elector.hold()
    connection.hang()
    hung = time.monotonic()
    assert exits.called.wait(timeout=FAST.lease_seconds)
    assert exits.codes == [1]
    assert time.monotonic() - hung <= FAST.renew_deadline_seconds + FAST.retry_period_seconds + 0.5


def test_release_hands_the_lease_over_without_exiting(candidates: Candidates) -> None:
    leader, _, leader_exits = candidates.new("a")
    standby, _, _ = candidates.new("b")
    assert leader.hold()
    elected = hold_in_background(standby)
    time.sleep(0.2)  # let the standby observe the holder first (the test is about the hand-over, not a race)
    released = time.monotonic()
    leader.release()
    assert candidates.holder() in (None, "b")
    assert elected.wait(timeout=2 * FAST.retry_period_seconds + 1)
    assert time.monotonic() - released < FAST.lease_seconds  # faster than waiting for the Lease to expire
    assert candidates.holder() == "b"
    time.sleep(FAST.renew_deadline_seconds + 0.5)  # past the deadline: a release is not a loss
    assert leader_exits.codes == []


def test_hold_returns_false_when_released_before_winning(candidates: Candidates) -> None:
    leader, _, _ = candidates.new("a")
    standby, _, standby_exits = candidates.new("b")
    assert leader.hold()
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(standby.hold()), daemon=True)
    thread.start()
    time.sleep(0.2)
    standby.release()
    thread.join(timeout=FAST.retry_period_seconds + 2)
    assert result == [False]
    assert standby_exits.codes == []
    assert candidates.holder() == "a"


def test_the_operators_elector_takes_lease_identity_and_timings_from_the_settings() -> None:
    from kubernetes import client

    settings = Settings(
        leader_election=True,
        leader_election_namespace="ops",
        leader_election_lease_name="ops-helm-e2e-leader",
    )
    elector = build_elector(api_client=client.ApiClient(), settings=settings, identity="helm-e2e@pod-a/1")
    assert (elector.name, elector.namespace, elector.identity) == (
        "ops-helm-e2e-leader",
        "ops",
        "helm-e2e@pod-a/1",
    )
    assert (elector.lock.name, elector.lock.namespace, elector.lock.identity) == (
        "ops-helm-e2e-leader",
        "ops",
        "helm-e2e@pod-a/1",
    )
    assert elector.timings == LeaseTimings(lease_seconds=10, renew_deadline_seconds=7, retry_period_seconds=2)
    assert not elector.is_leader
