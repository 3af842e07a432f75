"""What the watches already delivered, so a run's reconcile reads its run and pods without asking the API.

The operator already streams every E2ERun and every test pod to wake the runs (runtime/lean_watch.py);
keeping what those events carry turns the reconcile's GET of the run and LIST of its pods (on every pass,
every resync) into dictionary reads, as an informer's cache does for a Go controller. Runs in flight and
their pods are kept, and the last `MAX_SETTLED` runs that settled (final, their report's outcome
written), so the pass their last write sets off reads nothing: memory is bounded by the runs in flight plus
that many, and a settled run's rare later passes (the pods' TTL) read the API.

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

What a plan reads (a namespace's E2ESuites and test accounts) is kept the same way (`followed.Followed`,
fed by kopf's watches of both): a burst of upgrades in one namespace lists them once a minute, not twice per
release, and the intake's path to a new run has one API call, its creation.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from helm_e2e.clients.apierror import Body
from helm_e2e.clients.followed import Followed, version, without_managed_fields
from helm_e2e.core.model.names import RUN_LABEL
from helm_e2e.core.results.pod_result import progress

Key = tuple[str, str]  # (namespace, run name)
Settled = Callable[[Mapping[str, Any]], bool]  # a run's body → fully reported (core.outcomes.outbox)
MAX_AGE_SECONDS = 60.0
MAX_SETTLED = 256  # settled runs kept (with their pods) for the pass their last write sets off


def slim_pod(pod: Mapping[str, Any]) -> Body:
    """What the core reads of a test pod (metadata, status, container names and restart policies): a tenth
    of the body, so thousands of pods in flight stay a few MiB."""
    meta = without_managed_fields(pod)["metadata"]
    spec = pod.get("spec") or {}

    def containers(field: str) -> list[dict[str, Any]]:
        keep = ("name", "image", "restartPolicy")
        return [{k: c[k] for k in keep if k in c} for c in spec.get(field) or () if isinstance(c, Mapping)]

    slim_spec = {"containers": containers("containers"), "initContainers": containers("initContainers")}
    if spec.get("nodeName"):
        slim_spec["nodeName"] = spec["nodeName"]
    return {"metadata": meta, "spec": slim_spec, "status": pod.get("status") or {}}


def slim_account(account: Mapping[str, Any]) -> Body:
    """A test account's name is all a plan reads of it."""
    meta = account.get("metadata") or {}
    return {"metadata": {k: meta[k] for k in ("namespace", "name", "resourceVersion") if k in meta}}


def _run_key(pod: Mapping[str, Any]) -> Key | None:
    meta = pod.get("metadata") or {}
    run = (meta.get("labels") or {}).get(RUN_LABEL)
    return (meta.get("namespace", ""), run) if run else None


class RunPods(Followed):
    """The pods of active runs (a run's pods are followed while its run is kept)."""

    def __init__(self, cache: WatchCache) -> None:
        super().__init__(max_age=cache.max_age, clock=cache.clock, slim=slim_pod)
        self.cache = cache

    def get(self, key: Any) -> list[Body] | None:
        return super().get(key) if self.cache.follows_run(key) else None

    def start_priming(self, key: Any) -> bool:
        """False: not worth following (the run is final, or unknown)."""
        return self.cache.follows_run(key) and super().start_priming(key)

    def saw(self, key: Any, body: Mapping[str, Any], *, deleted: bool = False) -> bool:
        """As `Followed.saw`; news only when what a decision reads of the pod changed (`pod_result.progress`:
        its phase, its containers' steps, its deletion; not the scheduler's binding, a label written, or a
        container still being created)."""
        before = self.kept(key, body)
        news = super().saw(key, body, deleted=deleted)
        if not news or deleted or before is None:
            return news
        return progress(before) != progress(body)

    def none_yet(self, key: Any) -> None:
        """A run this process is creating has no pods: followed as empty before the run itself is known."""
        super().start_priming(key)
        self.primed(key, [], "0")


