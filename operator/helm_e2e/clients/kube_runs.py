"""The Kube adapter's E2ERun and E2ESuite calls: idempotent create (409: it exists, its deterministic name is
the lock), reads through the watch cache, the status patch with its resourceVersion precondition, delete."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from helm_e2e.clients.apierror import Body, api_error
from helm_e2e.clients.apierror import status_of as _status
from helm_e2e.clients.kube_calls import KubeCalls, Patched
from helm_e2e.clients.kube_rest import LIST_BYTES, MERGE_PATCH, RUNS, SUITES
from helm_e2e.core.model import names
from helm_e2e.core.model.dns_names import label_value


class RunCalls(KubeCalls):
    # --- E2ERuns ---------------------------------------------------------------------------------------
    async def create_run(self, body: Body) -> Body | None:
        """Create an E2ERun; None when it already exists (its deterministic name is the lock)."""
        key = (str(body["metadata"]["namespace"]), str(body["metadata"]["name"]))
        if self.cache is not None:
            self.cache.creating_run(key)
        try:
            created: Body = await self._send("POST", RUNS, key[0], body=body)
        except ApiException as e:
            if self.cache is not None:
                self.cache.not_created(key)
            if _status(e) == 409:
                return None
            raise api_error(e) from e
        if self.cache is not None:
            self.cache.created_run(created)
        return created

    async def get_run(self, namespace: str, name: str) -> Body | None:
        if self.cache is not None and (cached := self.cache.run((namespace, name))) is not None:
            return cached
        try:
            run: Body = await self._send("GET", RUNS, namespace, name)
        except ApiException as e:
            if _status(e) == 404:
                if self.cache is not None:
                    self.cache.forget_run((namespace, name))
                return None
            raise api_error(e) from e
        if self.cache is not None:
            self.cache.saw_run(run)
        return run

    async def list_runs(self, namespace: str, release: str | None) -> list[Body]:
        """The runs of `release` in the namespace (a few: `historyLimit` keeps 10); None: all of them (a
        schedule's Argo CD applications: unbounded, in a thread)."""
        try:
            if release is not None:
                selector = (("labelSelector", f"{names.RELEASE_LABEL}={label_value(release)}"),)
                result = await self._send("GET", RUNS, namespace, query=selector, answer_bytes=LIST_BYTES)
            else:
                result = await self._call(
                    self.custom.list_namespaced_custom_object,
                    names.GROUP,
                    names.VERSION,
                    namespace,
                    names.RUNS,
                )
        except ApiException as e:
            raise api_error(e) from e
        return [
            b
            for b in (result.get("items") or [])
            if release is None or b.get("spec", {}).get("release", {}).get("name") == release
        ]

    async def patch_run_status(
        self, namespace: str, name: str, status: Mapping[str, Any], *, resource_version: str | None = None
    ) -> Patched:
        """Merge-patch the status; with `resource_version` the patch is a precondition (CONFLICT if stale)."""
        body: Body = {"status": dict(status)}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            patched: Body = await self._send(
                "PATCH", RUNS, namespace, name, "status", body=body, content_type=MERGE_PATCH
            )
        except ApiException as e:
            if self.cache is not None:  # whatever the cache holds lost to someone: read the API next
                self.cache.forget_run((namespace, name))
            if _status(e) == 409:
                return Patched.CONFLICT
            if _status(e) == 404:
                return Patched.GONE
            raise api_error(e) from e
        except BaseException:  # a timeout: whether it was applied is unknown
            if self.cache is not None:
                self.cache.forget_run((namespace, name))
            raise
        if self.cache is not None:
            self.cache.saw_run(patched)  # the response is the run after the write: never older than it
        return Patched.APPLIED

    async def delete_run(self, namespace: str, name: str) -> None:
        await self._send_checked("DELETE", RUNS, namespace, name, ok=frozenset({404}))

    # --- E2ESuites ---------------------------------------------------------------------------------------
    async def list_suites(self, namespace: str) -> list[Body]:
        """The namespace's E2ESuites: from kopf's watch once a LIST primed them (read at most once a minute
        in a busy namespace); [] when the CRD is not installed."""
        index = self.cache.suites if self.cache is not None else None
        return await self._list_through(
            index,
            namespace,
            lambda: self._checked(
                self.custom.list_namespaced_custom_object,
                names.GROUP,
                names.VERSION,
                namespace,
                names.SUITES,
                ok=frozenset({404}),
            ),
        )

    async def patch_suite_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        patch = {"status": dict(status)}
        await self._send_checked(
            "PATCH",
            SUITES,
            namespace,
            name,
            "status",
            body=patch,
            content_type=MERGE_PATCH,
            ok=frozenset({404}),
        )
