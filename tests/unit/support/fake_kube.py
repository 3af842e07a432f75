"""An in-memory implementation of `helm_e2e.clients.kube_port.KubePort` for executor tests.

It keeps objects as the API would (resourceVersion bumped on every write, status patches with a
precondition conflict when stale) and records every effect, so tests assert on what was done. It is a
fake of our own adapter interface, not of the Kubernetes API.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pods import iso

from helm_e2e.clients.apierror import Body
from helm_e2e.clients.kube import ObjectRef, Patched
from helm_e2e.core.model import names
from helm_e2e.core.plan.readiness import ObjectKey
from helm_e2e.core.sources.intake import installed_revisions
from helm_e2e.errors import ApiRefused, NameTaken


class FakeKube:
    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.clock = clock  # stamps created pods and Jobs (creationTimestamp), as the API server does
        self.runs: dict[tuple[str, str], Body] = {}
        self.pods: dict[tuple[str, str], Body] = {}
        self.secrets: dict[tuple[str, str], Body] = {}
        self.helm_releases: dict[tuple[str, str], Body] = {}  # Flux HelmReleases
        self.applications: dict[tuple[str, str], Body] = {}  # Argo CD Applications
        self.suites: dict[str, list[Body]] = {}
        self.accounts: dict[str, frozenset[str]] = {}
        self.logs: dict[str, str] = {}
        self.pod_events: dict[str, list[Body]] = {}  # pod name → the Events about it (list_pod_events)
        self.pod_event_lists: list[str] = []  # pods whose Events were listed, in order
        self.events: list[tuple[str, str, str, str]] = []  # (object name, type, reason, message)
        self.refuse: dict[str, tuple[int, str, str]] = {}  # pod/object name → (status, reason, message)
        self.hook_objects: dict[tuple[str, str, str], Body] = {}  # (namespace, kind, name)
        self.deleted_hook_objects: list[tuple[str, str]] = []
        self.hook_applies: list[tuple[str, bool]] = []  # (name, server_side) of each hook object create
        self.jobs: dict[tuple[str, str], Body] = {}
        self.rollout_state: tuple[bool, str, str] = (True, "", "")  # (ready, failed, pending)
        self.rollout_checks: list[list[ObjectKey]] = []
        self.conflict_next_patch = False
        self.created_pods: list[str] = []
        self.deleted_pods: list[str] = []
        self.status_patches: list[tuple[str, Mapping[str, Any]]] = []
        self.run_reads: list[str] = []  # runs read with get_run, in order
        self.revision_counts: list[str] = []  # releases whose revisions were counted (a LIST each)
        self.fail_next_count: Exception | None = None  # the next count_release_secrets raises it
        self._rv = itertools.count(1)

    def _bump(self, body: Body) -> Body:
        body.setdefault("metadata", {})["resourceVersion"] = str(next(self._rv))
        return body

    # --- E2ERuns ---
    async def create_run(self, body: Body) -> Body | None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        if key in self.runs:
            return None
        stored = self._bump(copy.deepcopy(body))
        stored["metadata"]["uid"] = f"uid-{key[1]}"
        self.runs[key] = stored
        return copy.deepcopy(stored)

    async def get_run(self, namespace: str, name: str) -> Body | None:
        self.run_reads.append(name)
        body = self.runs.get((namespace, name))
        return copy.deepcopy(body) if body else None

    async def list_runs(self, namespace: str, release: str | None) -> list[Body]:
        return [
            copy.deepcopy(b)
            for (ns, _), b in sorted(self.runs.items())
            if ns == namespace and release in (None, b["spec"]["release"]["name"])
        ]

    async def patch_run_status(
        self, namespace: str, name: str, status: Mapping[str, Any], *, resource_version: str | None = None
    ) -> Patched:
        body = self.runs.get((namespace, name))
        if body is None:
            return Patched.GONE
        stale = resource_version != body["metadata"]["resourceVersion"]
        if resource_version and (self.conflict_next_patch or stale):  # as the API: no precondition, no 409
            self.conflict_next_patch = False
            return Patched.CONFLICT
        body["status"] = {**body.get("status", {}), **copy.deepcopy(dict(status))}
        self._bump(body)
        self.status_patches.append((name, copy.deepcopy(dict(status))))
        return Patched.APPLIED

    async def delete_run(self, namespace: str, name: str) -> None:
        self.runs.pop((namespace, name), None)

    # --- E2ESuites ---
    async def list_suites(self, namespace: str) -> list[Body]:
        return copy.deepcopy(self.suites.get(namespace, []))

    async def patch_suite_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        for suite in self.suites.get(namespace, []):
            if suite["metadata"]["name"] == name:
                suite["status"] = {**suite.get("status", {}), **dict(status)}  # a merge patch, as the API

    # --- Pods ---
    async def create_pod(self, body: Body) -> None:
        meta = body["metadata"]
        if meta["name"] in self.refuse:
            status, reason, message = self.refuse[meta["name"]]
            raise ApiRefused(message, status=status, reason=reason)
        key = (meta["namespace"], meta["name"])
        if key not in self.pods:
            self.pods[key] = self._bump(
                self._stamped({**copy.deepcopy(body), "status": {"phase": "Pending"}})
            )
            self.created_pods.append(meta["name"])

    def _stamped(self, body: Body) -> Body:
        if self.clock is not None:
            body["metadata"] = {**body["metadata"], "creationTimestamp": iso(self.clock())}
        return body

    async def list_run_pods(self, namespace: str, run: str) -> list[Body]:
        return [
            copy.deepcopy(p)
            for (ns, _), p in sorted(self.pods.items())
            if ns == namespace and p["metadata"]["labels"].get(names.RUN_LABEL) == run
        ]

    async def delete_pod(self, namespace: str, name: str) -> None:
        if self.pods.pop((namespace, name), None) is not None:
            self.deleted_pods.append(name)

    async def read_log(self, namespace: str, pod: str, container: str, *, limit_bytes: int) -> str:
        return self.logs.get(pod, "")[-limit_bytes * 4 :]

    async def list_pod_events(self, namespace: str, pod: str) -> list[Body]:
        self.pod_event_lists.append(pod)
        return copy.deepcopy(self.pod_events.get(pod, []))

    # --- secrets, accounts, events ---
    async def get_application(self, namespace: str, name: str) -> Body | None:
        found = self.applications.get((namespace, name))
        return copy.deepcopy(found) if found else None

    async def get_helm_release(self, namespace: str, name: str) -> Body | None:
        found = self.helm_releases.get((namespace, name))
        return copy.deepcopy(found) if found else None

    async def get_secret(self, namespace: str, name: str) -> Body | None:
        secret = self.secrets.get((namespace, name))
        return copy.deepcopy(secret) if secret else None

    async def release_secret_labels(self, namespace: str, release: str) -> list[dict[str, str]]:
        return [
            dict(s["metadata"].get("labels") or {})
            for (ns, _), s in self.secrets.items()
            if ns == namespace and (s["metadata"].get("labels") or {}).get("name") == release
        ]

    async def list_release_names(self, namespace: str) -> list[str]:
        labels = [s["metadata"].get("labels") or {} for (ns, _), s in self.secrets.items() if ns == namespace]
        return sorted({lab["name"] for lab in labels if lab.get("name")})

    async def count_release_secrets(self, namespace: str, release: str) -> int:
        if (failure := self.fail_next_count) is not None:
            self.fail_next_count = None
            raise failure
        self.revision_counts.append(release)
        return installed_revisions(await self.release_secret_labels(namespace, release))

    async def list_test_accounts(self, namespace: str) -> frozenset[str]:
        return self.accounts.get(namespace, frozenset())

    async def post_event(self, ref: ObjectRef, *, type: str, reason: str, message: str) -> None:
        self.events.append((ref.name, type, reason, message))

    # --- hook objects and Jobs ---
    async def create_hook_object(self, body: Body, *, replace_ours: bool, server_side: bool = False) -> str:
        meta = body["metadata"]
        self.hook_applies.append((meta["name"], server_side))
        if meta["name"] in self.refuse:
            status, reason, message = self.refuse[meta["name"]]
            raise ApiRefused(message, status=status, reason=reason)
        key = (meta["namespace"], body["kind"], meta["name"])
        existing = self.hook_objects.get(key)
        labels = (existing["metadata"].get("labels") or {}) if existing else {}
        if existing is not None and labels.get(names.MANAGED_BY_LABEL) != names.MANAGED_BY:
            raise NameTaken(body["kind"], meta["namespace"], meta["name"], "the name is taken by another's")
        if existing is not None and labels.get(names.RUN_LABEL) == meta["labels"][names.RUN_LABEL]:
            return str(existing["metadata"]["uid"])
        if existing is not None and not replace_ours:
            raise NameTaken(body["kind"], meta["namespace"], meta["name"], "an earlier run's object exists")
        stored = self._bump(copy.deepcopy(body))
        stored["metadata"]["uid"] = (
            f"uid-{body['kind']}-{meta['name']}-{stored['metadata']['resourceVersion']}"
        )
        self.hook_objects[key] = stored
        return str(stored["metadata"]["uid"])

    async def delete_hook_object(self, kind: str, namespace: str, name: str, *, run: str) -> None:
        existing = self.hook_objects.get((namespace, kind, name))
        if existing and existing["metadata"]["labels"].get(names.RUN_LABEL) == run:
            del self.hook_objects[(namespace, kind, name)]
            self.deleted_hook_objects.append((kind, name))

    async def create_job(self, body: Body) -> None:
        meta = body["metadata"]
        self.jobs.setdefault(
            (meta["namespace"], meta["name"]), self._bump(self._stamped(copy.deepcopy(body)))
        )
        self.created_pods.append(meta["name"])

    async def list_run_jobs(self, namespace: str, run: str) -> list[Body]:
        return [
            copy.deepcopy(j)
            for (ns, _), j in sorted(self.jobs.items())
            if ns == namespace and j["metadata"]["labels"].get(names.RUN_LABEL) == run
        ]

    async def delete_job(self, namespace: str, name: str) -> None:
        if self.jobs.pop((namespace, name), None) is not None:
            self.deleted_pods.append(name)

    async def check_rollout(self, keys: Sequence[ObjectKey]) -> tuple[bool, str, str]:
        self.rollout_checks.append(list(keys))
        return self.rollout_state

    # --- what tests do to the world ---
    def finish_pod(self, namespace: str, name: str, *, exit_code: int) -> None:
        pod = self.pods[(namespace, name)]
        phase = "Succeeded" if exit_code == 0 else "Failed"
        terminated = {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": "2026-11-25T10:05:01Z",
            "finishedAt": "2026-11-25T10:05:03Z",
        }
        pod["status"] = {
            "phase": phase,
            "startTime": "2026-11-25T10:05:01Z",
            "containerStatuses": [{"name": "t", "state": {"terminated": terminated}}],
        }
        self._bump(pod)

    def reasons(self) -> list[str]:
        return [reason for _, _, reason, _ in self.events]


NOW = datetime(2026, 11, 25, 10, 5, 10, tzinfo=UTC)


class Clock:
    """The operator's clock in unit tests: a time the test moves by hand."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Ticks:
    """A monotonic clock in seconds the test moves by hand (the watch cache's ages)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
