"""The example chart's service: a small JSON API guarded by JWTs from the release's JWK set.

GET /healthz      200 "ok" (probes, the chart's own test hook)
GET /version      {"version": $APP_VERSION}
GET /api/greeting {"greeting": $GREETING, "subject": <sub>} with `Authorization: Bearer <jwt>`,
                  the token signed by a key of $JWKS_FILE and issued for $JWT_AUDIENCE; 401 otherwise.
"""

from __future__ import annotations

import json
import os
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt


class Unauthorized(Exception):
    pass


def load_keys(path: Path) -> dict[str, jwt.PyJWK]:
    """kid → key; read on every request so a rotated Secret is used without a restart."""
    return {key.key_id or "": key for key in jwt.PyJWKSet.from_json(path.read_text()).keys}


def verify(header: str, keys: dict[str, jwt.PyJWK], audience: str) -> dict[str, Any]:
    """The claims of a valid bearer token, or Unauthorized saying why (never echoing the token)."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token")
    try:
        kid = jwt.get_unverified_header(token).get("kid", "")
        key = keys.get(kid) or (next(iter(keys.values())) if len(keys) == 1 and not kid else None)
        if key is None:
            raise Unauthorized(f"unknown key id {kid!r}")
        return dict(jwt.decode(token, key=key, algorithms=[key.algorithm_name], audience=audience))
    except jwt.InvalidTokenError as e:
        raise Unauthorized(f"invalid token: {type(e).__name__}: {e}") from None


class Handler(BaseHTTPRequestHandler):
    server_version = "demo-service"

    def _send(self, status: HTTPStatus, body: dict[str, Any] | str) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            return self._send(HTTPStatus.OK, "ok")
        if self.path == "/version":
            return self._send(HTTPStatus.OK, {"version": os.environ.get("APP_VERSION", "")})
        if self.path == "/api/greeting":
            try:
                keys = load_keys(Path(os.environ.get("JWKS_FILE", "/jwt-keys/jwks.json")))
                claims = verify(self.headers.get("Authorization", ""), keys, os.environ["JWT_AUDIENCE"])
            except Unauthorized as e:
                return self._send(HTTPStatus.UNAUTHORIZED, {"error": str(e)})
            greeting = os.environ.get("GREETING", "hello")
            return self._send(HTTPStatus.OK, {"greeting": greeting, "subject": claims.get("sub")})
        return self._send(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def main() -> None:
    port = int(os.environ.get("PORT", "8080"))
    print(f"demo-service {os.environ.get('APP_VERSION', '')} listening on :{port}", flush=True)
    ThreadingHTTPServer(("", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