class WatchCache:
    def __init__(
        self,
        *,
        settled: Settled,
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        keep_settled: int = MAX_SETTLED,
    ) -> None:
        """`settled`: whether a run's body is final with its report's outcome written (the last write of a
        run's usual life); a run is followed until then, so the passes that end it and send its report read
        nothing from the API (and `keep_settled` of them after that, for the pass their last write sets off).
        The outbox decides it, given by the caller: no policy of the core here."""
        self.max_age, self.clock, self.settled = max_age, clock, settled
        self.keep_settled = keep_settled
        self._runs: dict[Key, tuple[int, Body]] = {}
        self._floor: dict[Key, int] = {}
        self._confirmed: dict[Key, float] = {}  # a kept run's last event or read
        self._settled: OrderedDict[Key, None] = OrderedDict()  # kept settled runs, oldest first
        self.run_pods = RunPods(self)
        self.suites = Followed(max_age=max_age, clock=clock)  # by namespace
        self.accounts = Followed(max_age=max_age, clock=clock, slim=slim_account)  # by namespace

    # --- runs -------------------------------------------------------------------------------------------
    def follows_run(self, key: Key) -> bool:
        return key in self._runs

    def run(self, key: Key) -> Body | None:
        """The run as fresh as anything this process saw of it, or None: read the API."""
        entry = self._runs.get(key)
        if entry is None or entry[0] < self._floor.get(key, 0):
            return None
        if self.clock() - self._confirmed.get(key, float("-inf")) > self.max_age:
            return None
        return entry[1]

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
        self._runs[key] = (rv, without_managed_fields(body))  # a run's fields history: KiBs, never read
        self._confirmed[key] = self.clock()
        if self.settled(body):  # kept a little longer: the pass its last write set off reads nothing
            self._settled[key] = None
            self._settled.move_to_end(key)
            while len(self._settled) > self.keep_settled:
                gone, _ = self._settled.popitem(last=False)
                self.forget_run(gone)  # its later passes (the pods' TTL) read the API
                self.run_pods.unfollow(gone)
        else:
            self._settled.pop(key, None)

    def creating_run(self, key: Key) -> None:
        """Before this process creates a run: it has no pods yet (they are named by it and created by its own
        passes), so its pods are followed from here without a priming LIST — from before the create, since
        the run's ADDED event may wake a pass before the create's response is read. After a restart, or a
        run created elsewhere, the first pass still lists them."""
        self.run_pods.none_yet(key)

    def not_created(self, key: Key) -> None:
        """The create failed or the run was there already (409): its pods are listed on the first read."""
        self.run_pods.unfollow(key)

    def created_run(self, body: Mapping[str, Any]) -> None:
        self.saw_run(body)

    def news(self, body: Mapping[str, Any]) -> bool:
        """Whether a run's event says anything this process did not already see. Its own writes come back as
        events at the version their response already gave (`saw_run`): they wake no pass, in flight or
        settled (the pass that wrote already decided on what it wrote, and requeued what comes next; a run's
        ADDED is queued by its creator). Anything newer (another writer: an annotation, a rerun), an event
        after a restart, or one of a run this process never saw, does."""
        meta = body.get("metadata") or {}
        key, rv = (meta.get("namespace", ""), meta.get("name", "")), version(body)
        return rv is None or rv > self._floor.get(key, 0)

    def forget_run(self, key: Key) -> None:
        """After a conflicting or failed write: the next read goes to the API."""
        self._runs.pop(key, None)
        self._confirmed.pop(key, None)
        self._settled.pop(key, None)

    def deleted_run(self, key: Key) -> None:
        self.forget_run(key)
        self._floor.pop(key, None)
        self.run_pods.unfollow(key)

    # --- what the watches of pods, suites and test accounts deliver ---------------------------------------
    def saw_pod(self, pod: Mapping[str, Any], *, deleted: bool = False) -> bool:
        """A test pod from an event or a create's response; only followed runs keep it. False: its run's
        pass would see nothing new (the create's own response coming back as ADDED, an older event)."""
        key = _run_key(pod)
        return key is not None and self.run_pods.saw(key, pod, deleted=deleted)

    def saw_suite(self, suite: Mapping[str, Any], *, deleted: bool = False) -> None:
        self.suites.saw(_namespace(suite), suite, deleted=deleted)

    def saw_account(self, account: Mapping[str, Any], *, deleted: bool = False) -> None:
        """A test account (the watch selects them by label: one that loses the label is DELETED for it)."""
        self.accounts.saw(_namespace(account), account, deleted=deleted)


def _namespace(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("namespace", ""))
