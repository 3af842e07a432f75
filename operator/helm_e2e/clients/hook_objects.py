"""Kubernetes effects for chart test hooks: supporting objects (ServiceAccount, ConfigMap, Secret, Service,
PersistentVolumeClaim, Role, RoleBinding) and test Jobs with their pods.

Like clients/kube.py, the synchronous `kubernetes` client runs in worker threads and results are raw JSON
dicts. Refusals become project errors: `ApiRefused` (the API's status, reason and own message) and
`NameTaken` (a hook object's name is held by an object that is not ours, or by one we may not replace).
404 on delete is fine; a 409 on create of an object of the same run is adopted (repeat after kill -9).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import kubernetes.client as k8s
from kubernetes.client.exceptions import ApiException

from helm_e2e.clients.apierror import api_refusal, call
from helm_e2e.clients.kube_rest import call_json
from helm_e2e.core.model import names
from helm_e2e.core.model.dns_names import label_value, run_selector
from helm_e2e.errors import ApiRefused, NameTaken

Body = dict[str, Any]
# (create, read, delete, apply) of one kind; apply None where the kind is only ever created
KindCalls = tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any], Callable[..., Any] | None]
DELETE_WAIT_SECONDS = 30.0  # how long a replaced object may take to disappear
DELETE_POLL_SECONDS = 0.25


def is_ours(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Managed by helm-e2e and for the same release (labels), so we may replace it."""
    have = (existing.get("metadata") or {}).get("labels") or {}
    want = (wanted.get("metadata") or {}).get("labels") or {}
    return have.get(names.MANAGED_BY_LABEL) == names.MANAGED_BY and have.get(names.RELEASE_LABEL) == want.get(
        names.RELEASE_LABEL
    )


