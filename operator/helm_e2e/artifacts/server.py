"""The artifacts HTTP server (aiohttp, kopf's own HTTP library): collectors upload, `helm-e2e artifacts`
downloads. It runs on its own thread and event loop on every replica (a standby too: the store is shared),
so a large upload never competes with the reconciles on kopf's loop.

  POST /v1/uploads                                 Bearer <upload token>; body: tar or tar.gz
  GET  /v1/runs/{namespace}/{run}                  X-Helm-E2E-Ticket: <nonce>; the run's tests and files
  GET  /v1/runs/{namespace}/{run}/tests/{test}     the same ticket; the test's bundle (tar.gz)

Downloads are reached through the apiserver's service proxy; the ticket proves the caller could annotate
that E2ERun with its own rights (core.artifacts.ticket_matches), so a test pod that can reach this port
still reads nothing.

At most `upload_slots` uploads are received, inspected and stored at once (the spool directory then holds
at most that many bodies, and memory that many inspections); an upload that finds no free slot within
SLOT_WAIT_SECONDS is answered 503 with Retry-After, and the collector tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from helm_e2e import errors
from helm_e2e.artifacts.bundle import BundleRefused
from helm_e2e.artifacts.service import Artifacts, UploadClaims
from helm_e2e.clients import metrics
from helm_e2e.core.artifacts import rules
from helm_e2e.core.model import names
from helm_e2e.settings import Settings

log = structlog.get_logger(__name__)

GetRun = Callable[[str, str], Awaitable[Mapping[str, Any] | None]]
UPLOAD_SLACK = 2**20  # a compressed bundle is rarely larger than its files, never by more than this much
UPLOAD_SLOTS = 4  # uploads spooled, inspected and stored at once
SLOT_WAIT_SECONDS = 5.0  # how long an upload waits for a slot before it is answered 503
RETRY_AFTER_SECONDS = 2  # what that 503 asks the collector to wait
BUSY = "the operator is receiving other uploads; try again"


def _now() -> datetime:
    return datetime.now(UTC)


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


class ArtifactServer:
    def __init__(
        self,
        artifacts_: Artifacts,
        get_run: GetRun,
        *,
        max_upload_bytes: int,
        upload_slots: int = UPLOAD_SLOTS,
        slot_wait_seconds: float = SLOT_WAIT_SECONDS,
    ) -> None:
        self.artifacts, self.get_run, self.max_upload = artifacts_, get_run, max_upload_bytes
        self._slots = asyncio.Semaphore(max(1, upload_slots))
        self.slot_wait = slot_wait_seconds
        self.uploads_in_progress = 0  # holding a slot: spooling, inspecting or storing

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024)  # bodies are streamed, never buffered by aiohttp
        app.router.add_post("/v1/uploads", self.upload)
        app.router.add_get("/v1/runs/{namespace}/{run}", self.list_run)
        app.router.add_get("/v1/runs/{namespace}/{run}/tests/{test}", self.bundle)
        app.router.add_get("/healthz", self.health)
        app.router.add_get("/readyz", self.ready)
        return app

    async def health(self, _: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def ready(self, _: web.Request) -> web.Response:
        """The pod's readiness: not ready while the store cannot be written (evidence would be lost)."""
        problem = await self.artifacts.store_problem()
        return _error(503, problem) if problem else web.json_response({"ok": True})

    async def upload(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        claims = await self.artifacts.verify(token.strip()) if scheme.lower() == "bearer" else None
        if claims is None:
            metrics.ARTIFACT_UPLOADS.labels(result="unauthorized").inc()
            log.warning("rules.upload_unauthorized", peer=request.remote)
            return _error(401, "the upload token is missing, invalid or expired")
        if not await self._take_slot():
            metrics.ARTIFACT_UPLOADS.labels(result="busy").inc()
            log.warning("rules.upload_busy", namespace=claims.namespace, run=claims.run, test=claims.test)
            return _error(503, BUSY, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        self.uploads_in_progress += 1
        try:
            return await self._store_upload(request, claims)
        finally:
            self.uploads_in_progress -= 1
            self._slots.release()

    async def _take_slot(self) -> bool:
        try:
            async with asyncio.timeout(self.slot_wait):
                await self._slots.acquire()
        except TimeoutError:
            return False
        return True

    async def _store_upload(self, request: web.Request, claims: UploadClaims) -> web.Response:
        where = {"namespace": claims.namespace, "run": claims.run, "test": claims.test}
        with tempfile.TemporaryDirectory(prefix="helm-e2e-upload-") as tmp:
            path = Path(tmp) / "bundle"
            if not await self._receive_body(request, path):
                why = f"the upload is larger than {self.max_upload} bytes (the per-test quota)"
                await self.artifacts.refuse(claims, why, now=_now())
                log.warning("rules.upload_refused", **where, reason=why)
                return _error(413, why)
            try:
                manifest = await self.artifacts.receive(claims, path, now=_now())
            except BundleRefused as e:
                log.warning("rules.upload_refused", **where, reason=str(e))
                return _error(422, str(e))
            except errors.StoreError as e:
                log.warning("rules.store_failed", **where, error=str(e))
                return _error(503, "the artifact store is unavailable; try again")
        log.info("rules.stored", **where, files=len(manifest.files), bytes=manifest.total_bytes)
        return web.json_response({"files": len(manifest.files), "bytes": manifest.total_bytes}, status=201)

    async def _receive_body(self, request: web.Request, path: Path) -> bool:
        """Stream the body to a local file; False as soon as it exceeds the limit (nothing is kept)."""
        if request.content_length is not None and request.content_length > self.max_upload:
            return False
        received = 0
        with path.open("wb") as out:
            async for chunk in request.content.iter_chunked(1 << 16):
                received += len(chunk)
                if received > self.max_upload:
                    return False
                out.write(chunk)  # 64 KiB to a local file: not worth a thread hop
        return True

    async def _authorized_run(self, request: web.Request) -> Mapping[str, Any] | web.Response:
        namespace, run = request.match_info["namespace"], request.match_info["run"]
        body = await self.get_run(namespace, run)
        annotations = ((body or {}).get("metadata") or {}).get("annotations") or {}
        ticket = request.headers.get(names.TICKET_HEADER, "")
        if body is None or not rules.ticket_matches(
            str(annotations.get(names.ARTIFACTS_TICKET_ANNOTATION, "")), ticket, _now()
        ):
            # one answer for "no such run" and "no access": the caller learns nothing it may not see
            return _error(403, "no valid ticket for this run (helm-e2e artifacts writes one)")
        return body

    async def list_run(self, request: web.Request) -> web.Response:
        body = await self._authorized_run(request)
        if isinstance(body, web.Response):
            return body
        meta = body["metadata"]
        found = await self.artifacts.run_manifests(meta["namespace"], meta["name"], meta.get("uid", ""))
        return web.json_response(
            {
                "tests": {
                    test: {"files": [f.model_dump() for f in m.files], "refused": m.refused}
                    for test, m in sorted(found.items())
                }
            }
        )

    async def bundle(self, request: web.Request) -> web.StreamResponse:
        body = await self._authorized_run(request)
        if isinstance(body, web.Response):
            return body
        meta, test = body["metadata"], request.match_info["test"]
        manifest = await self.artifacts.manifest(meta["namespace"], meta["name"], meta.get("uid", ""), test)
        if manifest is None or not manifest.bundle:
            return _error(404, "this test stored no artifacts")
        tmp = tempfile.TemporaryDirectory(prefix="helm-e2e-download-")
        try:
            path = Path(tmp.name) / "bundle.tar.gz"
            if not await self.artifacts.download_bundle(manifest, path):
                return _error(404, "this test stored no artifacts")
            response = web.StreamResponse(headers={"Content-Type": "application/gzip"})
            response.content_length = path.stat().st_size
            await response.prepare(request)
            with path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            tmp.cleanup()


def upload_limit(settings: Settings) -> int:
    """The largest body accepted: a compressed bundle of a full quota, with headers, and some slack."""
    bound = rules.inflated_bound(settings.artifacts_max_test_bytes, settings.artifacts_max_files)
    return bound + UPLOAD_SLACK


@contextlib.contextmanager
def serve_artifacts(make_server: Callable[[], ArtifactServer], *, host: str, port: int) -> Iterator[None]:
    """Run the server on its own thread and loop while the block runs (port 0: not at all)."""
    if not port:
        yield
        return
    loop = asyncio.new_event_loop()
    started = threading.Event()
    runner: list[web.AppRunner] = []

    async def start() -> None:
        app_runner = web.AppRunner(make_server().app(), access_log=None)
        await app_runner.setup()
        await web.TCPSite(app_runner, host, port).start()
        runner.append(app_runner)

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        finally:
            started.set()
        loop.run_forever()

    thread = threading.Thread(target=main, name="artifact-server", daemon=True)
    thread.start()
    started.wait(timeout=30)
    if not runner:
        raise errors.HelmE2EError(f"the artifacts server could not listen on port {port}")
    log.info("rules.serving", port=port)
    try:
        yield
    finally:
        asyncio.run_coroutine_threadsafe(runner[0].cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
