"""Kubernetes effects: idempotent create, status patch, delete, list, logs and Events.

The synchronous `kubernetes` client runs in worker threads (never blocking kopf's loop) with a timeout on
every request, and returns raw JSON dicts, so the core works on the same shapes as `kubectl get -o json`.
404 on delete and 409 on create are ordinary outcomes; every other API error leaves this module as a
project error (`errors.KubeError`, or `errors.ApiRefused` for a create no retry can fix).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import kubernetes.client as k8s
import kubernetes.config as k8s_config
from kubernetes.client.exceptions import ApiException

from helm_e2e.clients.apierror import Body, api_error, api_refusal, call
from helm_e2e.clients.apierror import status_of as _status
from helm_e2e.clients.followed import Primable
from helm_e2e.clients.gitops import GitOpsReader
from helm_e2e.clients.hook_objects import HookObjects
from helm_e2e.clients.rollout import RolloutReader
from helm_e2e.clients.watch_cache import WatchCache
from helm_e2e.core.model import names
from helm_e2e.core.model.dns_names import label_value, run_selector
from helm_e2e.core.plan.readiness import ObjectKey
from helm_e2e.core.sources.intake import installed_revisions
from helm_e2e.errors import KubeError

# a LIST answered as PartialObjectMetadataList: the items' metadata, no data (same RBAC verb: list)
METADATA_ONLY = {"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"}
REFUSALS = frozenset({400, 403, 404, 409, 422})  # answers to a create that no retry changes
POD_EVENTS_LIMIT = 100  # Events listed per failed test's pod (core.diagnostics keeps the newest 20)


class Patched(StrEnum):
    APPLIED = "Applied"
    CONFLICT = "Conflict"  # the resourceVersion precondition failed: look again
    GONE = "Gone"


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    api_version: str
    namespace: str
    name: str
    uid: str = ""


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


class Kube:
    def __init__(
        self, api: k8s.ApiClient, *, timeout_seconds: float = 30.0, cache: WatchCache | None = None
    ) -> None:
        """`cache`: what the operator's watches delivered (fed by the handlers): runs and pods of active
        runs are read from it when it is fresh enough. Without it (the CLI), every read asks the API."""
        self.cache = cache
        self.api = api
        self.custom = k8s.CustomObjectsApi(api)
        self.timeout = timeout_seconds
        self.gitops = GitOpsReader(api, timeout_seconds=timeout_seconds)  # a release's Flux HelmRelease

    # The built-in APIs' modules import their models (CoreV1Api's: ~20 MiB, 0.5-1 s): built on first use,
    # so an operator whose namespaces have no release yet does not hold them (tests/bench/idle.py).
    @functools.cached_property
    def core(self) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api)

    @functools.cached_property
    def objects(self) -> HookObjects:  # chart test hooks' objects, Jobs
        return HookObjects(self.api, timeout_seconds=self.timeout)

    @functools.cached_property
    def rollout(self) -> RolloutReader:  # the readiness gate's GETs
        return RolloutReader(self.api, timeout_seconds=self.timeout)

    def build_apis(self) -> None:
        """Build the API clients above now: in a thread, their imports do not stall the event loop."""
        _ = self.core, self.objects, self.rollout

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await call(fn, *args, request_timeout=self.timeout, **kwargs)

    async def _raw(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        resp = await self._call(fn, *args, _preload_content=False, **kwargs)
        return json.loads(resp.data)

    async def _checked(self, fn: Callable[..., Any], *args: Any, ok: frozenset[int], **kw: Any) -> Any:
        """Call; statuses in `ok` return None, every other API error becomes a KubeError."""
        try:
            return await self._call(fn, *args, **kw)
        except ApiException as e:
            if _status(e) in ok:
                return None
            raise api_error(e) from e

    async def get_helm_release(self, namespace: str, name: str) -> Body | None:
        return await self.gitops.get_helm_release(namespace, name)

    async def get_application(self, namespace: str, name: str) -> Body | None:
        return await self.gitops.get_application(namespace, name)

    # --- E2ERuns ---------------------------------------------------------------------------------------
    async def create_run(self, body: Body) -> Body | None:
        """Create an E2ERun; None when it already exists (its deterministic name is the lock)."""
        try:
            created: Body = await self._call(
                self.custom.create_namespaced_custom_object,
                names.GROUP,
                names.VERSION,
                body["metadata"]["namespace"],
                names.RUNS,
                body,
            )
        except ApiException as e:
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
            run: Body = await self._call(
                self.custom.get_namespaced_custom_object,
                names.GROUP,
                names.VERSION,
                namespace,
                names.RUNS,
                name,
            )
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
        """The runs of `release` in the namespace; None: all of them (a schedule's Argo CD applications)."""
        selector = f"{names.RELEASE_LABEL}={label_value(release)}" if release is not None else None
        try:
            result = await self._call(
                self.custom.list_namespaced_custom_object,
                names.GROUP,
                names.VERSION,
                namespace,
                names.RUNS,
                label_selector=selector,
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
            patched: Body = await self._call(
                self.custom.patch_namespaced_custom_object_status,
                names.GROUP,
                names.VERSION,
                namespace,
                names.RUNS,
                name,
                body,
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
        await self._checked(
            self.custom.delete_namespaced_custom_object,
            names.GROUP,
            names.VERSION,
            namespace,
            names.RUNS,
            name,
            ok=frozenset({404}),
        )

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
        await self._checked(
            self.custom.patch_namespaced_custom_object_status,
            names.GROUP,
            names.VERSION,
            namespace,
            names.SUITES,
            name,
            {"status": dict(status)},
            ok=frozenset({404}),
        )

    # --- Pods --------------------------------------------------------------------------------------------
    async def create_pod(self, body: Body) -> None:
        """Create a test pod; a pod of the same run is adopted, anything else refused is ApiRefused."""
        meta = body["metadata"]
        try:
            created = await self._raw(self.core.create_namespaced_pod, meta["namespace"], body)
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
            found = await self._raw(
                self.core.list_namespaced_pod,
                meta["namespace"],
                field_selector=f"metadata.name={meta['name']}",
            )
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
            lambda: self._raw(self.core.list_namespaced_pod, namespace, label_selector=run_selector(run)),
        )

    async def _list_through(
        self, index: Primable | None, key: Any, list_call: Callable[[], Awaitable[Any]]
    ) -> list[Body]:
        """A group's objects from `index` when it is primed and fresh; else listed, and the LIST kept."""
        if index is not None and (cached := index.get(key)) is not None:
            return cached
        priming = index is not None and index.start_priming(key)
        try:
            result = await list_call()
        except BaseException as e:
            if index is not None and priming:
                index.abandon_priming(key)
            if isinstance(e, ApiException):
                raise api_error(e) from e
            raise
        items = list((result or {}).get("items") or [])
        if index is not None and priming:
            if result is None:  # a refusal the caller reads as empty (no CRD): nothing to follow
                index.abandon_priming(key)
            else:
                index.primed(key, items, str((result.get("metadata") or {}).get("resourceVersion", "")))
        return items

    async def delete_pod(self, namespace: str, name: str) -> None:
        await self._checked(
            self.core.delete_namespaced_pod, name, namespace, grace_period_seconds=0, ok=frozenset({404})
        )

    async def read_log(self, namespace: str, pod: str, container: str, *, limit_bytes: int) -> str:
        """The end of a container's log, bounded in lines *and* bytes; '' if unavailable."""
        try:
            resp = await self._call(
                self.core.read_namespaced_pod_log,
                pod,
                namespace,
                container=container,
                tail_lines=max(20, limit_bytes // 20),
                limit_bytes=max(1, limit_bytes * 4),  # tail first, then at most this many bytes of it
                _preload_content=False,
            )
        except (ApiException, KubeError):
            return ""
        data: bytes = resp.data
        return data.decode(errors="replace")

    # --- Helm release secrets and service accounts ------------------------------------------------------
    async def get_secret(self, namespace: str, name: str) -> Body | None:
        try:
            secret: Body = await self._raw(self.core.read_namespaced_secret, name, namespace)
        except ApiException as e:
            if _status(e) == 404:
                return None
            raise api_error(e) from e
        return secret

    async def _helm_secret_labels(self, namespace: str, selector: str) -> list[dict[str, str]]:
        """Labels of Helm's release Secrets matching `selector` (server-side selectors). The apiserver
        answers with their metadata only: a release's payloads (up to 1 MiB per revision, and every release
        of the namespace for `list_release_names`) are never sent, parsed or held for a list of labels.
        (An empty PartialObjectMetadataList has `"items": null`.)"""
        owner = f"{names.HELM_OWNER_LABEL}={names.HELM_OWNER}"
        try:
            result = await self._raw(
                self.core.list_namespaced_secret,
                namespace,
                label_selector=f"{owner},{selector}" if selector else owner,
                field_selector=f"type={names.HELM_SECRET_TYPE}",
                _headers=METADATA_ONLY,
            )
        except ApiException as e:
            raise api_error(e) from e
        return [dict(s["metadata"].get("labels") or {}) for s in result.get("items") or []]

    async def release_secret_labels(self, namespace: str, release: str) -> list[dict[str, str]]:
        """Labels (owner, name, status, version) of each stored revision of a release."""
        return await self._helm_secret_labels(namespace, f"{names.HELM_NAME_LABEL}={release}")

    async def list_release_names(self, namespace: str) -> list[str]:
        """The names of the Helm releases stored in a namespace (scheduled suites re-verify them)."""
        labels = await self._helm_secret_labels(namespace, "")
        return sorted({lab[names.HELM_NAME_LABEL] for lab in labels if lab.get(names.HELM_NAME_LABEL)})

    async def count_release_secrets(self, namespace: str, release: str) -> int:
        """How many revisions of a release are still installed (0 = uninstalled)."""
        return installed_revisions(await self.release_secret_labels(namespace, release))

    async def list_test_accounts(self, namespace: str) -> frozenset[str]:
        """ServiceAccounts a namespace admin marked for tests (label helm-e2e.dev/test-account=true), from
        kopf's watch of them once a LIST primed the namespace."""
        index = self.cache.accounts if self.cache is not None else None
        accounts = await self._list_through(
            index,
            namespace,
            lambda: self._raw(
                self.core.list_namespaced_service_account,
                namespace,
                label_selector=names.TEST_ACCOUNT_SELECTOR,
            ),
        )
        return frozenset(str(a["metadata"]["name"]) for a in accounts)

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
            await self._call(self.core.create_namespaced_event, ref.namespace, body)
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