def same_run(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    have = (existing.get("metadata") or {}).get("labels") or {}
    want = (wanted.get("metadata") or {}).get("labels") or {}
    return is_ours(existing, wanted) and have.get(names.RUN_LABEL) == want.get(names.RUN_LABEL)


class HookObjects:
    """Create, read and delete chart test hook objects and test Jobs in a release's namespace."""

    def __init__(self, api: k8s.ApiClient, *, timeout_seconds: float = 30.0) -> None:
        self.core = k8s.CoreV1Api(api)
        self.rbac = k8s.RbacAuthorizationV1Api(api)
        self.batch = k8s.BatchV1Api(api)
        self.timeout = timeout_seconds
        # (create, read, delete, apply) per kind, spelled out so tests/unit/chart/test_rbac.py can derive the
        # RBAC rules; apply is the server-side apply of a release Helm 4 applied server-side
        self._verbs: dict[str, KindCalls] = {**self._core_kinds(), **self._rbac_and_batch_kinds()}

    def _core_kinds(self) -> dict[str, KindCalls]:
        return {
            "ServiceAccount": (
                self.core.create_namespaced_service_account,
                self.core.read_namespaced_service_account,
                self.core.delete_namespaced_service_account,
                self.core.patch_namespaced_service_account,
            ),
            "ConfigMap": (
                self.core.create_namespaced_config_map,
                self.core.read_namespaced_config_map,
                self.core.delete_namespaced_config_map,
                self.core.patch_namespaced_config_map,
            ),
            "Secret": (
                self.core.create_namespaced_secret,
                self.core.read_namespaced_secret,
                self.core.delete_namespaced_secret,
                self.core.patch_namespaced_secret,
            ),
            "Service": (
                self.core.create_namespaced_service,
                self.core.read_namespaced_service,
                self.core.delete_namespaced_service,
                self.core.patch_namespaced_service,
            ),
            "PersistentVolumeClaim": (
                self.core.create_namespaced_persistent_volume_claim,
                self.core.read_namespaced_persistent_volume_claim,
                self.core.delete_namespaced_persistent_volume_claim,
                self.core.patch_namespaced_persistent_volume_claim,
            ),
        }

    def _rbac_and_batch_kinds(self) -> dict[str, KindCalls]:
        return {
            "Role": (
                self.rbac.create_namespaced_role,
                self.rbac.read_namespaced_role,
                self.rbac.delete_namespaced_role,
                self.rbac.patch_namespaced_role,
            ),
            "RoleBinding": (
                self.rbac.create_namespaced_role_binding,
                self.rbac.read_namespaced_role_binding,
                self.rbac.delete_namespaced_role_binding,
                self.rbac.patch_namespaced_role_binding,
            ),
            "Job": (
                self.batch.create_namespaced_job,
                self.batch.read_namespaced_job,
                self.batch.delete_namespaced_job,
                None,  # a test Job is created, never applied
            ),
        }

    def _api(self, kind: str) -> KindCalls:
        try:
            return self._verbs[kind]
        except KeyError:
            raise ApiRefused(
                status=0, reason="KindNotSupported", message=f"kind {kind} is not created"
            ) from None

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await call(fn, *args, request_timeout=self.timeout, **kwargs)

    async def _raw(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await call_json(fn, *args, request_timeout=self.timeout, **kwargs)

    async def get(self, kind: str, namespace: str, name: str) -> Body | None:
        _, read, _, _ = self._api(kind)
        try:
            found: Body = await self._raw(read, name, namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise api_refusal(e) from e
        return found

    async def create(self, body: Mapping[str, Any], *, replace_ours: bool, server_side: bool = False) -> str:
        """Create a hook object; its uid. When the name is taken: adopt it if this run made it; replace it if
        it is ours and `replace_ours` (the hook's policy is before-hook-creation); else raise NameTaken.
        `server_side`: as Helm 4 creates the hook objects of a release it applied server-side — a server-side
        apply with its field manager, conflicts not forced — but only where no object has the name (an
        object of someone else's is never applied onto: NameTaken, as for a create)."""
        kind, meta = str(body["kind"]), body["metadata"]
        namespace, name = str(meta["namespace"]), str(meta["name"])
        create, _, _, apply = self._api(kind)
        existing = None
        if server_side and apply is not None:  # an apply would merge into an existing object: look first
            existing = await self.get(kind, namespace, name)
        try:
            if existing is None:
                made = await (
                    self._apply(apply, namespace, name, body)
                    if server_side and apply is not None
                    else self._raw(create, namespace, dict(body))
                )
                return str((made.get("metadata") or {}).get("uid") or "")
        except ApiException as e:
            refusal = api_refusal(e)
            applying = server_side and apply is not None
            if e.status != 409 or applying:  # an apply's 409 is a Conflict: a field another manager owns
                raise refusal from e
        existing = existing or await self.get(kind, namespace, name)
        if existing is None:  # deleted in between: one more try
            return await self.create(body, replace_ours=False, server_side=server_side)
        if same_run(existing, body):
            return str(existing["metadata"].get("uid") or "")  # created by an earlier attempt of this run
        if not is_ours(existing, body):
            raise NameTaken(kind, namespace, name, "the name is taken by an object helm-e2e did not create")
        if not replace_ours:
            raise NameTaken(kind, namespace, name, "an earlier run's object exists (no before-hook-creation)")
        await self.delete(kind, namespace, name, uid=str(existing["metadata"].get("uid") or ""))
        await self._wait_gone(kind, namespace, name)
        return await self.create(body, replace_ours=False, server_side=server_side)

    async def _apply(
        self, apply: Callable[..., Any], namespace: str, name: str, body: Mapping[str, Any]
    ) -> Body:
        """Server-side apply as Helm 4's patchResourceServerSide: field manager `helm`, conflicts not
        forced, strict field validation."""
        applied: Body = await self._raw(
            apply,
            name,
            namespace,
            dict(body),
            field_manager=names.HELM_FIELD_MANAGER,
            force=False,
            field_validation="Strict",
            _content_type="application/apply-patch+yaml",
        )
        return applied

    async def delete(self, kind: str, namespace: str, name: str, *, uid: str = "") -> None:
        """Delete (background propagation); 404 is fine. With `uid`, only that very object."""
        _, _, delete, _ = self._api(kind)
        options = k8s.V1DeleteOptions(
            propagation_policy="Background",
            preconditions=k8s.V1Preconditions(uid=uid) if uid else None,
        )
        try:
            await self._call(delete, name, namespace, body=options)
        except ApiException as e:
            if e.status == 404:
                return
            if e.status == 409 and uid:  # precondition failed: someone replaced it already
                return
            raise api_refusal(e) from e

    async def delete_if_run(self, kind: str, namespace: str, name: str, *, run: str) -> None:
        """Delete a hook object only if it carries this run's label (a newer run may own the name now)."""
        existing = await self.get(kind, namespace, name)
        labels = ((existing or {}).get("metadata") or {}).get("labels") or {}
        if existing and labels.get(names.RUN_LABEL) == label_value(run):
            await self.delete(kind, namespace, name, uid=str(existing["metadata"].get("uid") or ""))

    async def _wait_gone(self, kind: str, namespace: str, name: str) -> None:
        deadline = time.monotonic() + DELETE_WAIT_SECONDS
        while await self.get(kind, namespace, name) is not None:
            if time.monotonic() >= deadline:
                why = f"an earlier run's object was not gone after {DELETE_WAIT_SECONDS:.0f}s"
                raise NameTaken(kind, namespace, name, why)
            await asyncio.sleep(DELETE_POLL_SECONDS)

    # --- test Jobs -------------------------------------------------------------------------------------
    async def create_job(self, body: Mapping[str, Any]) -> None:
        """Create a test Job; 409 (an earlier attempt made it: its name is `<run>-<test>`) is adopted."""
        try:
            await self._call(self.batch.create_namespaced_job, body["metadata"]["namespace"], dict(body))
        except ApiException as e:
            if e.status != 409:
                raise api_refusal(e) from e

    async def list_run_jobs(self, namespace: str, run: str) -> list[Body]:
        try:
            result = await self._raw(
                self.batch.list_namespaced_job, namespace, label_selector=run_selector(run)
            )
        except ApiException as e:
            raise api_refusal(e) from e
        items: list[Body] = result.get("items") or []
        return items
