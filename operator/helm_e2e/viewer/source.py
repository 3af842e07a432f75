"""What the viewer reads from the apiserver, with the user's own credentials (effects).

Every read is one bounded request (`limit`, a timeout); a 403 becomes `Forbidden` for that namespace, a 404
None. Which namespaces the user may list is asked of the apiserver itself (SelfSubjectAccessReview): the
viewer never decides it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import kubernetes.client as k8s
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from helm_e2e.clients.apierror import api_error, status_of
from helm_e2e.clients.kube_rest import call_json
from helm_e2e.core.model import names
from helm_e2e.core.model.dns_names import label_value
from helm_e2e.viewer import api

Body = dict[str, Any]
MAX_RELEASE_RUNS = 1000  # runs of one release read for its page (one list request)
WATCH_SECONDS = 10  # one watch request's length: a closed page's watch ends within it


class Forbidden(Exception):
    """The apiserver refused the user this read (403)."""

    def __init__(self, namespace: str | None) -> None:
        super().__init__(f"forbidden in namespace {namespace}" if namespace else "forbidden cluster-wide")
        self.namespace = namespace


@dataclass(frozen=True)
class Scope:
    """Where the runs list looks: cluster-wide, or these namespaces (in this order)."""

    cluster: bool
    namespaces: tuple[str, ...]

    def targets(self, namespace: str) -> list[str | None]:
        """The lists one runs page walks: the one namespace asked for, or the whole scope."""
        if namespace:
            return [namespace]
        return [None] if self.cluster else list(self.namespaces)


class Source:
    def __init__(self, api_client: k8s.ApiClient, *, timeout_seconds: float = 30.0) -> None:
        self.api_client = api_client
        self.custom = k8s.CustomObjectsApi(api_client)
        self.core = k8s.CoreV1Api(api_client)
        self.auth = k8s.AuthorizationV1Api(api_client)
        self.timeout = timeout_seconds

    def _lister(self, namespace: str | None) -> tuple[Callable[..., Any], tuple[str, ...]]:
        """The list call of E2ERuns cluster-wide (None) or in one namespace, with its arguments."""
        if namespace is None:
            return self.custom.list_cluster_custom_object, (names.GROUP, names.VERSION, names.RUNS)
        return self.custom.list_namespaced_custom_object, (names.GROUP, names.VERSION, namespace, names.RUNS)

    async def _read(self, namespace: str | None, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            answer = await call_json(fn, *args, request_timeout=self.timeout, **kw)  # read in the thread
        except ApiException as e:
            if status_of(e) == 403:
                raise Forbidden(namespace) from None
            if status_of(e) == 404:
                return None
            raise api_error(e) from e
        return answer

    async def may_list(self, namespace: str | None) -> bool:
        """Whether the apiserver lets the user list E2ERuns there ("" / None: cluster-wide)."""
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "namespace": namespace or "",
                    "verb": "list",
                    "group": names.GROUP,
                    "resource": names.RUNS,
                }
            },
        }
        reply = await self._read(namespace, self.auth.create_self_subject_access_review, body)
        return bool(reply and reply.get("status", {}).get("allowed"))

    async def decide_scope(self, namespaces: Sequence[str], *, default: str) -> Scope:
        if namespaces:
            return Scope(cluster=False, namespaces=tuple(dict.fromkeys(namespaces)))
        if await self.may_list(None):
            return Scope(cluster=True, namespaces=())
        return Scope(cluster=False, namespaces=(default,))

    async def list_runs(
        self, namespace: str | None, *, selector: str = "", limit: int, token: str = ""
    ) -> tuple[list[Body], str, str]:
        """One page of E2ERuns: (items, the apiserver's continue token, the list's resourceVersion)."""
        kw: dict[str, Any] = {"limit": limit, "label_selector": selector}
        if token:
            kw["_continue"] = token
        fn, args = self._lister(namespace)
        body = await self._read(namespace, fn, *args, **kw) or {}
        meta = body.get("metadata") or {}
        return (
            list(body.get("items") or []),
            str(meta.get("continue") or ""),
            str(meta.get("resourceVersion")),
        )

    async def release_runs(self, namespace: str, release: str) -> tuple[list[Body], bool]:
        """The release's runs (at most MAX_RELEASE_RUNS) and whether there were more."""
        selector = f"{names.RELEASE_LABEL}={label_value(release)}"
        items, more, _ = await self.list_runs(namespace, selector=selector, limit=MAX_RELEASE_RUNS)
        mine = [b for b in items if (b.get("spec") or {}).get("release", {}).get("name") == release]
        return mine, bool(more)

    async def get_run(self, namespace: str, name: str) -> Body | None:
        fn = self.custom.get_namespaced_custom_object
        found: Body | None = await self._read(
            namespace, fn, names.GROUP, names.VERSION, namespace, names.RUNS, name
        )
        return found

    async def run_events(self, namespace: str, name: str) -> list[Body] | None:
        """The Events about the run (None: the user may not list Events in its namespace)."""
        selector = f"involvedObject.kind={names.RUN_KIND},involvedObject.name={name}"
        try:
            body = await self._read(
                namespace,
                self.core.list_namespaced_event,
                namespace,
                field_selector=selector,
                limit=api.MAX_EVENTS,
            )
        except Forbidden:
            return None
        return list((body or {}).get("items") or [])

    def watch_runs(self, namespace: str | None, version: str, stop: threading.Event) -> Iterator[Body]:
        """Watch events of E2ERuns from `version` until `stop` (blocking: run it in a thread). Each
        request lasts WATCH_SECONDS and resumes from the last version seen; 410 Gone starts afresh."""
        while not stop.is_set():
            w = watch.Watch()  # type: ignore[no-untyped-call]
            fn, args = self._lister(namespace)
            try:
                for event in w.stream(  # type: ignore[no-untyped-call]
                    fn, *args, resource_version=version, timeout_seconds=WATCH_SECONDS,
                    allow_watch_bookmarks=True, _request_timeout=WATCH_SECONDS + 20,
                ):  # fmt: skip
                    version = str(w.resource_version or version)
                    if stop.is_set():
                        return
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        yield event
            except ApiException as e:
                if status_of(e) == 410:
                    version = self.current_version(namespace)
                    continue
                raise
            finally:
                w.stop()  # type: ignore[no-untyped-call]

    def current_version(self, namespace: str | None) -> str:
        """The resourceVersion to watch from (a one-item list: blocking, run it in a thread)."""
        fn, args = self._lister(namespace)
        body: Any = fn(*args, limit=1, _request_timeout=self.timeout)
        return str(body.get("metadata", {}).get("resourceVersion") or "")
