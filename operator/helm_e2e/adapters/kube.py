"""Kubernetes effects: idempotent create, status patch, delete, list, logs and Events.

The synchronous `kubernetes` client runs in worker threads (never blocking kopf's loop) and returns raw
JSON dicts, so the core works on the same shapes as `kubectl get -o json`. 404 on delete and 409 on
create are ordinary outcomes, not errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kubernetes.client as k8s
import kubernetes.config as k8s_config
from kubernetes.client.exceptions import ApiException

GROUP, VERSION = "helm-e2e.dev", "v1alpha1"
RUNS, SUITES = "e2eruns", "e2esuites"
MANAGED_BY = "app.kubernetes.io/managed-by=helm-e2e"
Body = dict[str, Any]


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    api_version: str
    namespace: str
    name: str
    uid: str = ""


def load_api_client() -> k8s.ApiClient:
    """In-cluster credentials when running in a pod, else the current kubeconfig (KUBECONFIG)."""
    try:
        k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        k8s_config.load_kube_config()  # type: ignore[no-untyped-call]
    return k8s.ApiClient()


def _status(e: ApiException) -> int:
    return int(e.status or 0)


class Kube:
    def __init__(self, api: k8s.ApiClient) -> None:
        self.core = k8s.CoreV1Api(api)
        self.custom = k8s.CustomObjectsApi(api)

    @staticmethod
    async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _raw(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        resp = await self._call(fn, *args, _preload_content=False, **kwargs)
        return json.loads(resp.data)

    # --- E2ERuns ---------------------------------------------------------------------------------------
    async def create_run(self, body: Body) -> Body | None:
        """Create an E2ERun; None when it already exists (its deterministic name is the lock)."""
        ns = body["metadata"]["namespace"]
        try:
            created: Body = await self._call(
                self.custom.create_namespaced_custom_object, GROUP, VERSION, ns, RUNS, body
            )
        except ApiException as e:
            if _status(e) == 409:
                return None
            raise
        return created

    async def get_run(self, namespace: str, name: str) -> Body | None:
        try:
            run: Body = await self._call(
                self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, RUNS, name
            )
        except ApiException as e:
            if _status(e) == 404:
                return None
            raise
        return run

    async def list_runs(self, namespace: str, release: str) -> list[Body]:
        result = await self._call(
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            RUNS,
            label_selector=f"helm-e2e.dev/release={release}",
        )
        items: list[Body] = result.get("items", [])
        return items

    async def patch_run_status(
        self, namespace: str, name: str, status: Mapping[str, Any], *, resource_version: str | None = None
    ) -> None:
        """Merge-patch the status; with `resource_version` the patch is a precondition (409 if stale)."""
        body: Body = {"status": dict(status)}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        await self._call(
            self.custom.patch_namespaced_custom_object_status, GROUP, VERSION, namespace, RUNS, name, body
        )

    async def delete_run(self, namespace: str, name: str) -> None:
        try:
            await self._call(
                self.custom.delete_namespaced_custom_object, GROUP, VERSION, namespace, RUNS, name
            )
        except ApiException as e:
            if _status(e) != 404:
                raise

    # --- E2ESuites ---------------------------------------------------------------------------------------
    async def list_suites(self, namespace: str) -> list[Body]:
        try:
            result = await self._call(
                self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, SUITES
            )
        except ApiException as e:
            if _status(e) == 404:  # CRD not installed: no suites
                return []
            raise
        items: list[Body] = result.get("items", [])
        return items

    async def patch_suite_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        try:
            await self._call(
                self.custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                namespace,
                SUITES,
                name,
                {"status": dict(status)},
            )
        except ApiException as e:
            if _status(e) != 404:
                raise

    # --- Pods --------------------------------------------------------------------------------------------
    async def create_pod(self, body: Body) -> None:
        try:
            await self._call(self.core.create_namespaced_pod, body["metadata"]["namespace"], body)
        except ApiException as e:
            if _status(e) != 409:  # already created by an earlier attempt: adopt it
                raise

    async def list_run_pods(self, namespace: str, run: str) -> list[Body]:
        result = await self._raw(
            self.core.list_namespaced_pod, namespace, label_selector=f"{MANAGED_BY},helm-e2e.dev/run={run}"
        )
        items: list[Body] = result.get("items", [])
        return items

    async def delete_pod(self, namespace: str, name: str) -> None:
        try:
            await self._call(self.core.delete_namespaced_pod, name, namespace, grace_period_seconds=0)
        except ApiException as e:
            if _status(e) != 404:
                raise

    async def read_log(self, namespace: str, pod: str, container: str, *, limit_bytes: int) -> str:
        """The end of a container's log (tail by lines, then the caller cuts to bytes); '' if unavailable."""
        try:
            resp = await self._call(
                self.core.read_namespaced_pod_log,
                pod,
                namespace,
                container=container,
                tail_lines=max(20, limit_bytes // 20),
                _preload_content=False,
            )
        except ApiException:
            return ""
        data: bytes = resp.data
        return data.decode(errors="replace")

    # --- Helm release secrets --------------------------------------------------------------------------
    async def get_secret(self, namespace: str, name: str) -> Body | None:
        try:
            secret: Body = await self._raw(self.core.read_namespaced_secret, name, namespace)
        except ApiException as e:
            if _status(e) == 404:
                return None
            raise
        return secret

    async def release_secret_labels(self, namespace: str, release: str) -> list[dict[str, str]]:
        """Labels (owner, name, status, version) of each stored revision of a release. Metadata only."""
        result = await self._raw(
            self.core.list_namespaced_secret,
            namespace,
            label_selector=f"owner=helm,name={release}",
            field_selector="type=helm.sh/release.v1",
        )
        return [dict(s["metadata"].get("labels") or {}) for s in result.get("items", [])]

    async def count_release_secrets(self, namespace: str, release: str) -> int:
        """How many revisions of a release are still installed (0 = uninstalled)."""
        labels = await self.release_secret_labels(namespace, release)
        return sum(1 for lab in labels if lab.get("status") not in ("uninstalled", "uninstalling"))

    # --- Events --------------------------------------------------------------------------------------------
    async def post_event(self, ref: ObjectRef, *, type: str, reason: str, message: str) -> None:
        now = datetime.now(UTC)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace},
            "involvedObject": {
                "apiVersion": ref.api_version,
                "kind": ref.kind,
                "name": ref.name,
                "namespace": ref.namespace,
                "uid": ref.uid,
            },
            "type": type,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "helm-e2e"},
            "reportingComponent": "helm-e2e",
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
        }
        with contextlib.suppress(ApiException):  # an Event is best effort; the status carries the same facts
            await self._call(self.core.create_namespaced_event, ref.namespace, body)
