"""`GET /api/v1/watch`: live updates as Server-Sent Events, fed by a watch on E2ERuns with the user's rights.

One watch per target of the scope (cluster-wide, or each namespace), each in its own daemon thread (a
watch blocks: it must not hold a worker of the loop's executor that the other requests need). They start
at the current resourceVersion, so nothing already listed is sent again. Events:

- `run`: `{"type": "ADDED"|"MODIFIED", "run": <row as in /api/v1/runs>}`
- `deleted`: `{"namespace": ..., "name": ...}`
- `forbidden`: `{"namespace": ...}` — the user may not watch there (nothing of it is sent)
A comment line every KEEPALIVE seconds keeps proxies from closing the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from typing import Any

from aiohttp import web
from kubernetes.client.exceptions import ApiException

from helm_e2e.core.model.run_codec import runs_from_bodies
from helm_e2e.viewer import api
from helm_e2e.viewer.routes import name_param
from helm_e2e.viewer.source import Source
from helm_e2e.viewer.state import VIEWER

MAX_STREAMS = 20  # live streams served at once
MAX_WATCHES = 20  # watches (threads) of one stream: a scope of more namespaces is followed one at a time
QUEUE = 1000  # events buffered per stream; a page that cannot keep up loses the excess (it can reload)
KEEPALIVE = 15.0


def to_message(event: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """A watch event as (SSE event name, data); None for what the page does not show."""
    body = event.get("object") or {}
    if event.get("type") == "DELETED":
        meta = body.get("metadata") or {}
        return "deleted", {
            "namespace": api.clip(meta.get("namespace"), 63),
            "name": api.clip(meta.get("name"), 253),
        }
    parsed = runs_from_bodies([body])
    if not parsed:
        return None
    return "run", {"type": event.get("type"), "run": api.build_run_row(parsed[0])}


def _pump(
    source: Source,
    namespace: str | None,
    queue: asyncio.Queue[tuple[str, dict[str, Any]]],
    loop: asyncio.AbstractEventLoop,
    stop: threading.Event,
) -> None:
    def put(item: tuple[str, dict[str, Any]]) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(item)

    try:
        version = source.current_version(namespace)
        for event in source.watch_runs(namespace, version, stop):
            message = to_message(event)
            if message is not None:
                loop.call_soon_threadsafe(put, message)
    except ApiException as e:
        if int(e.status or 0) == 403:
            loop.call_soon_threadsafe(put, ("forbidden", {"namespace": namespace or "(all namespaces)"}))
        else:
            loop.call_soon_threadsafe(put, ("error", {"message": f"the watch ended ({int(e.status or 0)})"}))
    except Exception as e:  # the apiserver went away: the page says so and can reload
        if not stop.is_set():
            loop.call_soon_threadsafe(put, ("error", {"message": f"the watch ended ({type(e).__name__})"}))


async def watch(request: web.Request) -> web.StreamResponse:
    viewer = request.app[VIEWER]
    namespace = name_param(request.query["namespace"], "namespace") if request.query.get("namespace") else ""
    if viewer.streams >= MAX_STREAMS:
        return web.json_response({"error": "too many live streams"}, status=503)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=QUEUE)
    stop, loop = threading.Event(), asyncio.get_running_loop()
    targets = viewer.scope.targets(namespace)
    if len(targets) > MAX_WATCHES:
        message = f"more than {MAX_WATCHES} namespaces: pick one to follow it live"
        queue.put_nowait(("error", {"message": message}))
        targets = []
    for target in targets:
        threading.Thread(
            target=_pump, args=(viewer.source, target, queue, loop, stop), daemon=True, name="viewer-watch"
        ).start()
    viewer.streams += 1
    try:
        await response.write(b": connected\n\n")
        while True:
            try:
                name, data = await asyncio.wait_for(queue.get(), KEEPALIVE)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            await response.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
    except ConnectionResetError:  # the page went away between two writes
        pass
    finally:  # also on cancellation: the app runs with handler_cancellation, so a closed page ends here
        stop.set()
        viewer.streams -= 1
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/watch", watch)
