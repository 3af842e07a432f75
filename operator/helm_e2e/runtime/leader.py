"""Leader election on a coordination.k8s.io/v1 Lease: two replicas, one active.

The election itself is the kubernetes client's own `kubernetes.leaderelection` (LeaderElection + LeaseLock:
read the Lease, then create it or replace it under its resourceVersion, so two candidates never both win).
This module is a thin guard around what that library leaves out:

- its Lease calls have no request timeout and catch only ApiException: a hung connection blocks the renew
  loop forever, and a refused one (a urllib3 error) kills the election thread silently — either way the
  process would keep working as leader while the Lease expires and a standby takes over. Here every call
  has a timeout, transport errors count as failed attempts, and a watchdog measures the time since the last
  successful renewal on the monotonic clock (the library uses the wall clock): past the renew deadline the
  process exits non-zero at once, whatever the library's own loop is doing;
- it never hands the Lease over on a clean shutdown: `release()` clears the holder, so a rolling update's
  standby takes over within one retry period instead of a whole lease;
- it logs every renewal at INFO: its logger is kept at WARNING and the transitions are logged here.

Losing the Lease ends the process (exit code 1): the kubelet restarts it as a standby — what
controller-runtime does. Nothing here imports kopf.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import kubernetes.client as k8s
import structlog
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from helm_e2e.settings import Settings

log = structlog.get_logger(__name__)

LOST_LEADERSHIP_EXIT_CODE = 1
# errors below the API: connection refused or reset, timeouts, TLS
TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError)
WATCHDOG_INTERVAL_SECONDS = 0.25


class CoordinationApi(Protocol):
    """The three calls of CoordinationV1Api that the election makes (and a test fake implements)."""

    def read_namespaced_lease(self, name: str, namespace: str, *, _request_timeout: float) -> Any: ...
    def create_namespaced_lease(self, namespace: str, body: Any, *, _request_timeout: float) -> Any: ...
    def replace_namespaced_lease(
        self, name: str, namespace: str, body: Any, *, _request_timeout: float
    ) -> Any: ...


@dataclass(frozen=True, kw_only=True)
class LeaseTimings:
    lease_seconds: int
    renew_deadline_seconds: int
    retry_period_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> LeaseTimings:
        return cls(
            lease_seconds=settings.leader_election_lease_seconds,
            renew_deadline_seconds=settings.leader_election_renew_deadline_seconds,
            retry_period_seconds=settings.leader_election_retry_period_seconds,
        )


def decide_leadership_lost(*, last_renewal_started: float | None, now: float, renew_deadline: float) -> bool:
    """Whether the leader has gone longer than the renew deadline without a successful write of the Lease.
    Counted from when that write was *sent*: a standby may have seen it from then on."""
    return last_renewal_started is None or now - last_renewal_started > renew_deadline


class _Stopped(Exception):
    """Raised inside the library's loop to end it after `release()`."""


class _TimeoutApi:
    """CoordinationV1Api with a timeout on every call (the library passes none)."""

    def __init__(self, api: CoordinationApi, *, timeout_seconds: float) -> None:
        self.coordination, self._timeout = api, timeout_seconds

    def read_namespaced_lease(self, name: str, namespace: str) -> Any:
        return self.coordination.read_namespaced_lease(name, namespace, _request_timeout=self._timeout)

    def create_namespaced_lease(self, namespace: str, body: Any) -> Any:
        return self.coordination.create_namespaced_lease(namespace, body, _request_timeout=self._timeout)

    def replace_namespaced_lease(self, name: str, namespace: str, body: Any) -> Any:
        return self.coordination.replace_namespaced_lease(
            name=name, namespace=namespace, body=body, _request_timeout=self._timeout
        )


class GuardedLeaseLock(LeaseLock):
    """The library's LeaseLock that survives transport errors, records when its last successful write was
    sent, and stops on request."""

    def __init__(
        self, *, name: str, namespace: str, identity: str, api: _TimeoutApi, clock: Callable[[], float]
    ) -> None:
        super().__init__(name, namespace, identity)  # type: ignore[no-untyped-call]  # leaderelection is untyped
        self.api_instance = api  # type: ignore[assignment]  # the same calls, with a timeout
        self.clock = clock
        self.last_write_started: float | None = None
        self.stopped = threading.Event()

    def get(self, name: str, namespace: str) -> tuple[bool, Any]:
        self._raise_if_stopped()
        try:
            return super().get(name, namespace)  # type: ignore[no-any-return,no-untyped-call]
        except TRANSPORT_ERRORS as e:  # the library expects (False, ApiException): no 404, so it retries
            log.warning("leader.lease_unreadable", lease=name, error=str(e))
            return False, ApiException(status=0, reason=type(e).__name__)

    def create(self, name: str, namespace: str, election_record: Any) -> bool:
        return self._write(lambda: super(GuardedLeaseLock, self).create(name, namespace, election_record))  # type: ignore[no-untyped-call]

    def update(self, name: str, namespace: str, updated_record: Any) -> bool:
        return self._write(lambda: super(GuardedLeaseLock, self).update(name, namespace, updated_record))  # type: ignore[no-untyped-call]

    def _write(self, write: Callable[[], bool]) -> bool:
        self._raise_if_stopped()
        started = self.clock()
        try:
            written = write()
        except TRANSPORT_ERRORS as e:
            log.warning("leader.lease_write_failed", lease=self.name, error=str(e))
            return False
        if written:
            self.last_write_started = started
        else:  # the library logged the API's answer at INFO (silenced): a conflict or a refusal
            log.warning("leader.lease_write_refused", lease=self.name)
        return written

    def _raise_if_stopped(self) -> None:
        if self.stopped.is_set():
            raise _Stopped


