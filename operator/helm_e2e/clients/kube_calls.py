"""What every part of the Kube adapter shares: the API clients, the calls in worker threads, error mapping
and lists served through the watch cache (clients/kube.py assembles the parts)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import kubernetes.client as k8s
from kubernetes.client.exceptions import ApiException

from helm_e2e.clients.apierror import Body, api_error, call
from helm_e2e.clients.apierror import status_of as _status
from helm_e2e.clients.followed import Primable
from helm_e2e.clients.kube_rest import JSON, MAX_ANSWER_BYTES, Request, Resource, Rest, ThreadRest, call_json
from helm_e2e.clients.watch_cache import WatchCache


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


class KubeCalls:
    def __init__(
        self,
        api: k8s.ApiClient,
        *,
        timeout_seconds: float = 30.0,
        cache: WatchCache | None = None,
        rest: Rest | None = None,
    ) -> None:
        """`cache`: what the operator's watches delivered (fed by the handlers): runs and pods of active
        runs are read from it when it is fresh enough. Without it (the CLI), every read asks the API.
        `rest`: what sends a run's own requests by path (clients/kube_rest.py); the operator's is on its
        event loop, anyone else's (default) the kubernetes client in a thread."""
        self.cache = cache
        self.api = api
        self.rest: Rest = rest or ThreadRest(api, timeout_seconds=timeout_seconds)
        self.custom = k8s.CustomObjectsApi(api)
        self.timeout = timeout_seconds

    # The built-in APIs' modules import their models (CoreV1Api's: ~20 MiB, 0.5-1 s): built on first use,
    # so an operator whose namespaces have no release yet does not hold them (tests/bench/idle.py).
    @functools.cached_property
    def core(self) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api)

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await call(fn, *args, request_timeout=self.timeout, **kwargs)

    async def _raw(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await call_json(fn, *args, request_timeout=self.timeout, **kwargs)

    async def _send(
        self,
        method: str,
        resource: Resource,
        namespace: str,
        name: str = "",
        sub: str = "",
        *,
        query: tuple[tuple[str, str], ...] = (),
        body: Body | None = None,
        content_type: str = JSON,
        text_bytes: int = 0,
        answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> Any:
        """One request by `self.rest` (the chart's RBAC is derived from these calls: tests/unit/chart)."""
        path = resource.path(namespace, name, sub)
        return await self.rest.send(
            Request(method, path, query, body, content_type, text_bytes, answer_bytes)
        )

    async def _send_checked(self, *args: Any, ok: frozenset[int], **kw: Any) -> Any:
        """Send; statuses in `ok` return None, every other API error becomes a KubeError."""
        return await _allowing(self._send(*args, **kw), ok)

    async def _checked(self, fn: Callable[..., Any], *args: Any, ok: frozenset[int], **kw: Any) -> Any:
        """Call; statuses in `ok` return None, every other API error becomes a KubeError."""
        return await _allowing(self._call(fn, *args, **kw), ok)

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


async def _allowing(request: Awaitable[Any], ok: frozenset[int]) -> Any:
    """The request's answer; None for an API error whose status is in `ok`, a KubeError for any other."""
    try:
        return await request
    except ApiException as e:
        if _status(e) in ok:
            return None
        raise api_error(e) from e
