"""One request to the Kubernetes API by its path: the transport under the Kube adapter's per-run calls.

`LoopRest` sends it with aiohttp (kopf's own HTTP client) on the event loop. A run's requests are small —
create the E2ERun and the pod, write the status, read a log, post an Event — and the generated client spent
0.9 ms of CPU on each in a worker thread (its validation wrappers, urllib3, header parsing by `email.parser`,
the thread hop), aiohttp 0.35 ms (`make bench-transport`, docs/performance.md). `ThreadRest` sends the same
request with the kubernetes client in a worker thread, and reads and decodes its answer there, with the same
bounds: for the CLI, the viewer and the artifact server (loops of their own) and for connections through a
proxy.

Both keep one contract: the answer's JSON (or its text, bounded), `ApiException` for an HTTP error as the
generated client raises it (clients/apierror.py maps it), `KubeError(status=0)` when no answer came in time.
Credentials are the kubernetes client's own (`Configuration`): the same CA, client certificate and bearer
token, refreshed as it refreshes them (an in-cluster token is re-read when it rotates).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import aiohttp
import kubernetes.client as k8s
import yarl
from kubernetes.client.exceptions import ApiException

from helm_e2e.clients.apierror import Body, call
from helm_e2e.core.model import names
from helm_e2e.errors import ApiRefused, KubeError

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # an object is at most ~1.5 MiB (etcd); a list of one run's pods, less
LIST_BYTES = 64 * 1024 * 1024  # a list of a release's runs (a tenant may make more than historyLimit keeps)
ERROR_BODY_BYTES = 64 * 1024  # of an error answer: its Status (reason, message) is at the start
LOOP_DECODE_BYTES = 256 * 1024  # a larger answer is decoded in a thread: the event loop never waits on it
DEFAULT_CONNECTIONS = 16
AUTH_SECONDS = 10.0  # credentials are asked for again after this long (a token file is re-read: 60 s)

# The request lines urllib3 logs at DEBUG, in its shape: the operator's requests are counted from them
# (tests/integration/test_api_requests.py), whichever transport sent them.
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resource:
    """A namespaced resource: its requests' paths, and (tests/unit/chart/test_rbac.py) the RBAC they need."""

    group: str  # "" for the core API
    version: str
    plural: str

    def path(self, namespace: str, name: str = "", sub: str = "") -> str:
        """/api[s/<group>]/<version>/namespaces/<namespace>/<plural>[/<name>[/<sub>]], each part quoted."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        tail = "".join(f"/{quote(part, safe='')}" for part in (name, sub) if part)
        return f"{prefix}/namespaces/{quote(namespace, safe='')}/{self.plural}{tail}"


PODS = Resource("", "v1", "pods")
EVENTS = Resource("", "v1", "events")
RUNS = Resource(names.GROUP, names.VERSION, names.RUNS)
SUITES = Resource(names.GROUP, names.VERSION, names.SUITES)


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # Resource.path
    query: tuple[tuple[str, str], ...] = ()
    body: Body | None = None
    content_type: str = JSON
    text_bytes: int = 0  # > 0: the answer is text (a log), at most this many bytes of it
    answer_bytes: int = MAX_ANSWER_BYTES  # a JSON answer larger than this is an error, never read whole

    @property
    def target(self) -> str:
        return f"{self.path}?{urlencode(self.query)}" if self.query else self.path


class Rest(Protocol):
    async def send(self, request: Request) -> Any: ...

    async def close(self) -> None: ...


def encode(body: Body) -> bytes:
    """A body as JSON, times as the kubernetes client sends them (ISO 8601); anything else that is not
    JSON is refused before it is sent, by its kind, never quoting its value."""
    try:
        return json.dumps(body, separators=(",", ":"), default=_iso).encode()
    except (TypeError, ValueError) as e:
        not_json = "the object is not valid (a value that is not JSON)"
        raise ApiRefused(not_json, status=422, reason="Invalid") from e


def _iso(value: object) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def decode(data: bytes, request: Request) -> Any:
    """The answer as text (cut at its bound) or as JSON (read up to `answer_bytes`: whole, or an error)."""
    if request.text_bytes:
        return data[: request.text_bytes].decode(errors="replace")
    return decode_json(data, request.answer_bytes)


def decode_json(data: bytes, limit: int) -> Any:
    """JSON read up to `limit` bytes; cut short (over the bound) or not JSON, a KubeError, whichever
    transport read it, and never quoting it: a proxy's page, a nesting bomb (RecursionError)."""
    if len(data) >= limit:
        raise KubeError(f"the API's answer is over {limit} bytes", status=0)
    try:
        return json.loads(data) if data else {}
    except (ValueError, RecursionError) as e:
        raise KubeError("the API's answer is not JSON", status=0) from e


def read_at_most_sync(raw: Any, bound: int) -> bytes:
    """At most `bound` bytes of a urllib3 answer that was not preloaded, read in the calling (worker)
    thread. Read to its end, its connection goes back to the pool; cut short, it is closed, never reused."""
    whole = False
    try:
        data: bytes = raw.read(bound)
        whole = len(data) < bound
    finally:
        (raw.release_conn if whole else raw.close)()
    return data


async def call_json(fn: Callable[..., Any], *args: Any, request_timeout: float, **kwargs: Any) -> Any:
    """A call of the generated client whose answer is read (bounded: `LIST_BYTES`) and decoded as JSON in
    its worker thread, never on the event loop, and never built into the client's models."""
    return await call(_read_json, fn, *args, request_timeout=request_timeout, **kwargs)