def build_election_config(
    *, lock: LeaseLock, timings: LeaseTimings, on_started: Callable[[], None], on_stopped: Callable[[], None]
) -> electionconfig.Config:
    return electionconfig.Config(  # type: ignore[no-untyped-call]
        lock,
        lease_duration=timings.lease_seconds,
        renew_deadline=timings.renew_deadline_seconds,
        retry_period=timings.retry_period_seconds,
        onstarted_leading=on_started,
        onstopped_leading=on_stopped,
    )


class LeaseElector:
    """One candidate for one Lease. `hold()` blocks until this process leads; from then on the Lease is
    renewed in daemon threads, and the process exits (via `exit_process`) as soon as it is lost."""

    def __init__(
        self,
        *,
        api: CoordinationApi,
        name: str,
        namespace: str,
        identity: str,
        timings: LeaseTimings,
        exit_process: Callable[[int], object] = os._exit,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.namespace, self.identity, self.timings = name, namespace, identity, timings
        self.coordination = _TimeoutApi(api, timeout_seconds=timings.retry_period_seconds)
        self._exit_process, self._clock = exit_process, clock
        self.lock = GuardedLeaseLock(
            name=name, namespace=namespace, identity=identity, api=self.coordination, clock=clock
        )
        self._leading = threading.Event()
        self._ended = threading.Event()  # the election thread is over: lost, stopped or crashed
        self.config = build_election_config(
            lock=self.lock, timings=timings, on_started=self._leading.set, on_stopped=self._on_stopped
        )

    @property
    def is_leader(self) -> bool:
        return self._leading.is_set() and not self.lock.stopped.is_set()

    def hold(self) -> bool:
        """Block until this process holds the Lease (True), or until `release()` is called first (False)."""
        logging.getLogger("leaderelection").setLevel(logging.WARNING)  # it logs each renewal at INFO
        log.info("leader.waiting", lease=self.name, namespace=self.namespace, identity=self.identity)
        election = leaderelection.LeaderElection(self.config)  # type: ignore[no-untyped-call]
        threading.Thread(
            target=self._run_election, args=(election,), name="leader-election", daemon=True
        ).start()
        while not self._leading.wait(timeout=0.5):
            if self._ended.is_set():
                return False
        log.info("leader.elected", lease=self.name, namespace=self.namespace, identity=self.identity)
        threading.Thread(target=self._watch_renewals, name="leader-watchdog", daemon=True).start()
        return True

    def release(self) -> None:
        """Stop renewing and, if this process holds the Lease, clear its holder so that a standby takes
        over at its next attempt. Best effort: at worst the Lease simply expires."""
        self.lock.stopped.set()
        if not self._leading.is_set():
            return
        for _ in range(3):  # a renewal in flight may land first (409): read again
            try:
                lease = self.coordination.read_namespaced_lease(self.name, self.namespace)
                if lease.spec is None or lease.spec.holder_identity != self.identity:
                    return
                lease.spec.holder_identity = None
                lease.spec.lease_duration_seconds = 1
                self.coordination.replace_namespaced_lease(self.name, self.namespace, lease)
            except ApiException as e:
                if e.status == 409:
                    continue
                log.warning("leader.release_failed", lease=self.name, error=str(e.reason))
                return
            except TRANSPORT_ERRORS as e:
                log.warning("leader.release_failed", lease=self.name, error=str(e))
                return
            log.info("leader.released", lease=self.name, identity=self.identity)
            return

    def _run_election(self, election: leaderelection.LeaderElection) -> None:
        try:  # run() returns only when renewal failed past the deadline, after calling on_stopped
            election.run()  # type: ignore[no-untyped-call]
        except _Stopped:
            pass
        except Exception as e:  # the library let an error out: its renew loop has stopped
            self._lose(f"leader election failed: {type(e).__name__}: {e}")
        finally:
            self._ended.set()

    def _on_stopped(self) -> None:
        self._lose("could not renew the Lease within the renew deadline")

    def _watch_renewals(self) -> None:
        deadline = self.timings.renew_deadline_seconds
        while not self.lock.stopped.wait(timeout=WATCHDOG_INTERVAL_SECONDS):
            if decide_leadership_lost(
                last_renewal_started=self.lock.last_write_started, now=self._clock(), renew_deadline=deadline
            ):
                self._lose(f"no successful renewal of the Lease for more than {deadline}s")
                return

    def _lose(self, reason: str) -> None:
        if self.lock.stopped.is_set():  # released on purpose: not a loss
            return
        self.lock.stopped.set()
        if not self._leading.is_set():
            log.error("leader.election_failed", lease=self.name, reason=reason)
        else:
            log.error("leader.lost", lease=self.name, identity=self.identity, reason=reason)
        self._exit_process(LOST_LEADERSHIP_EXIT_CODE)


def build_elector(
    *,
    api_client: k8s.ApiClient,
    settings: Settings,
    identity: str,
    exit_process: Callable[[int], object] = os._exit,
) -> LeaseElector:
    return LeaseElector(
        api=k8s.CoordinationV1Api(api_client),
        name=settings.leader_election_lease_name,
        namespace=settings.leader_election_namespace,
        identity=identity,
        timings=LeaseTimings.from_settings(settings),
        exit_process=exit_process,
    )
