"""Test pods and E2ERuns streamed without kopf's per-event machinery.

A one-test run brings about ten watch events; eight are its pod's and its own E2ERun's. kopf handles every
event with a per-object worker task, a memory, three loggers, cause detection and handler invocation: about
0.5 ms each before our handler runs, the largest single share of the operator's CPU per run in a profile of
`make bench-scale`. The handlers of pods and runs need none of it (no diffs, no finalizers, no retries: they
update the watch cache and wake a run's pass), so these two resources are streamed with kopf's own watch
(its listing in pages, bookmarks, restarts after 410 Gone, reconnects, credentials, selectors) and each
event goes to a plain function. The rare work an event asks for that must wait on the network (a rerun's
creation, an artifact deletion) goes to `KeyedTasks`: in order per object, never blocking the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import kopf
import structlog
from kopf._cogs.clients import watching as kopf_watching
from kopf._cogs.structs import references as kopf_references

log = structlog.get_logger(__name__)
RESTART_SECONDS = 5.0  # after a stream failed in a way kopf's own watch does not retry (a 403, an ERROR)

EventHandler = Callable[[str, Mapping[str, Any]], None]  # (ADDED/MODIFIED/DELETED, object): quick, no await
Resource = tuple[str, str, str]  # (group, version, plural), as the kopf handlers are registered


class KeyedTasks:
    """Async work handed off by a stream's handler: one object's in order, different objects at once; a
    failure is logged, never lost in a task nobody awaits."""

    def __init__(self) -> None:
        self._last: dict[object, asyncio.Task[None]] = {}  # each object's newest: the next one waits for it
        self._running: set[asyncio.Task[None]] = (
            set()
        )  # all, the earlier ones of a chain too: stop() ends them

    def add(self, key: object, work: Callable[[], Awaitable[None]]) -> None:
        before = self._last.get(key)

        async def in_turn() -> None:
            if before is not None:
                await asyncio.wait([before])
            try:
                await work()
            except Exception as e:
                log.warning("watch.work_failed", key=str(key), error=type(e).__name__)

        task = asyncio.create_task(in_turn())
        self._last[key] = task
        self._running.add(task)
        task.add_done_callback(lambda done: self._finished(key, done))

    def _finished(self, key: object, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._last.get(key) is task:
            del self._last[key]

    async def stop(self) -> None:
        tasks = list(self._running)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def kopf_resource(resource: Resource) -> kopf_references.Resource:
    group, version, plural = resource
    return kopf_references.Resource(group=group, version=version, plural=plural, namespaced=True)


async def stream(
    settings: kopf.OperatorSettings,
    resource: Resource,
    namespace: str | None,
    handle: EventHandler,
    *,
    restart_seconds: float = RESTART_SECONDS,
) -> None:
    """Forever: every event of `resource` in `namespace` (None: the cluster) to `handle`; the initial
    listing's objects come as ADDED. A handler that raises loses that one event, not the stream."""
    target, where = kopf_resource(resource), kopf_references.NamespaceName(namespace) if namespace else None
    while True:
        try:
            async for event in kopf_watching.infinite_watch(
                settings=settings, resource=target, namespace=where
            ):
                if not isinstance(event, Mapping):  # kopf's marker that the initial listing is over
                    continue
                body = event.get("object")
                if not isinstance(body, Mapping) or event.get("type") == "BOOKMARK":  # no object in it
                    continue
                try:
                    handle(event.get("type") or "ADDED", body)
                except Exception as e:
                    log.warning("watch.event_failed", resource=resource[2], error=type(e).__name__)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the API's refusal or an ERROR event: said, and tried again
            log.warning(
                "watch.failed", resource=resource[2], namespace=namespace or "", error=type(e).__name__
            )
        await asyncio.sleep(restart_seconds)


def start(
    settings: kopf.OperatorSettings, namespaces: Iterable[str], handlers: Mapping[Resource, EventHandler]
) -> list[asyncio.Task[None]]:
    """One stream per resource and namespace (no namespaces: one per resource, cluster-wide)."""
    where: list[str | None] = list(namespaces) or [None]
    return [
        asyncio.create_task(stream(settings, resource, namespace, handle), name=f"watch {resource[2]}")
        for resource, handle in handlers.items()
        for namespace in where
    ]
