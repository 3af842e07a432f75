"""The JSON API of `/api/v1/`: the scope, a page of runs, one run with its Events, a release's history.

Names in paths and queries are checked against Kubernetes' own name rules before they reach a request; a
403 from the apiserver is a 403 here naming the namespace (the page says so), never a stack trace.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from aiohttp import web

from helm_e2e.core.model import names
from helm_e2e.core.model.dns_names import label_value
from helm_e2e.core.model.run_codec import runs_from_bodies
from helm_e2e.errors import KubeError
from helm_e2e.viewer import api
from helm_e2e.viewer.cursor import Cursor, CursorInvalid, decode_cursor, encode_cursor
from helm_e2e.viewer.source import Forbidden, Source
from helm_e2e.viewer.state import VIEWER

NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")  # RFC 1123 subdomain: runs, releases
DEFAULT_LIMIT, MAX_LIMIT = 50, 500
DEFAULT_REVISIONS, MAX_REVISIONS = 30, 200
SCAN_PAGES = 10  # with a phase or time filter: pages of `limit` read at most to fill one page


def bad(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


def name_param(value: str, what: str) -> str:
    if not NAME.match(value):
        raise web.HTTPBadRequest(text=f'{{"error": "not a valid {what}"}}', content_type="application/json")
    return value


def int_param(request: web.Request, key: str, default: int, top: int) -> int:
    raw = request.query.get(key, "")
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= top:
        raise web.HTTPBadRequest(
            text=f'{{"error": "{key} must be 1..{top}"}}', content_type="application/json"
        )
    return int(raw)


def since_param(raw: str) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw[:40])
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": "since must be an ISO 8601 time with a zone"}', content_type="application/json"
        ) from None
    if moment.tzinfo is None:
        raise web.HTTPBadRequest(text='{"error": "since needs a time zone"}', content_type="application/json")
    return moment


async def scope(request: web.Request) -> web.Response:
    """Where the runs list looks, and per namespace whether the apiserver lets the user list runs there."""
    viewer = request.app[VIEWER]
    if viewer.scope.cluster:
        return web.json_response({"cluster": True, "namespaces": []})
    allowed = [{"name": ns, "allowed": await viewer.source.may_list(ns)} for ns in viewer.scope.namespaces]
    return web.json_response({"cluster": False, "namespaces": allowed})


async def _walk(
    source: Source, targets: list[str | None], start: Cursor, *, selector: str, limit: int, filtered: bool
) -> tuple[list[dict[str, Any]], list[str | None], Cursor | None, int]:
    """Pages of the targets from `start` until `limit` rows (or SCAN_PAGES pages with a filter): the
    items listed, the targets refused, the cursor after them (None: the end), how many were listed."""
    items: list[dict[str, Any]] = []
    forbidden: list[str | None] = []
    index, token, pages = start.index, start.token, 0
    most = SCAN_PAGES if filtered else len(targets) + SCAN_PAGES
    while index < len(targets) and len(items) < limit and pages < most:
        ask = limit if filtered else limit - len(items)
        try:
            page, token, _ = await source.list_runs(targets[index], selector=selector, limit=ask, token=token)
        except Forbidden:
            forbidden.append(targets[index])
            page, token = [], ""
        items += page
        pages += 1
        if not token:
            index += 1
        if filtered and len(items) >= limit:
            break
    after = Cursor(index, token) if index < len(targets) else None
    return items, forbidden, after, len(items)


async def runs(request: web.Request) -> web.Response:
    """A page of runs: namespace and release narrow the list at the apiserver, phase and since filter
    what was listed; `continue` is the cursor the previous page returned."""
    viewer, q = request.app[VIEWER], request.query
    namespace = name_param(q["namespace"], "namespace") if q.get("namespace") else ""
    release = name_param(q["release"], "release") if q.get("release") else ""
    phase = q.get("phase", "")
    if phase and phase not in api.PHASES:
        return bad("unknown phase")
    since = since_param(q.get("since", ""))
    limit = int_param(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
    targets = viewer.scope.targets(namespace)
    try:
        start = decode_cursor(q.get("continue", ""), targets=len(targets))
    except CursorInvalid as e:
        return bad(str(e))
    selector = f"{names.RELEASE_LABEL}={label_value(release)}" if release else ""
    filtered = bool(phase or since)
    items, forbidden, after, listed = await _walk(
        viewer.source, targets, start, selector=selector, limit=limit, filtered=filtered
    )
    rows = [api.build_run_row(r) for r in runs_from_bodies(items)]
    rows = [r for r in rows if (not release or r["release"] == release)]
    shown = api.sort_rows(r for r in rows if api.matches(r, phase=phase, since=since))
    return web.json_response(
        {
            "items": shown,
            "listed": listed,
            "forbidden": [ns or "(all namespaces)" for ns in forbidden],
            "continue": encode_cursor(after) if after else None,
        }
    )


async def one_run(request: web.Request) -> web.Response:
    viewer = request.app[VIEWER]
    ns = name_param(request.match_info["namespace"], "namespace")
    name = name_param(request.match_info["name"], "run name")
    try:
        body = await viewer.source.get_run(ns, name)
    except Forbidden:
        return bad(f"you may not read E2ERuns in namespace {ns}", 403)
    parsed = runs_from_bodies([body]) if body else []
    if not parsed:
        return bad(f"no E2ERun {ns}/{name}", 404)
    events = await viewer.source.run_events(ns, name)
    return web.json_response(api.build_run_detail(parsed[0], events))


async def release(request: web.Request) -> web.Response:
    viewer = request.app[VIEWER]
    ns = name_param(request.match_info["namespace"], "namespace")
    name = name_param(request.match_info["release"], "release")
    last = int_param(request, "last", DEFAULT_REVISIONS, MAX_REVISIONS)
    try:
        bodies, more = await viewer.source.release_runs(ns, name)
    except Forbidden:
        return bad(f"you may not list E2ERuns in namespace {ns}", 403)
    history = api.build_release_history(runs_from_bodies(bodies), last=last)
    return web.json_response({"namespace": ns, "release": name, "truncated": more, **history})


@web.middleware
async def api_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """An apiserver that cannot be reached or answers oddly: a 502 with its one-line reason."""
    try:
        response: web.StreamResponse = await handler(request)
    except KubeError as e:
        return bad(f"the apiserver: {str(e)[:300]}", 502)
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/scope", scope)
    app.router.add_get("/api/v1/runs", runs)
    app.router.add_get("/api/v1/namespaces/{namespace}/runs/{name}", one_run)
    app.router.add_get("/api/v1/namespaces/{namespace}/releases/{release}", release)
