"""Downloads: a run as JUnit XML, its artifacts listed, a test's bundle, one file of it.

Artifacts are fetched exactly as `helm-e2e artifacts` fetches them (artifacts/client.py): through the
apiserver's service proxy with the user's rights (`patch e2eruns` for the ticket, `get services/proxy` on
the operator's Service). What the user may not do is a 403 naming the right, nothing else.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from kubernetes.client.exceptions import ApiException

from helm_e2e.artifacts.client import (
    Fetcher,
    FetchError,
    Operator,
    fetch_junit_reports,
    find_operator,
    read_member,
)
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_codec import runs_from_bodies
from helm_e2e.core.outcomes.junit_report import build_junit_xml
from helm_e2e.viewer import api
from helm_e2e.viewer.routes import bad, name_param
from helm_e2e.viewer.source import Forbidden
from helm_e2e.viewer.state import VIEWER, Viewer

MAX_FILES = 2000  # files per test in the listing answered
SAFE = re.compile(r"[^A-Za-z0-9._-]+")
FILE_PATH = re.compile(r"^[^\x00-\x1f\x7f]{1,1024}$")


def attachment(data: bytes, filename: str, content_type: str) -> web.Response:
    safe = SAFE.sub("_", filename)[:200] or "download"
    return web.Response(
        body=data,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{safe}"'},
    )


async def _run(request: web.Request) -> tuple[Viewer, Run]:
    """The run the path names, read with the user's rights (403/404 raised as answers)."""
    viewer = request.app[VIEWER]
    ns = name_param(request.match_info["namespace"], "namespace")
    name = name_param(request.match_info["name"], "run name")
    try:
        body = await viewer.source.get_run(ns, name)
    except Forbidden:
        raise web.HTTPForbidden(
            text=f'{{"error": "you may not read E2ERuns in namespace {ns}"}}', content_type="application/json"
        ) from None
    parsed = runs_from_bodies([body]) if body else []
    if not parsed:
        raise web.HTTPNotFound(text=f'{{"error": "no E2ERun {ns}/{name}"}}', content_type="application/json")
    return viewer, parsed[0]


async def _operator(viewer: Viewer) -> Operator:
    if viewer.operator is None:
        viewer.operator = await find_operator(
            viewer.kube, namespace=viewer.operator_namespace, service=viewer.operator_service
        )
    return viewer.operator


async def junit(request: web.Request) -> web.Response:
    """The run as JUnit XML: one testcase per pytest test where its junit.xml could be fetched, else one
    per test (as `helm-e2e junit`); a note header says which."""
    viewer, run = await _run(request)
    reports: dict[str, bytes] = {}
    note = "one testcase per test (no junit.xml artifacts)"
    if any(t.artifacts for t in run.status.tests):
        try:
            operator = await _operator(viewer)
            reports = await fetch_junit_reports(viewer.kube, operator, run.namespace, run.name)
            note = "testcases from the tests' junit.xml artifacts"
        except (FetchError, ApiException, OSError) as e:
            note = f"junit.xml artifacts not fetched ({api.clip(e, 200)}); one testcase per test"
    response = attachment(build_junit_xml(run, reports).encode(), f"{run.name}.junit.xml", "application/xml")
    response.headers["X-Helm-E2E-Note"] = SAFE.sub(" ", note)
    return response


def _listing(raw: dict[str, Any]) -> dict[str, Any]:
    """The operator's listing, bounded and reduced to names, sizes, digests and refusals."""
    tests: dict[str, Any] = {}
    for test, entry in list((raw.get("tests") or {}).items())[:200]:
        if not isinstance(entry, dict):
            continue
        files = [
            {
                "name": api.clip(f.get("name"), 1024),
                "size": f.get("size"),
                "sha256": api.clip(f.get("sha256"), 64),
            }
            for f in (entry.get("files") or [])[:MAX_FILES]
            if isinstance(f, dict)
        ]
        tests[api.clip(test, 253)] = {"files": files, "refused": api.clip(entry.get("refused") or "")}
    return {"tests": tests}


async def _fetch(viewer: Viewer, run: Run, what: str, test: str = "") -> Any:
    try:
        operator = await _operator(viewer)
        async with Fetcher(viewer.kube, operator, run.namespace, run.name) as fetcher:
            return await (fetcher.bundle(test) if what == "bundle" else fetcher.listing())
    except ApiException as e:
        if int(e.status or 0) == 403:
            raise web.HTTPForbidden(
                text='{"error": "fetching artifacts needs patch on this E2ERun (the ticket)"}',
                content_type="application/json",
            ) from None
        raise web.HTTPBadGateway(
            text=f'{{"error": "the apiserver answered {int(e.status or 0)}"}}',
            content_type="application/json",
        ) from None
    except FetchError as e:
        raise web.HTTPBadGateway(
            text=web.json_response({"error": api.clip(e, 300)}).text, content_type="application/json"
        ) from None


async def artifacts(request: web.Request) -> web.Response:
    viewer, run = await _run(request)
    if not any(t.artifacts for t in run.status.tests):
        return web.json_response({"tests": {}})
    return web.json_response(_listing(await _fetch(viewer, run, "listing")))


async def bundle(request: web.Request) -> web.Response:
    viewer, run = await _run(request)
    test = name_param(request.match_info["test"], "test name")
    data = await _fetch(viewer, run, "bundle", test)
    return attachment(data, f"{run.name}-{test}.tar.gz", "application/gzip")


async def one_file(request: web.Request) -> web.Response:
    viewer, run = await _run(request)
    test = name_param(request.match_info["test"], "test name")
    path = request.match_info["path"]
    if not FILE_PATH.match(path):
        return bad("not a file name")
    data = read_member(await _fetch(viewer, run, "bundle", test), path)
    if data is None:
        return bad(f"no file {api.clip(path, 200)} in the artifacts of {test}", 404)
    return attachment(data, path.rsplit("/", 1)[-1], "application/octet-stream")


def add_routes(app: web.Application) -> None:
    base = "/api/v1/namespaces/{namespace}/runs/{name}"
    app.router.add_get(f"{base}/junit", junit)
    app.router.add_get(f"{base}/artifacts", artifacts)
    app.router.add_get(f"{base}/artifacts/{{test}}", bundle)
    app.router.add_get(f"{base}/artifacts/{{test}}/files/{{path:.+}}", one_file)
