"""artifacts/server.py on a real local store (a tmp directory): the HTTP server (real aiohttp on a local
port), its upload slots, and the collector shipping a real directory to it (tokens, bundles and quotas:
test_artifacts_service.py, test_artifacts_bundle.py)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import tarfile
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from artifact_service import NOW, artifact_service, bundle_at, upload_run
from tarballs import tar_gz

from helm_e2e import collector
from helm_e2e.artifacts.server import ArtifactServer
from helm_e2e.artifacts.service import Artifacts, UploadClaims
from helm_e2e.core.artifacts import rules
from helm_e2e.core.model import names


@pytest.fixture
def service(tmp_path: Path) -> Artifacts:
    return artifact_service(tmp_path)


# --- the HTTP server ---
@pytest.fixture
async def server(service: Artifacts) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    runs: dict[str, Any] = {}

    async def get_run(namespace: str, name: str) -> dict[str, Any] | None:
        return runs.get(f"{namespace}/{name}")

    app = ArtifactServer(service, get_run, max_upload_bytes=20_000).app()
    async with TestServer(app) as ts:
        yield str(ts.make_url("")), runs


async def test_uploads_need_the_tests_own_token(
    service: Artifacts, server: tuple[str, dict[str, Any]]
) -> None:
    base, _ = server
    token = await service.mint(upload_run(), "api", now=NOW)
    body = tar_gz({"junit.xml": b"<testsuite/>"})
    async with ClientSession() as http:
        ok = await http.post(f"{base}/v1/uploads", data=body, headers={"Authorization": f"Bearer {token}"})
        assert (ok.status, await ok.json()) == (201, {"files": 1, "bytes": 12})
        anon = await http.post(f"{base}/v1/uploads", data=body)
        assert anon.status == 401
        big = await http.post(
            f"{base}/v1/uploads", data=b"x" * 30_000, headers={"Authorization": f"Bearer {token}"}
        )
        assert big.status == 413
        bad = await http.post(
            f"{base}/v1/uploads", data=b"junk", headers={"Authorization": f"Bearer {token}"}
        )
        assert bad.status == 422
        assert "not a valid tar" in (await bad.json())["error"]
    refused = await service.manifest("shop", "web-3", "uid-1", "api")
    assert refused is not None
    assert "not a valid tar" in refused.refused


async def test_downloads_need_a_fresh_ticket_on_the_run(
    service: Artifacts, server: tuple[str, dict[str, Any]]
) -> None:
    base, runs = server
    claims = UploadClaims("shop", "web-3", "uid-1", "api")
    tmp = Path(service.settings.artifacts_store).parent
    await service.receive(claims, bundle_at(tmp, tar_gz({"junit.xml": b"<x/>"})), now=NOW)
    meta: dict[str, Any] = {"name": "web-3", "namespace": "shop", "uid": "uid-1", "annotations": {}}
    runs["shop/web-3"] = {"metadata": meta}
    async with ClientSession() as http:
        assert (
            await http.get(f"{base}/v1/runs/shop/web-3", headers={names.TICKET_HEADER: "n1"})
        ).status == 403
        meta["annotations"][names.ARTIFACTS_TICKET_ANNOTATION] = rules.ticket_annotation(
            "n1", datetime.now(UTC)
        )
        listing = await http.get(f"{base}/v1/runs/shop/web-3", headers={names.TICKET_HEADER: "n1"})
        assert (await listing.json())["tests"]["api"]["files"][0]["name"] == "junit.xml"
        assert (
            await http.get(f"{base}/v1/runs/shop/web-3", headers={names.TICKET_HEADER: "n2"})
        ).status == 403
        assert (
            await http.get(f"{base}/v1/runs/shop/nope", headers={names.TICKET_HEADER: "n1"})
        ).status == 403
        bundle = await http.get(f"{base}/v1/runs/shop/web-3/tests/api", headers={names.TICKET_HEADER: "n1"})
        data = await bundle.read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == ["junit.xml"]


async def test_the_collector_ships_a_real_directory(
    tmp_path: Path, service: Artifacts, server: tuple[str, dict[str, Any]]
) -> None:
    base, _ = server
    (tmp_path / "out" / "screens").mkdir(parents=True)
    (tmp_path / "out" / "junit.xml").write_text("<testsuite/>")
    (tmp_path / "out" / "screens" / "a.png").write_bytes(b"\x89PNG")
    (tmp_path / "out" / "escape").symlink_to("/etc/hostname")
    token = await service.mint(upload_run(), "ui", now=NOW)
    result: list[str] = []
    # the collector blocks (it is a process of its own in a pod): run it off this test's loop
    thread = threading.Thread(
        target=lambda: result.append(collector.ship(tmp_path / "out", f"{base}/v1/uploads", token))
    )
    thread.start()
    import asyncio

    while thread.is_alive():
        await asyncio.sleep(0.05)
    assert result[0].startswith("helm-e2e collector: shipped 2 files: 201")
    manifest = await service.manifest("shop", "web-3", "uid-1", "ui")
    assert manifest is not None
    assert sorted(f.name for f in manifest.files) == ["junit.xml", "screens/a.png"]
    assert (
        collector.ship(tmp_path / "empty", f"{base}/v1/uploads", token) == "helm-e2e collector: no artifacts"
    )
    assert json.loads(json.dumps(manifest.model_dump(mode="json")))["bundle"].endswith(".tar.gz")


# --- a limit on uploads at once: 503 + Retry-After, and the collector ships again ---
@contextlib.asynccontextmanager
async def holding_the_only_slot(
    service: Artifacts, *, slot_wait: float
) -> AsyncIterator[tuple[str, ArtifactServer, asyncio.Event]]:
    """A server with one upload slot, held by an upload whose body waits for the event."""

    async def get_run(namespace: str, name: str) -> None:
        return None

    server = ArtifactServer(
        service, get_run, max_upload_bytes=20_000, upload_slots=1, slot_wait_seconds=slot_wait
    )
    release, body = asyncio.Event(), tar_gz({"first.txt": b"1"})

    async def slow_body() -> AsyncIterator[bytes]:
        yield body[:10]
        await release.wait()
        yield body[10:]

    token = await service.mint(upload_run(), "first", now=NOW)
    async with TestServer(server.app()) as ts, ClientSession() as http:
        base = str(ts.make_url(""))
        first = asyncio.create_task(
            http.post(f"{base}/v1/uploads", data=slow_body(), headers={"Authorization": f"Bearer {token}"})
        )
        deadline = time.monotonic() + 10
        while server.uploads_in_progress == 0:
            assert time.monotonic() < deadline, "the first upload never took its slot"
            await asyncio.sleep(0.01)
        yield base, server, release
        release.set()
        assert (await first).status == 201


async def test_an_upload_that_finds_no_free_slot_gets_503_with_retry_after(service: Artifacts) -> None:
    async with holding_the_only_slot(service, slot_wait=0.2) as (base, server, _):
        token = await service.mint(upload_run(), "api", now=NOW)
        async with ClientSession() as http:
            busy = await http.post(
                f"{base}/v1/uploads", data=tar_gz({"a": b"a"}), headers={"Authorization": f"Bearer {token}"}
            )
            assert (busy.status, busy.headers.get("Retry-After")) == (503, "2")
            assert "try again" in (await busy.json())["error"]
        assert server.uploads_in_progress == 1
        assert await service.manifest("shop", "web-3", "uid-1", "api") is None  # nothing recorded or spooled


async def test_the_collector_ships_again_after_a_busy_answer(tmp_path: Path, service: Artifacts) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "junit.xml").write_text("<testsuite/>")
    token = await service.mint(upload_run(), "ui", now=NOW)
    loop, waits, result = asyncio.get_running_loop(), list[float](), list[str]()
    async with holding_the_only_slot(service, slot_wait=1.0) as (base, _, release):

        def sleep(seconds: float) -> None:  # the collector waits as told; meanwhile the slot frees
            waits.append(seconds)
            loop.call_soon_threadsafe(release.set)

        thread = threading.Thread(
            target=lambda: result.append(
                collector.ship(tmp_path / "out", f"{base}/v1/uploads", token, sleep=sleep)
            )
        )
        thread.start()
        while thread.is_alive():
            await asyncio.sleep(0.05)
    assert waits == [2.0]
    assert result[0].startswith("helm-e2e collector: shipped 1 files: 201")
    assert "after 2 attempts" in result[0]
    manifest = await service.manifest("shop", "web-3", "uid-1", "ui")
    assert manifest is not None
    assert [f.name for f in manifest.files] == ["junit.xml"]


async def test_the_collector_does_not_ship_again_after_a_refusal(
    tmp_path: Path, service: Artifacts, server: tuple[str, dict[str, Any]]
) -> None:
    base, _ = server
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "dump.bin").write_bytes(os.urandom(30_000))  # over the 20 kB upload limit
    token = await service.mint(upload_run(), "ui", now=NOW)
    waits: list[float] = []
    result: list[str] = []
    thread = threading.Thread(
        target=lambda: result.append(
            collector.ship(tmp_path / "out", f"{base}/v1/uploads", token, sleep=waits.append)
        )
    )
    thread.start()
    while thread.is_alive():
        await asyncio.sleep(0.05)
    assert result[0].startswith("helm-e2e collector: refused 413")
    assert waits == []


@pytest.mark.parametrize(
    ("status", "retry_after", "wait"),
    [
        (503, "2", 2.0),
        (429, "0.5", 0.5),
        (503, None, collector.RETRY_DEFAULT_SECONDS),
        (503, "Wed, 21 Oct 2015 07:28:00 GMT", collector.RETRY_DEFAULT_SECONDS),
        (503, "nan", collector.RETRY_DEFAULT_SECONDS),
        (503, "-5", collector.RETRY_DEFAULT_SECONDS),
        (503, "86400", collector.RETRY_MAX_SECONDS),
        (413, "2", None),
        (422, None, None),
        (401, None, None),
    ],
)
def test_the_collector_waits_only_after_busy_answers_and_never_long(
    status: int, retry_after: str | None, wait: float | None
) -> None:
    assert collector.retry_delay(status, retry_after) == wait


def test_the_collector_gives_up_when_its_time_is_spent(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.txt").write_text("a")
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    busy = _busy_server()
    try:
        url = f"http://127.0.0.1:{busy.server_address[1]}/v1/uploads"
        line = collector.ship(tmp_path / "out", url, "t", budget_seconds=2.5, sleep=sleep)
    finally:
        busy.shutdown()
        busy.server_close()
    assert line.startswith("helm-e2e collector: refused 503")
    assert "after 2 attempts" in line
    assert waits == [1.0]  # another wait of 1 s (+1 s for an upload) no longer fits in 2.5 s


def _busy_server() -> Any:
    """A plain HTTP server that is always busy (reads the body, answers 503 with Retry-After: 1)."""
    import http.server

    class Busy(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            while (size := int(self.rfile.readline().strip() or b"0", 16)) > 0:
                self.rfile.read(size + 2)
            self.rfile.readline()
            self.send_response(503)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"busy")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
