"""Kubernetes effects: idempotent create, status patch, delete, list, logs and Events.

The synchronous `kubernetes` client runs in worker threads (never blocking kopf's loop) with a timeout on
every request, and returns raw JSON dicts, so the core works on the same shapes as `kubectl get -o json`.
404 on delete and 409 on create are ordinary outcomes; every other API error leaves this module as a
project error (`errors.KubeError`, or `errors.ApiRefused` for a create no retry can fix).

`Kube` is assembled from one part per job: the shared calls (kube_calls.py), E2ERuns and E2ESuites
(kube_runs.py), test pods, logs and Events (kube_pods.py), Helm's release Secrets and test accounts
(kube_releases.py); the GitOps reads, chart hook objects and the readiness gate's GETs are helper objects.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import kubernetes.client as k8s
import kubernetes.config as k8s_config

from helm_e2e.clients.apierror import Body
from helm_e2e.clients.gitops import GitOpsReader
from helm_e2e.clients.hook_objects import HookObjects
from helm_e2e.clients.kube_calls import KubeCalls, ObjectRef, Patched
from helm_e2e.clients.kube_pods import PodCalls
from helm_e2e.clients.kube_releases import ReleaseCalls
from helm_e2e.clients.kube_rest import Rest
from helm_e2e.clients.kube_runs import RunCalls
from helm_e2e.clients.rollout import RolloutReader
from helm_e2e.clients.watch_cache import WatchCache
from helm_e2e.core.plan.readiness import ObjectKey

__all__ = ["Kube", "ObjectRef", "Patched", "load_api_client"]


def load_api_client(*, connections: int = 0) -> k8s.ApiClient:
    """In-cluster credentials when running in a pod, else the current kubeconfig (KUBECONFIG).

    `connections`: the HTTP connection pool's size (0: the client's default, 5 per CPU); as large as the
    thread pool the calls run in, or connections are opened and thrown away under load."""
    try:
        k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        k8s_config.load_kube_config()  # type: ignore[no-untyped-call]
    configuration = k8s.Configuration.get_default_copy()
    if connections:
        configuration.connection_pool_maxsize = connections
    return k8s.ApiClient(configuration)


class Kube(RunCalls, PodCalls, ReleaseCalls, KubeCalls):
    def __init__(
        self,
        api: k8s.ApiClient,
        *,
        timeout_seconds: float = 30.0,
        cache: WatchCache | None = None,
        rest: Rest | None = None,
    ) -> None:
        super().__init__(api, timeout_seconds=timeout_seconds, cache=cache, rest=rest)
        self.gitops = GitOpsReader(api, timeout_seconds=timeout_seconds)  # a release's Flux HelmRelease

    @functools.cached_property
    def objects(self) -> HookObjects:  # chart test hooks' objects, Jobs
        return HookObjects(self.api, timeout_seconds=self.timeout)

    @functools.cached_property
    def rollout(self) -> RolloutReader:  # the readiness gate's GETs
        return RolloutReader(self.api, timeout_seconds=self.timeout)

    def build_apis(self) -> None:
        """Build the API clients now: in a thread, their imports do not stall the event loop."""
        _ = self.core, self.objects, self.rollout

    async def get_helm_release(self, namespace: str, name: str) -> Body | None:
        return await self.gitops.get_helm_release(namespace, name)

    async def get_application(self, namespace: str, name: str) -> Body | None:
        return await self.gitops.get_application(namespace, name)

    # --- chart test hooks' supporting objects and test Jobs (clients/hook_objects.py) -----------------------
    async def create_hook_object(self, body: Body, *, replace_ours: bool, server_side: bool = False) -> str:
        """Create (or adopt, or replace: clients/hook_objects.py) one hook object; the uid of the one there.
        `server_side`: applied with Helm's field manager, as Helm 4 does for a release applied server-side."""
        return await self.objects.create(body, replace_ours=replace_ours, server_side=server_side)

    async def delete_hook_object(self, kind: str, namespace: str, name: str, *, run: str) -> None:
        await self.objects.delete_if_run(kind, namespace, name, run=run)

    async def create_job(self, body: Body) -> None:
        await self.objects.create_job(body)

    async def list_run_jobs(self, namespace: str, run: str) -> list[Body]:
        return await self.objects.list_run_jobs(namespace, run)

    async def delete_job(self, namespace: str, name: str) -> None:
        await self.objects.delete("Job", namespace, name)

    # --- the readiness gate (clients/rollout.py) ----------------------------------------------------------
    async def check_rollout(self, keys: Sequence[ObjectKey]) -> tuple[bool, str, str]:
        """(all ready, what failed, what is pending) of exactly these objects: one GET each, no cache."""
        return await self.rollout.check(keys)
