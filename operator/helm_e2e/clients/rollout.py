"""Read the live objects the readiness gate waits for: one targeted GET per object, nothing more.

Cost, by design:
- no cluster-wide cache or watch of Deployments, StatefulSets, Pods, ...: the operator never holds
  objects it does not need, and a cluster with thousands of workloads costs nothing while no release waits;
- only the objects of releases currently waiting for their rollout are read, once per reconcile pass of
  that run (the executor's requeue interval paces it);
- API calls per check = number of objects (`core.readiness.list_rollout_objects` keeps only the kinds
  that can block, so ConfigMaps, Secrets, RBAC, ClusterIP Services cost nothing); helm's ReadyChecker
  adds a ReplicaSet LIST per Deployment, this reads the Deployment's own status counters instead;
- custom resources (Helm 4 waits for them by kstatus, core.readiness `_custom`): one discovery GET per
  API group/version (cached while it serves the kind), then one GET per object. The chart grants no
  rights on them (their kinds are not known in advance): an object the operator may not read (403), or a
  kind the apiserver does not serve namespaced, is not waited for, as Helm 3 never did;
- at most `concurrency` GETs in flight (an asyncio.Semaphore), each in a worker thread with a timeout, so
  one release with many objects neither floods the apiserver nor blocks the event loop.

Measured on the local cluster (kube-apiserver + kwok, 2 cores), a release with 10 objects: 10 GETs per
check, median ~15 ms with 8 in flight, ~27 ms one at a time (tests/integration/test_readiness_probe.py
prints it). Bodies are raw JSON dicts (as `kubectl get -o json`), 404 is None (not created yet), every
other API error is an `errors.KubeError` with the API's own reason. Use one reader per event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import kubernetes.client as k8s
from kubernetes.client.exceptions import ApiException

from helm_e2e.clients.apierror import Body, api_error
from helm_e2e.clients.kube_rest import call_json
from helm_e2e.core.plan.readiness import ObjectKey, check_object, is_custom, summarize
from helm_e2e.errors import KubeError

DEFAULT_CONCURRENCY = 8


class RolloutReader:
    def __init__(
        self,
        api_client: k8s.ApiClient,
        *,
        timeout_seconds: float = 10.0,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.apps, self.batch = k8s.AppsV1Api(api_client), k8s.BatchV1Api(api_client)
        self.core = k8s.CoreV1Api(api_client)
        self.objects = k8s.CustomObjectsApi(api_client)  # custom resources: no fixed rule in the chart
        self._plurals: dict[tuple[str, str], dict[str, str]] = {}  # (group, version) → {kind: plural}
        # (API group, kind) → GET; spelled out so tests/unit/chart/test_rbac.py derives the read-only rules
        self._readers: dict[tuple[str, str], Callable[..., Any]] = {
            ("apps", "Deployment"): self.apps.read_namespaced_deployment,
            ("apps", "StatefulSet"): self.apps.read_namespaced_stateful_set,
            ("apps", "DaemonSet"): self.apps.read_namespaced_daemon_set,
            ("batch", "Job"): self.batch.read_namespaced_job,
            ("", "Pod"): self.core.read_namespaced_pod,
            ("", "PersistentVolumeClaim"): self.core.read_namespaced_persistent_volume_claim,
            ("", "Service"): self.core.read_namespaced_service,
        }
        self.timeout = timeout_seconds
        self._limit = asyncio.Semaphore(max(1, concurrency))
        self._discovering = asyncio.Lock()
        self.calls = 0  # API calls made by this reader (for metrics and the benchmark)

    async def check(self, keys: Sequence[ObjectKey]) -> tuple[bool, str, str]:
        """One pass of the gate: (all rolled out, what failed, what is pending), one GET per object."""
        bodies = await self.read(keys)
        return summarize(check_object(k, bodies[k]) for k in keys if k in bodies)

    async def read(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, Body | None]:
        """The live object of each key (None: not found). Kinds that never block are left out, and so are
        custom resources the operator may not read or the apiserver does not serve namespaced."""
        readable = [k for k in keys if _reader_key(k) in self._readers or is_custom(k.api_version)]
        bodies = await asyncio.gather(*(self._read_one(k) for k in readable))
        return {k: b for k, b in zip(readable, bodies, strict=True) if not isinstance(b, _Unread)}

    async def _read_one(self, key: ObjectKey) -> Body | _Unread | None:
        if _reader_key(key) in self._readers:
            return await self.get(key)
        group, _, version = key.api_version.rpartition("/")
        plural = await self._plural(group, version, key.kind)
        if plural is None:
            return UNREAD
        try:
            found: Body | None = await self._call(
                self.objects.get_namespaced_custom_object, group, version, key.namespace, plural, key.name
            )
        except KubeError as e:
            if e.status == 403:
                return UNREAD
            raise
        return found

    async def _plural(self, group: str, version: str, kind: str) -> str | None:
        """The plural of a namespaced custom kind, from discovery (cached); None: not served namespaced, or
        discovery refused."""
        async with self._discovering:  # objects of one pass share one discovery call
            if (group, version) not in self._plurals:
                try:
                    resp = await self._call(self.objects.get_api_resources, group, version)
                except KubeError as e:
                    if e.status in (403, 404):
                        return None  # not cached: a CRD installed a moment ago is found on the next pass
                    raise
                listed = [] if not isinstance(resp, dict) else resp.get("resources")
                self._plurals[(group, version)] = {
                    r["kind"]: r["name"]
                    for r in (listed if isinstance(listed, list) else [])
                    if isinstance(r, dict) and r.get("namespaced") is True and "/" not in str(r.get("name"))
                }
        return self._plurals[(group, version)].get(kind)

    async def get(self, key: ObjectKey) -> Body | None:
        reader = self._readers.get(_reader_key(key))
        if reader is None:
            raise KubeError(f"cannot read kind {key.kind}", status=0, reason="Unsupported")
        found: Body | None = await self._call(reader, key.name, key.namespace)
        return found

    async def _call(self, method: Callable[..., Any], *args: str) -> Any:
        """One bounded GET in a worker thread, its answer read and decoded there (bounded): the JSON, None
        on 404, else a KubeError."""
        async with self._limit:
            self.calls += 1
            try:  # no answer is a KubeError there
                return await call_json(method, *args, request_timeout=self.timeout)
            except ApiException as e:
                if int(e.status or 0) == 404:
                    return None
                raise api_error(e) from e


class _Unread:
    """A custom resource left out of the gate (not readable by the operator, or not served namespaced)."""


UNREAD = _Unread()


def _reader_key(key: ObjectKey) -> tuple[str, str]:
    return key.api_version.rpartition("/")[0], key.kind


@dataclass(frozen=True)
class CheckTiming:
    objects: int
    api_calls: int
    seconds: float
    all_ready: bool


async def measure_check(reader: RolloutReader, keys: Sequence[ObjectKey]) -> CheckTiming:
    """One full readiness check of `keys`, timed: what the gate costs per reconcile pass."""
    before, start = reader.calls, time.perf_counter()
    ready, _, _ = await reader.check(keys)
    return CheckTiming(len(keys), reader.calls - before, time.perf_counter() - start, ready)
