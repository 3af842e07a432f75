"""The viewer's HTTP side over a stand-in for the apiserver reads: pagination never lists more than a page,
a namespace the apiserver refuses is named (never an error page), hostile parameters are 400s, and requests
from other sites or under another Host name are refused."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import pytest
import runs
from aiohttp.test_utils import TestClient, TestServer

from helm_e2e.core.model.release import Trigger
from helm_e2e.viewer import live
from helm_e2e.viewer.server import build_app
from helm_e2e.viewer.source import Forbidden, Scope, Source
from helm_e2e.viewer.state import Viewer


def body(namespace: str, release: str, revision: int, phase: str = "Succeeded") -> dict[str, Any]:
    run = runs.make_run(
        release={"name": release, "revision": revision, "trigger": Trigger.INSTALL},
        namespace=namespace,
        created_at=datetime(2026, 12, 1, 10, revision, tzinfo=UTC),
    )
    b = runs.run_body(run)
    b["status"] = {"phase": phase}  # a list's row reads the phase only
    return b


class FakeSource:
    """E2ERuns per namespace; `refused` namespaces answer 403; every list request is recorded."""

    def __init__(self, runs: dict[str, list[dict[str, Any]]], refused: set[str]) -> None:
        self.runs, self.refused = runs, refused
        self.lists: list[tuple[str | None, int]] = []

    async def may_list(self, namespace: str | None) -> bool:
        return namespace not in self.refused

    async def list_runs(
        self, namespace: str | None, *, selector: str = "", limit: int, token: str = ""
    ) -> tuple[list[dict[str, Any]], str, str]:
        self.lists.append((namespace, limit))
        if namespace in self.refused:
            raise Forbidden(namespace)
        items = self.runs.get(namespace or "", [])
        start = int(token or 0)
        end = start + limit
        return items[start:end], str(end) if end < len(items) else "", "1"

    async def get_run(self, namespace: str, name: str) -> dict[str, Any] | None:
        if namespace in self.refused:
            raise Forbidden(namespace)
        return next((b for b in self.runs.get(namespace, []) if b["metadata"]["name"] == name), None)

    async def run_events(self, namespace: str, name: str) -> list[dict[str, Any]] | None:
        return [{"type": "Normal", "reason": "Started", "message": "<script>x</script>"}]

    async def release_runs(self, namespace: str, release: str) -> tuple[list[dict[str, Any]], bool]:
        if namespace in self.refused:
            raise Forbidden(namespace)
        return [b for b in self.runs.get(namespace, []) if b["spec"]["release"]["name"] == release], False


@pytest.fixture
def source() -> FakeSource:
    return FakeSource(
        {"a": [body("a", "web", r) for r in range(1, 8)], "b": [body("b", "hidden", 1)]}, refused={"b"}
    )


@pytest.fixture
async def client(source: FakeSource) -> AsyncIterator[TestClient[Any, Any]]:
    viewer = Viewer(source=cast(Source, source), kube=cast(Any, None), scope=Scope(False, ("a", "b")))
    async with TestClient(TestServer(build_app(viewer))) as c:
        viewer.hosts.add(f"127.0.0.1:{c.port}")
        yield c


async def get(client: TestClient[Any, Any], url: str, **headers: str) -> tuple[int, Any]:
    response = await client.get(url, headers={"Host": f"127.0.0.1:{client.port}", **headers})
    text = await response.text()
    return response.status, json.loads(text) if "json" in response.content_type else text


async def test_a_page_lists_no_more_than_it_shows_and_its_cursor_leads_on_to_the_refused_namespace(
    client: TestClient[Any, Any], source: FakeSource
) -> None:
    status, page = await get(client, "/api/v1/runs?limit=5")
    assert status == 200
    assert [r["name"] for r in page["items"]] == ["web-5", "web-4", "web-3", "web-2", "web-1"]
    assert source.lists == [("a", 5)]
    status, rest = await get(client, f"/api/v1/runs?limit=5&continue={page['continue']}")
    assert [r["name"] for r in rest["items"]] == ["web-7", "web-6"]
    assert rest["forbidden"] == ["b"]
    assert rest["continue"] is None
    assert source.lists[1:] == [("a", 5), ("b", 3)]


async def test_a_refused_namespace_shows_no_runs_and_says_so(client: TestClient[Any, Any]) -> None:
    assert await get(client, "/api/v1/runs?namespace=b") == (
        200,
        {"items": [], "listed": 0, "forbidden": ["b"], "continue": None},
    )
    status, answer = await get(client, "/api/v1/namespaces/b/runs/hidden-1")
    assert status == 403
    assert "hidden" not in json.dumps(answer)
    assert (await get(client, "/api/v1/namespaces/b/releases/hidden"))[0] == 403
    assert (await get(client, "/api/v1/scope"))[1] == {
        "cluster": False,
        "namespaces": [{"name": "a", "allowed": True}, {"name": "b", "allowed": False}],
    }


async def test_a_phase_filter_applies_to_what_was_listed(
    client: TestClient[Any, Any], source: FakeSource
) -> None:
    source.runs["a"][2]["status"]["phase"] = "Failed"
    status, page = await get(client, "/api/v1/runs?namespace=a&phase=Failed&limit=3")
    assert (status, [r["name"] for r in page["items"]]) == (200, ["web-3"])


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/runs?limit=0",
        "/api/v1/runs?limit=501",
        "/api/v1/runs?phase=Nope",
        "/api/v1/runs?namespace=..%2Fetc",
        "/api/v1/runs?since=yesterday",
        "/api/v1/runs?since=2026-12-01T10:00:00",
        "/api/v1/runs?continue=forged",
        "/api/v1/namespaces/a/runs/UPPER",
        "/api/v1/namespaces/a/releases/web?last=100000",
    ],
)
async def test_hostile_parameters_are_refused(client: TestClient[Any, Any], url: str) -> None:
    assert (await get(client, url))[0] == 400


async def test_one_run_comes_with_its_events_as_data(client: TestClient[Any, Any]) -> None:
    status, detail = await get(client, "/api/v1/namespaces/a/runs/web-2")
    assert status == 200
    assert detail["run"]["revision"] == 2
    assert detail["events"][0]["message"] == "<script>x</script>"  # data; the page sets it as text
    assert (await get(client, "/api/v1/namespaces/a/runs/web-99"))[0] == 404


async def test_another_sites_request_or_host_name_is_refused(client: TestClient[Any, Any]) -> None:
    assert (await get(client, "/api/v1/runs", **{"Sec-Fetch-Site": "cross-site"}))[0] == 403
    assert (await get(client, "/api/v1/runs", **{"Sec-Fetch-Site": "same-origin"}))[0] == 200
    response = await client.get("/api/v1/runs", headers={"Host": "attacker.example:80"})
    assert response.status == 421


async def test_pages_are_the_packaged_shell_with_a_strict_content_security_policy(
    client: TestClient[Any, Any],
) -> None:
    for path in ("/", "/runs/a/web-1", "/releases/a/web"):
        response = await client.get(path, headers={"Host": f"127.0.0.1:{client.port}"})
        assert response.status == 200
        assert '<script type="module" src="/static/app.js">' in await response.text()
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    for asset in ("app.js", "runs.js", "run.js", "release.js", "chart.js", "app.css"):
        response = await client.get(f"/static/{asset}", headers={"Host": f"127.0.0.1:{client.port}"})
        assert response.status == 200
        assert "innerHTML" not in await response.text()


def test_a_watch_event_becomes_a_row_a_deletion_or_nothing() -> None:
    added = live.to_message({"type": "ADDED", "object": body("a", "web", 3)})
    assert added is not None
    assert (added[0], added[1]["type"], added[1]["run"]["name"]) == ("run", "ADDED", "web-3")
    gone = live.to_message({"type": "DELETED", "object": body("a", "web", 3)})
    assert gone == ("deleted", {"namespace": "a", "name": "web-3"})
    assert (
        live.to_message({"type": "MODIFIED", "object": {"metadata": {"name": "x"}, "spec": "junk"}}) is None
    )
