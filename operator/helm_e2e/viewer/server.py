"""The viewer's aiohttp app: the packaged pages, the JSON API (routes), the live stream (live), and
`serve`, which `helm-e2e ui` calls.

Served on 127.0.0.1 by default. A request whose Host is not this server's own name (DNS rebinding) or that
a browser marks as coming from another site (Sec-Fetch-Site) is refused: the server holds the user's
credentials, so no other web page may use it. Every answer carries a strict Content-Security-Policy.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from aiohttp import web

from helm_e2e.clients.kube import Kube, load_api_client
from helm_e2e.viewer import files, live, routes
from helm_e2e.viewer.source import Source
from helm_e2e.viewer.state import VIEWER, Viewer

STATIC = Path(__file__).parent / "static"
PAGES = ("/", "/runs/{namespace}/{name}", "/releases/{namespace}/{release}")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    viewer = request.app[VIEWER]
    if viewer.hosts and request.host not in viewer.hosts:
        return web.json_response({"error": "unknown Host"}, status=421, headers=SECURITY_HEADERS)
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return web.json_response({"error": "cross-site request"}, status=403, headers=SECURITY_HEADERS)
    try:
        response = await handler(request)
    except web.HTTPException as e:
        e.headers.update(SECURITY_HEADERS)
        raise
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
    return response


async def page(_: web.Request) -> web.FileResponse:
    """Every page is the one shell; app.js renders what the path names."""
    return web.FileResponse(STATIC / "index.html", headers={"Content-Type": "text/html; charset=utf-8"})


def build_app(viewer: Viewer) -> web.Application:
    app = web.Application(middlewares=[guard, routes.api_errors], client_max_size=64 * 1024)
    app[VIEWER] = viewer
    for path in PAGES:
        app.router.add_get(path, page)
    app.router.add_static("/static/", STATIC, follow_symlinks=False, append_version=False)
    routes.add_routes(app)
    files.add_routes(app)
    live.add_routes(app)
    return app


def default_namespace() -> str:
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
        return str(active.get("context", {}).get("namespace") or "default")
    except Exception:  # in a pod or without a kubeconfig: the default namespace
        return "default"


def loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


async def _serve(viewer: Viewer, *, address: str, port: int) -> None:
    runner = web.AppRunner(build_app(viewer), access_log=None, handler_cancellation=True)
    await runner.setup()
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, port))
    except OSError:
        sock.close()
        await runner.cleanup()
        raise
    bound = int(sock.getsockname()[1])  # the port chosen when --port 0
    await web.SockSite(runner, sock).start()
    host = f"[{address}]" if ":" in address else address
    if loopback(address):
        viewer.hosts.update({f"{host}:{bound}", f"localhost:{bound}", f"127.0.0.1:{bound}"})
    else:
        print(f"helm-e2e ui: warning: listening on {address}: anyone who reaches it reads with your rights")
    where = "all namespaces" if viewer.scope.cluster else "namespaces " + ", ".join(viewer.scope.namespaces)
    print(f"helm-e2e ui: serving http://{host}:{bound}/ ({where}); Ctrl-C stops it", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def serve(
    *,
    address: str,
    port: int,
    namespaces: Sequence[str],
    operator_namespace: str | None = None,
    operator_service: str | None = None,
) -> int:
    """`helm-e2e ui`: serve until interrupted; 0 on Ctrl-C, 2 when the cluster cannot be reached."""
    try:
        api_client = load_api_client()
        source = Source(api_client)
        scope = asyncio.run(source.decide_scope(namespaces, default=default_namespace()))
    except Exception as e:  # no cluster, no credentials: one clear line
        print(f"helm-e2e: error: {e}", file=sys.stderr)
        return 2
    viewer = Viewer(
        source=source,
        kube=Kube(api_client),
        scope=scope,
        operator_namespace=operator_namespace,
        operator_service=operator_service,
    )
    try:
        asyncio.run(_serve(viewer, address=address, port=port))
    except KeyboardInterrupt:
        return 0
    except OSError as e:  # the port is taken, the address is not this machine's
        print(f"helm-e2e: error: cannot listen on {address}:{port}: {e.strerror or e}", file=sys.stderr)
        return 2
    return 0
