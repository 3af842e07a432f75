"""A shard of the cluster: the namespaces whose labels match HELM_E2E_NAMESPACE_SELECTOR.

kopf serves namespaces by name (exact names, or globs that make it watch every namespace), never by label.
So the operator lists the matching namespaces when it starts and gives kopf that exact list (every other
watch stays namespaced, so per-namespace Roles suffice), and watches namespaces with the same selector in
a thread: when a namespace joins or leaves the shard, `changed` is set, kopf stops, and `run_operator`
starts it again with the new list, in the same process (no pod restart).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

import kubernetes.client as k8s
import structlog
import urllib3
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

log = structlog.get_logger(__name__)
WATCH_SECONDS = 300  # one watch request's length; it is resumed from the last resourceVersion
RETRY_SECONDS = 5.0


def decide_changed(members: frozenset[str], event_type: str, name: str) -> bool:
    """Whether one event of a label-selected namespace watch changes the shard. A namespace that stops
    matching the selector (label removed) arrives as DELETED; one being deleted leaves the shard only
    when its DELETED event comes (while Terminating it still holds releases)."""
    if event_type == "DELETED":
        return name in members
    return name not in members


class ShardWatch:
    """The shard's namespaces at start (`namespaces`) and a thread that sets `changed` when they change."""

    def __init__(self, api: k8s.ApiClient, selector: str, *, timeout_seconds: float = 30.0) -> None:
        self.core = k8s.CoreV1Api(api)
        self.selector = selector
        self.timeout = timeout_seconds
        self.changed = threading.Event()
        self._stop = threading.Event()
        members, self._version = self._list()
        self.namespaces = sorted(members)
        self._thread = threading.Thread(target=self._run, name="shard-watch", daemon=True)

    def start(self) -> ShardWatch:
        log.info("shard.listed", selector=self.selector, namespaces=",".join(self.namespaces))
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        members = frozenset(self.namespaces)
        while not self._stop.is_set() and not self.changed.is_set():
            try:
                self._watch(members)
            except ApiException as e:
                if e.status == 410:  # our resourceVersion is too old: list again and compare
                    self._relist(members)
                else:
                    log.warning("shard.watch_failed", status=e.status)
                    self._stop.wait(RETRY_SECONDS)
            except (urllib3.exceptions.HTTPError, OSError) as e:
                log.warning("shard.watch_failed", error=type(e).__name__)
                self._stop.wait(RETRY_SECONDS)

    def _watch(self, members: frozenset[str]) -> None:
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            self.core.list_namespace,
            label_selector=self.selector,
            resource_version=self._version,
            timeout_seconds=WATCH_SECONDS,
            _request_timeout=WATCH_SECONDS + self.timeout,
        )
        for event in stream:
            if self._stop.is_set():
                return
            body: Mapping[str, Any] = event["raw_object"]
            meta = body.get("metadata") or {}
            if event["type"] == "ERROR":
                raise ApiException(status=int(body.get("code", 0) or 0))
            self._version = str(meta.get("resourceVersion", self._version))
            if decide_changed(members, event["type"], meta.get("name", "")):
                self._changed(f"{event['type'].lower()} {meta.get('name', '')}")
                return

    def _list(self) -> tuple[frozenset[str], str]:
        """The matching namespaces' names and the list's resourceVersion (raw JSON: names only)."""
        resp = self.core.list_namespace(
            label_selector=self.selector, _request_timeout=self.timeout, _preload_content=False
        )
        listed = json.loads(resp.data)  # type: ignore[attr-defined]  # _preload_content=False: the response
        names = frozenset(str(ns["metadata"]["name"]) for ns in listed.get("items") or [])
        return names, str(listed["metadata"].get("resourceVersion", ""))

    def _relist(self, members: frozenset[str]) -> None:
        names, self._version = self._list()
        if names != members:
            self._changed("relisted")

    def _changed(self, what: str) -> None:
        log.info("shard.changed", selector=self.selector, change=what)
        self.changed.set()