def _read_json(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """In a worker thread: the generated client's call, its answer read (bounded) and decoded."""
    raw = fn(*args, _preload_content=False, **kwargs)  # an error status raised ApiException already
    return decode_json(read_at_most_sync(raw, LIST_BYTES), LIST_BYTES)


class ThreadRest:
    """The kubernetes client's `ApiClient`, in a worker thread (never on the event loop)."""

    def __init__(self, api: k8s.ApiClient, *, timeout_seconds: float) -> None:
        self.api = api
        self.timeout = timeout_seconds

    async def send(self, request: Request) -> Any:
        return await call(self._send, request, request_timeout=self.timeout)

    def _send(self, request: Request, *, _request_timeout: float) -> Any:
        """Sent, read with the loop's bounds and decoded, all in the worker thread."""
        headers = {"Accept": JSON if not request.text_bytes else "*/*"}
        if request.body is not None:
            headers["Content-Type"] = request.content_type
        serialized = self.api.param_serialize(
            request.method,
            request.path,
            query_params=list(request.query),
            header_params=headers,
            body=request.body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*serialized, _request_timeout=_request_timeout)
        ok = 200 <= response.status <= 299
        bound = (request.text_bytes or request.answer_bytes) if ok else ERROR_BODY_BYTES
        data = read_at_most_sync(response.response, bound)  # urllib3's, not preloaded
        if not ok:
            body = data.decode(errors="replace")
            raise ApiException(status=response.status, reason=str(response.reason or ""), body=body)
        return decode(data, request)

    async def close(self) -> None:
        return None


def tls_context(configuration: k8s.Configuration) -> ssl.SSLContext:
    """The TLS the kubernetes client would use: its CA (else the system's), its client certificate."""
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif configuration.assert_hostname is False:
        context.check_hostname = False
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    return context


def auth_headers(configuration: k8s.Configuration) -> dict[str, str]:
    """The headers the kubernetes client adds for its credentials. Asking runs its `refresh_api_key_hook`
    (an in-cluster token re-read once it may have rotated, an exec plugin run once its token expired): it
    may block, so the loop asks in a thread."""
    settings: dict[str, Any] = dict(configuration.auth_settings())
    return {
        str(s["key"]): str(s["value"])
        for s in settings.values()
        if s.get("in") == "header" and s.get("value")
    }


class LoopRest:
    """aiohttp on the event loop; its session is made on the first request, inside the running loop."""

    def __init__(
        self, configuration: k8s.Configuration, *, timeout_seconds: float, connections: int = 0
    ) -> None:
        self.configuration = configuration
        self.host = str(configuration.host).rstrip("/")
        self.server_hostname = configuration.tls_server_name or None
        self.tls = tls_context(configuration) if self.host.startswith("https:") else None
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds, connect=min(10.0, timeout_seconds))
        self.connections = connections or DEFAULT_CONNECTIONS
        self._session: aiohttp.ClientSession | None = None
        self._auth: dict[str, str] = {}
        self._auth_at = -AUTH_SECONDS  # monotonic time they were asked for

    async def _credentials(self, *, fresh: bool = False) -> dict[str, str]:
        if fresh or time.monotonic() - self._auth_at >= AUTH_SECONDS:
            self._auth = await asyncio.to_thread(auth_headers, self.configuration)
            self._auth_at = time.monotonic()
        return self._auth

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.connections, ssl=self.tls or False)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout, trust_env=False)
        return self._session

    async def send(self, request: Request) -> Any:
        try:
            return await self._send(request, await self._credentials())
        except ApiException as e:
            if e.status != 401:
                raise
        # refused as unauthenticated: a token that expired since it was asked for, asked for anew, once
        return await self._send(request, await self._credentials(fresh=True))

    async def _send(self, request: Request, credentials: dict[str, str]) -> Any:
        headers = {"Accept": JSON if not request.text_bytes else "*/*", **credentials}
        payload = None
        if request.body is not None:
            payload = encode(request.body)
            headers["Content-Type"] = request.content_type
        target = request.target
        url = yarl.URL(self.host + target, encoded=True)  # urlencode made the query: not encoded twice
        limit = request.text_bytes or request.answer_bytes
        try:
            async with self._open().request(
                request.method, url, data=payload, headers=headers, server_hostname=self.server_hostname
            ) as response:
                status, reason = response.status, str(response.reason or "")
                data = await read_at_most(response.content, limit if status < 400 else ERROR_BODY_BYTES)
        except (aiohttp.ClientError, OSError, TimeoutError) as e:  # never the URL: its query may name things
            raise KubeError(f"no answer from the API: {type(e).__name__}", status=0) from e
        log.debug('%s "%s %s HTTP/1.1" %s %s', self.host, request.method, target, status, len(data))
        if status >= 400:
            raise ApiException(status=status, reason=reason, body=data.decode(errors="replace"))
        if len(data) > LOOP_DECODE_BYTES and not request.text_bytes:
            return await asyncio.to_thread(decode, data, request)
        return decode(data, request)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def read_at_most(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """An answer's body, cut at `limit` bytes: a hostile or broken answer never fills memory. An object
    cut short does not decode (an API error then), a text is kept up to the limit."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream.iter_any():
        chunks.append(chunk[: limit - size])
        size += len(chunks[-1])
        if size >= limit:
            break
    return b"".join(chunks)


def build_rest(api: k8s.ApiClient, *, timeout_seconds: float, connections: int = 0) -> Rest:
    """The operator's (one long-lived loop): on its loop, but a proxied connection stays with the kubernetes
    client, which knows the proxy settings (`no_proxy`, its headers)."""
    if not api.configuration.proxy:
        return LoopRest(api.configuration, timeout_seconds=timeout_seconds, connections=connections)
    return ThreadRest(api, timeout_seconds=timeout_seconds)
