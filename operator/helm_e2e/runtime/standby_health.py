"""A standby's liveness endpoint: kopf serves /healthz only once it runs, and a standby waiting for the
Lease must still answer the kubelet's probes — else it is restarted in a loop (liveness) and a rolling update
never sees the new pod ready (readiness)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any
from urllib.parse import urlsplit


def _handler_for(path: str) -> type[BaseHTTPRequestHandler]:
    class StandbyHealth(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = urlsplit(self.path).path == path
            body = b'{"standby": true}' if found else b""
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # a probe every few seconds is not worth a log line

    return StandbyHealth


@contextmanager
def serve_standby_health(endpoint: str) -> Iterator[None]:
    """Answer 200 on kopf's liveness endpoint (e.g. http://0.0.0.0:8080/healthz) while the block runs;
    the port is free again afterwards, for kopf. No endpoint: nothing is served."""
    if not endpoint:
        yield
        return
    url = urlsplit(endpoint)
    server = ThreadingHTTPServer((url.hostname or "0.0.0.0", url.port or 80), _handler_for(url.path or "/"))  # noqa: S104
    server.daemon_threads = True
    thread = Thread(target=server.serve_forever, name="standby-health", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
