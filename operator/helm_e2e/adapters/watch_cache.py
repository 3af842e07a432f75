"""What the watches already delivered, so a run's reconcile reads its run and pods without asking the API.

kopf already watches every E2ERun and every test pod to wake the runs; keeping what those events carry
turns the reconcile's GET of the run and LIST of its pods (on every pass, every resync) into dictionary
reads, as an informer's cache does for a Go controller. Only runs in flight and their pods are kept (until
the run is final and its report's outcome written): memory is bounded by the runs in flight, and a settled
run's rare passes (the pods' TTL) read the API.

A cached read must never be older than what this process already knows, or a report could be sent twice
from a status that predates "Sent". So every body carries its resourceVersion, and:

- a run is served only when its version is at least the newest this process saw of it (`_floor`: raised by
  every GET, write response and event); otherwise the caller reads the API (a miss, never a stale hit);
- a conflicting or failed write drops the entry (`forget_run`): the next pass reads the API;
- a run's pods are served only once a LIST of them (the priming) was merged with the events that arrived
  meanwhile, version by version, deletions included; from then on the pod events keep them current.

resourceVersions are compared as integers (etcd revisions, which they are on every apiserver we know); a
version that is not an integer is never cached, so such a server is read on every pass, as before.

And an entry nothing has confirmed for `max_age` seconds (no event, no read) is read from the API again: a
watch that died without an error cannot freeze a run; a quiet run costs one GET and one LIST a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ..core.models import RunPhase
from ..core.names import COND_EMAIL_SENT, RUN_LABEL
from .apierror import Body

Key = tuple[str, str]  # (namespace, run name)
MAX_AGE_SECONDS = 60.0
FINAL_PHASES = frozenset(p.value for p in RunPhase if p.is_final)


def version(body: Mapping[str, Any]) -> int | None:
    value = (body.get("metadata") or {}).get("resourceVersion")
    return int(value) if isinstance(value, str) and value.isdigit() else None


def slim_pod(pod: Mapping[str, Any]) -> Body:
    """What the core reads of a test pod (metadata, status, container names and restart policies): a tenth
    of the body, so thousands of pods in flight stay a few MiB."""
    meta = {k: v for k, v in (pod.get("metadata") or {}).items() if k != "managedFields"}
    spec = pod.get("spec") or {}

    def containers(field: str) -> list[dict[str, Any]]:
        keep = ("name", "image", "restartPolicy")
        return [{k: c[k] for k in keep if k in c} for c in spec.get(field) or () if isinstance(c, Mapping)]

    slim_spec = {"containers": containers("containers"), "initContainers": containers("initContainers")}
    if spec.get("nodeName"):
        slim_spec["nodeName"] = spec["nodeName"]
    return {"metadata": meta, "spec": slim_spec, "status": pod.get("status") or {}}


def _settled(run: Mapping[str, Any]) -> bool:
    """Final, and its report's outcome written (the last write of a run's usual life): a run is followed
    until then, so the passes that end it and send its report read nothing from the API."""
    status = run.get("status") or {}
    conditions = status.get("conditions") or ()
    return status.get("phase") in FINAL_PHASES and any(
        isinstance(c, Mapping) and c.get("type") == COND_EMAIL_SENT for c in conditions
    )


def _run_key(pod: Mapping[str, Any]) -> Key | None:
    meta = pod.get("metadata") or {}
    run = (meta.get("labels") or {}).get(RUN_LABEL)
    return (meta.get("namespace", ""), run) if run else None


class WatchCache:
    def __init__(
        self, *, max_age: float = MAX_AGE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_age, self.clock = max_age, clock
        self._runs: dict[Key, tuple[int, Body]] = {}
        self._floor: dict[Key, int] = {}
        self._pods: dict[Key, dict[str, tuple[int, Body]]] = {}  # primed (or priming) runs only
        self._priming: dict[Key, dict[str, int]] = {}  # pods deleted while the priming LIST was in flight
        self._confirmed: dict[tuple[str, Key], float] = {}  # ("run" | "pods", key) -> last event or read

    # --- runs -------------------------------------------------------------------------------------------
    def run(self, key: Key) -> Body | None:
        """The run as fresh as anything this process saw of it, or None: read the API."""
        entry = self._runs.get(key)
        if entry is None or entry[0] < self._floor.get(key, 0) or self._stale("run", key):
            return None
        return entry[1]

    def _stale(self, kind: str, key: Key) -> bool:
        return self.clock() - self._confirmed.get((kind, key), float("-inf")) > self.max_age

    def saw_run(self, body: Mapping[str, Any]) -> None:
        """A run from an event, a GET or a write's response."""
        meta = body.get("metadata") or {}
        key, rv = (meta.get("namespace", ""), meta.get("name", "")), version(body)
        if rv is None:
            self.forget_run(key)
            return
        if rv < self._floor.get(key, 0):
            return  # an older event still in flight
        self._floor[key] = rv
        if _settled(body):
            self.forget_run(key)  # its last passes read the API; its pods are no longer followed
            self._unprime(key)
        else:
            self._runs[key] = (rv, dict(body))
            self._confirmed["run", key] = self.clock()

    def forget_run(self, key: Key) -> None:
        """After a conflicting or failed write: the next read goes to the API."""
        self._runs.pop(key, None)
        self._confirmed.pop(("run", key), None)

    def deleted_run(self, key: Key) -> None:
        self.forget_run(key)
        self._floor.pop(key, None)
        self._unprime(key)

    # --- pods -------------------------------------------------------------------------------------------
    def pods(self, key: Key) -> list[Body] | None:
        """The run's pods, or None when they are not followed (not primed, or the run is not active)."""
        if key not in self._pods or key in self._priming or key not in self._runs or self._stale("pods", key):
            return None
        return [body for _, body in self._pods[key].values()]

    def start_priming(self, key: Key) -> bool:
        """Before the LIST that primes an active run's pods; False: not worth following (final or unknown)."""
        if key not in self._runs:
            return False
        self._pods.setdefault(key, {})
        self._priming.setdefault(key, {})
        return True

    def primed(self, key: Key, listed: list[Mapping[str, Any]], list_version: str) -> None:
        """Merge the priming LIST (at `list_version`) with the events that arrived while it was in flight."""
        deleted = self._priming.pop(key, None)
        cached = self._pods.get(key)
        if deleted is None or cached is None or not list_version.isdigit():
            self._unprime(key)
            return
        for pod in listed:
            name, rv = pod["metadata"]["name"], version(pod)
            if rv is None:
                self._unprime(key)
                return
            if rv > max(deleted.get(name, 0), cached.get(name, (0, None))[0]):
                cached[name] = (rv, slim_pod(pod))
        names = {p["metadata"]["name"] for p in listed}
        for name in [n for n, (rv, _) in cached.items() if n not in names and rv <= int(list_version)]:
            del cached[name]  # gone before the LIST was answered
        self._confirmed["pods", key] = self.clock()

    def abandon_priming(self, key: Key) -> None:
        self._unprime(key)

    def saw_pod(self, pod: Mapping[str, Any], *, deleted: bool = False) -> None:
        """A test pod from an event or a create's response; only followed runs keep it."""
        key = _run_key(pod)
        if key is None or key not in self._pods:
            return
        name, rv = pod["metadata"]["name"], version(pod)
        if rv is None:
            self._unprime(key)
            return
        pods = self._pods[key]
        if rv < pods.get(name, (0, None))[0]:
            return
        if deleted:
            pods.pop(name, None)
            if key in self._priming:
                self._priming[key][name] = rv
        else:
            pods[name] = (rv, slim_pod(pod))
        if key not in self._priming:
            self._confirmed["pods", key] = self.clock()

    def _unprime(self, key: Key) -> None:
        self._pods.pop(key, None)
        self._priming.pop(key, None)
        self._confirmed.pop(("pods", key), None)
