"""The Kube adapter's test pod calls (create or adopt, list through the watch cache, delete), container
logs and Events (posted and read best effort: they explain, they never decide)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from helm_e2e.clients.apierror import Body, api_error, api_refusal
from helm_e2e.clients.apierror import status_of as _status
from helm_e2e.clients.kube_calls import KubeCalls, ObjectRef
from helm_e2e.clients.kube_rest import EVENTS, PODS
from helm_e2e.core.model import names
from helm_e2e.core.model.dns_names import run_selector
from helm_e2e.errors import KubeError

REFUSALS = frozenset({400, 403, 404, 409, 422})  # answers to a create that no retry changes
POD_EVENTS_LIMIT = 100  # Events listed per failed test's pod (core.diagnostics keeps the newest 20)


class PodCalls(KubeCalls):
    # --- Pods --------------------------------------------------------------------------------------------
    async def create_pod(self, body: Body) -> None:
        """Create a test pod; a pod of the same run is adopted, anything else refused is ApiRefused."""
        meta = body["metadata"]
        try:
            created = await self._send("POST", PODS, meta["namespace"], body=body)
        except ApiException as e:
            if _status(e) == 409 and await self._owned_by_run(meta):
                return  # created by an earlier attempt: adopt it
            if _status(e) in REFUSALS:
                raise api_refusal(e) from e
            raise api_error(e) from e
        if self.cache is not None:  # the next pass sees it even before its ADDED event arrives
            self.cache.saw_pod(created)

    async def _owned_by_run(self, meta: Mapping[str, Any]) -> bool:
        """Whether the pod holding this name is ours (a list by name: no `get` on pods is needed)."""
        try:
            by_name = (("fieldSelector", f"metadata.name={meta['name']}"),)
            found = await self._send("GET", PODS, meta["namespace"], query=by_name)
        except ApiException as e:
            raise api_error(e) from e
        labels = [(p["metadata"].get("labels") or {}) for p in found.get("items") or []]
        return any(lab.get(names.RUN_LABEL) == meta["labels"][names.RUN_LABEL] for lab in labels)

    async def list_run_pods(self, namespace: str, run: str) -> list[Body]:
        """An active run's pods from the cache once primed (one LIST per run and process); else a LIST."""
        index = self.cache.run_pods if self.cache is not None else None
        return await self._list_through(
            index,
            (namespace, run),
            lambda: self._send("GET", PODS, namespace, query=(("labelSelector", run_selector(run)),)),
        )

    async def delete_pod(self, namespace: str, name: str) -> None:
        now = (("gracePeriodSeconds", "0"),)
        await self._send_checked("DELETE", PODS, namespace, name, query=now, ok=frozenset({404}))

    async def read_log(self, namespace: str, pod: str, container: str, *, limit_bytes: int) -> str:
        """The end of a container's log, bounded in lines *and* bytes; '' if unavailable."""
        most = max(1, limit_bytes * 4)  # tail first, then at most this many bytes of it
        lines = str(max(20, limit_bytes // 20))
        query = (("container", container), ("tailLines", lines), ("limitBytes", str(most)))
        try:
            text: str = await self._send("GET", PODS, namespace, pod, "log", query=query, text_bytes=most)
        except (ApiException, KubeError):
            return ""
        return text

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
            "source": {"component": names.COMPONENT},
            "reportingComponent": names.COMPONENT,
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
        }
        try:  # an Event is best effort; the status carries the same facts
            await self._send("POST", EVENTS, ref.namespace, body=body)
        except (ApiException, KubeError):
            return

    async def list_pod_events(self, namespace: str, pod: str) -> list[Body]:
        """The Events about one pod (server-side field selector; at most POD_EVENTS_LIMIT); [] if unavailable:
        they explain a failure, they never decide one."""
        try:
            result = await self._raw(
                self.core.list_namespaced_event,
                namespace,
                field_selector=f"involvedObject.kind=Pod,involvedObject.name={pod}",
                limit=POD_EVENTS_LIMIT,
            )
        except (ApiException, KubeError):
            return []
        items = result.get("items") if isinstance(result, dict) else None
        return list(items) if isinstance(items, list) else []
