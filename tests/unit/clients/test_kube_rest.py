"""clients/kube_rest.py's own parts: paths, bodies, and what the loop's transport does with a hostile or broken
answer (a real HTTP server in this process; the apiserver's answers are in tests/integration/test_kube_rest.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import kubernetes.client as k8s
import pytest
from aiohttp import web
from kubernetes.client.exceptions import ApiException

import helm_e2e.clients.kube_rest as kube_rest
from helm_e2e.clients.kube_rest import EVENTS, RUNS, LoopRest, Request, Resource, Rest, ThreadRest, encode
from helm_e2e.core.model import names
from helm_e2e.errors import ApiRefused, KubeError


def test_paths_name_the_group_and_quote_every_part() -> None:
    assert EVENTS.path("shop") == "/api/v1/namespaces/shop/events"
    assert RUNS.path("shop", "web-3", "status") == (
        f"/apis/{names.GROUP}/{names.VERSION}/namespaces/shop/{names.RUNS}/web-3/status"
    )
    assert Resource("", "v1", "pods").path("a/b", "c?d") == "/api/v1/namespaces/a%2Fb/pods/c%3Fd"
    request = Request("GET", "/api/v1/namespaces/shop/pods", (("labelSelector", "a=b,c"),))
    assert request.target == "/api/v1/namespaces/shop/pods?labelSelector=a%3Db%2Cc"


def test_a_body_is_sent_as_json_with_times_as_the_client_sends_them_and_anything_else_refused() -> None:
    when = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
    assert json.loads(encode({"at": when, "n": (1, 2)})) == {"at": "2026-12-06T07:00:00+00:00", "n": [1, 2]}
    with pytest.raises(ApiRefused) as refused:
        encode({"secret": {"s3cr3t-value"}})
    assert refused.value.status == 422
    assert "s3cr3t" not in refused.value.message


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve(unused_tcp_port: int) -> AsyncIterator[Callable[[Handler], LoopRest]]:
    runners: list[web.AppRunner] = []
    rests: list[LoopRest] = []

    def start(handler: Handler) -> LoopRest:
        configuration = k8s.Configuration(host=f"http://127.0.0.1:{unused_tcp_port}")
        configuration.api_key = {"authorization": "Bearer t0ken"}
        rests.append(LoopRest(configuration, timeout_seconds=5))
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runners.append(web.AppRunner(app))
        return rests[-1]

    async def started(handler: Handler) -> LoopRest:
        rest = start(handler)
        await runners[-1].setup()
        await web.TCPSite(runners[-1], "127.0.0.1", unused_tcp_port).start()
        return rest

    yield started  # type: ignore[misc]
    for rest in rests:
        await rest.close()
    for runner in runners:
        await runner.cleanup()


async def test_the_loop_sends_the_clients_credentials_and_its_body(
    serve: Callable[..., Awaitable[LoopRest]],
) -> None:
    seen: dict[str, str] = {}

    async def echo(request: web.Request) -> web.Response:
        seen.update(auth=request.headers["Authorization"], type=request.headers["Content-Type"])
        return web.json_response({"got": await request.json(), "query": request.raw_path.partition("?")[2]})

    rest = await serve(echo)
    answer = await rest.send(Request("PATCH", "/x", (("a", "b c"),), {"k": 1}, kube_rest.MERGE_PATCH))
    assert answer == {"got": {"k": 1}, "query": "a=b+c"}
    assert seen == {"auth": "Bearer t0ken", "type": "application/merge-patch+json"}


async def test_credentials_are_asked_for_seldom_and_anew_when_the_api_refuses_them(
    serve: Callable[..., Awaitable[LoopRest]],
) -> None:
    async def only_new(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer new":
            return web.json_response({"kind": "Status", "reason": "Unauthorized"}, status=401)
        return web.json_response({"ok": True})

    rest = await serve(only_new)
    tokens = iter(["old", "new"])
    asked: list[str] = []

    def refresh(c: k8s.Configuration) -> None:  # the kubernetes client's hook: an exec plugin, a token file
        asked.append(token := next(tokens, "new"))
        c.api_key = {"authorization": f"Bearer {token}"}

    rest.configuration.refresh_api_key_hook = refresh
    assert await rest.send(Request("GET", "/a")) == {"ok": True}  # old: 401, asked anew, new: 200
    assert await rest.send(Request("GET", "/b")) == {"ok": True}
    assert asked == ["old", "new"]  # not once per request


@pytest.fixture(params=["loop", "thread"])
async def serve_either(
    serve: Callable[[Handler], Awaitable[LoopRest]], request: pytest.FixtureRequest
) -> Callable[[Handler], Awaitable[Rest]]:
    """Either transport against the same server: one contract for hostile and broken answers."""

    async def started(handler: Handler) -> Rest:
        loop = await serve(handler)
        if request.param == "loop":
            return loop
        return ThreadRest(k8s.ApiClient(loop.configuration), timeout_seconds=5)

    return started


async def test_an_answer_over_its_bound_or_nested_too_deep_is_an_error_and_a_text_is_cut_at_its_bound(
    serve_either: Callable[[Handler], Awaitable[Rest]],
) -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(64):  # 4 MiB of "[[[...", never all of it read when the bound is lower
            await response.write(b"[" * 65536)
        return response

    rest = await serve_either(endless)
    with pytest.raises(KubeError) as too_big:
        await rest.send(Request("GET", "/big", answer_bytes=1024 * 1024))
    assert too_big.value.status == 0
    assert "over 1048576 bytes" in too_big.value.message
    with pytest.raises(KubeError) as nested:  # read whole, it is a nesting bomb, not a crash of the pass
        await rest.send(Request("GET", "/big", answer_bytes=8 * 1024 * 1024))
    assert nested.value.message == "the API's answer is not JSON"
    assert await rest.send(Request("GET", "/log", text_bytes=10)) == "[" * 10


async def test_an_error_answer_keeps_the_start_of_its_status_and_a_page_that_is_not_json_is_an_error(
    serve_either: Callable[[Handler], Awaitable[Rest]],
) -> None:
    async def answers(request: web.Request) -> web.Response:
        if request.path == "/refused":
            status = json.dumps({"kind": "Status", "reason": "Forbidden", "message": "no"})
            return web.Response(
                status=403, text=status + " " * (1024 * 1024), content_type="application/json"
            )
        return web.Response(text="<html>a proxy's page</html>", content_type="text/html")

    rest = await serve_either(answers)
    with pytest.raises(ApiException) as refused:
        await rest.send(Request("GET", "/refused"))
    assert refused.value.status == 403
    assert len(refused.value.body) == kube_rest.ERROR_BODY_BYTES
    assert json.loads(refused.value.body)["reason"] == "Forbidden"
    with pytest.raises(KubeError) as page:
        await rest.send(Request("GET", "/page"))
    assert page.value.message == "the API's answer is not JSON"


async def test_a_large_answer_is_decoded_off_the_loop_and_whole(
    serve_either: Callable[[Handler], Awaitable[Rest]],
) -> None:
    items = [{"metadata": {"name": f"pod-{i}"}, "pad": "x" * 100} for i in range(5000)]  # ~700 KiB

    async def large(request: web.Request) -> web.Response:
        return web.json_response({"items": items})

    rest = await serve_either(large)
    answer = await rest.send(Request("GET", "/pods"))
    assert len(json.dumps(answer)) > kube_rest.LOOP_DECODE_BYTES
    assert answer["items"] == items


class Unread:
    """urllib3's answer as the generated client returns it with `_preload_content=False`."""

    def __init__(self, data: bytes) -> None:
        self.data, self.threads, self.ended = data, set[int](), ""

    def read(self, amt: int) -> bytes:
        self.threads.add(threading.get_ident())
        return self.data[:amt]

    def release_conn(self) -> None:
        self.ended = "released"

    def close(self) -> None:
        self.ended = "closed"


async def test_a_generated_client_call_is_read_bounded_and_decoded_in_its_worker_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Until 0.3 its answer was read (`.data`, a blocking socket read) and decoded on the event loop, whole."""
    monkeypatch.setattr(kube_rest, "LIST_BYTES", 1024)
    small, large = Unread(b'{"items": []}'), Unread(b"[" * 4096)

    def read(answer: Unread, *, _preload_content: bool, _request_timeout: float) -> Unread:
        assert not _preload_content
        return answer

    assert await kube_rest.call_json(read, small, request_timeout=5) == {"items": []}
    assert small.threads
    assert threading.get_ident() not in small.threads
    assert small.ended == "released"  # read to its end: the connection is reused
    with pytest.raises(KubeError) as over:
        await kube_rest.call_json(read, large, request_timeout=5)
    assert over.value.message == "the API's answer is over 1024 bytes"
    assert large.ended == "closed"  # cut short: never reused with the rest of it unread
