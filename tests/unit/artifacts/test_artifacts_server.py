"""The operator's side of artifacts on a real local store (a tmp directory): tokens, bundles, quotas, the
HTTP server (real aiohttp on a local port) and the collector shipping a real directory to it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import io
import json
import os
import tarfile
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import runs
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from tarballs import tar_gz

from helm_e2e import collector
from helm_e2e.artifacts.bundle import BundleRefused, inspect_bundle
from helm_e2e.artifacts.server import ArtifactServer
from helm_e2e.artifacts.service import Artifacts, UploadClaims
from helm_e2e.artifacts.store import open_store
from helm_e2e.core.artifacts import rules
from helm_e2e.core.model import names
from helm_e2e.core.model.run_status import PytestFailure
from helm_e2e.settings import Settings

NOW = datetime.now(UTC)


def _settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(
        artifacts_store=str(tmp_path / "store"),
        artifacts_url="http://op:8081",
        collector_image="img",
        artifacts_max_test_bytes=kw.pop("max_test", 10_000),
        artifacts_max_run_bytes=kw.pop("max_run", 15_000),
        artifacts_max_files=kw.pop("max_files", 20),
        **kw,
    )


# web r3 in shop (chart web 1), the run whose tests upload
_run = functools.partial(
    runs.make_run, release={"revision": 3, "chart": "web", "chart_version": "1"}, uid="uid-1"
)


def _failures(data: bytes) -> list[PytestFailure]:
    return [PytestFailure(id=line) for line in data.decode().split() if line.startswith("FAIL:")]


@pytest.fixture
def service(tmp_path: Path) -> Artifacts:
    return Artifacts(open_store(str(tmp_path / "store")), _settings(tmp_path), parse_failures=_failures)


def _bundle(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "upload.tgz"
    path.write_bytes(data)
    return path


# --- tokens ---
async def test_a_token_names_one_test_of_one_run_and_forgeries_fail(service: Artifacts) -> None:
    token = await service.mint(_run(), "api", now=NOW)
    assert await service.verify(token) == UploadClaims("shop", "web-3", "uid-1", "api")
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "run": "other-1"}, b"x" * 32, algorithm="HS256")
    assert await service.verify(forged) is None
    expired = jwt.encode(
        {**claims, "exp": int((NOW - timedelta(hours=1)).timestamp())}, await service.key(), "HS256"
    )
    assert await service.verify(expired) is None
    other_audience = jwt.encode({**claims, "aud": "someone-else"}, await service.key(), "HS256")
    assert await service.verify(other_audience) is None
    assert await service.verify("not-a-token") is None


async def test_the_signing_key_survives_a_restart(tmp_path: Path, service: Artifacts) -> None:
    token = await service.mint(_run(), "api", now=NOW)
    again = Artifacts(open_store(str(tmp_path / "store")), _settings(tmp_path))
    assert await again.verify(token) == UploadClaims("shop", "web-3", "uid-1", "api")


# --- bundles ---
def test_a_bundle_lists_its_files_with_sizes_and_digests(tmp_path: Path) -> None:
    path = _bundle(tmp_path, tar_gz({"junit.xml": b"FAIL:t.py::a ok", "screens/a.png": b"\x89PNG"}))
    report = inspect_bundle(path, max_bytes=1000, max_files=10, parse_failures=_failures)
    assert [(f.name, f.size) for f in report.files] == [("junit.xml", 15), ("screens/a.png", 4)]
    assert report.failures == [PytestFailure(id="FAIL:t.py::a")]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (tar_gz({"../evil": b"x"}), "plain relative path"),
        (tar_gz({}, links={"link": "/etc/shadow"}), "link"),
        (tar_gz({"a": b"x" * 600, "b": b"y" * 600}), "per-test quota"),
        (tar_gz({f"f{i}": b"" for i in range(11)}), "more than 10 files"),
        (b"this is not a tar", "not a valid tar"),
        (tar_gz({"a": b"x"})[:-20], "not a valid tar|truncated"),
        (gzip.compress(b"\0" * 5_000_000), "inflates beyond"),
    ],
)
def test_a_hostile_bundle_is_refused_with_a_reason(tmp_path: Path, data: bytes, why: str) -> None:
    with pytest.raises(BundleRefused, match=why):
        inspect_bundle(_bundle(tmp_path, data), max_bytes=1000, max_files=10)


def hostile_header_gz(path: Path, kind: bytes, size: int) -> Path:
    """One extended header (PAX 'x', GNU long name 'L') of `size` bytes and a file after it, gzipped in a
    stream: a 40 MiB header is a ~40 KiB upload."""
    info = tarfile.TarInfo("h")
    info.type, info.size = kind, size
    record = b"%d comment=" % size  # one PAX record as long as the header (tarfile parses all of it)
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(info.tobuf(tarfile.USTAR_FORMAT))
        out.write(record if kind != tarfile.GNUTYPE_LONGNAME else b"n")
        left = size - (len(record) if kind != tarfile.GNUTYPE_LONGNAME else 1) - 1
        while left > 0:
            out.write(b"c" * min(left, 1 << 20))
            left -= 1 << 20
        out.write(b"\n" + b"\0" * (-size % 512))
        file = tarfile.TarInfo("a.txt")
        file.size = 1
        out.write(file.tobuf(tarfile.USTAR_FORMAT) + b"a" + b"\0" * 511 + b"\0" * 1024)
    return path


@pytest.mark.parametrize(
    ("kind", "size", "why"),
    [
        (tarfile.XHDTYPE, 2**20, "a tar header \\(PAX or GNU long name\\) is larger than 8192 bytes"),
        (tarfile.GNUTYPE_LONGNAME, 2**20, "larger than 8192 bytes"),
    ],
)
def test_a_huge_tar_header_within_the_quota_is_refused(
    tmp_path: Path, kind: bytes, size: int, why: str
) -> None:
    path = hostile_header_gz(tmp_path / "h.tgz", kind, size)
    with pytest.raises(BundleRefused, match=why):
        inspect_bundle(path, max_bytes=10 * 2**20, max_files=10)


def test_a_huge_pax_header_costs_no_memory(tmp_path: Path) -> None:
    """tarfile alone held the 40 MiB header, its regex match and its decoded value at once (> 100 MiB)."""
    path = hostile_header_gz(tmp_path / "h.tgz", tarfile.XHDTYPE, 40 * 2**20)
    assert path.stat().st_size < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(BundleRefused, match="larger than 8192 bytes"):
            inspect_bundle(path, max_bytes=50 * 2**20, max_files=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_many_entries_are_refused_even_when_they_are_directories(tmp_path: Path) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for i in range(50):
            info = tarfile.TarInfo(f"d{i}")
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
    with pytest.raises(BundleRefused, match="more than 20 entries"):
        inspect_bundle(_bundle(tmp_path, out.getvalue()), max_bytes=100_000, max_files=10)


def test_long_names_in_pax_and_gnu_bundles_are_kept(tmp_path: Path) -> None:
    name = "reports/" + "n" * 150 + "/junit.xml"
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w:gz", format=fmt) as tar:
            info = tarfile.TarInfo(name)
            info.size = 8
            tar.addfile(info, io.BytesIO(b"FAIL:t.x"))
        report = inspect_bundle(
            _bundle(tmp_path, out.getvalue()), max_bytes=1000, max_files=10, parse_failures=_failures
        )
        assert [f.name for f in report.files] == [name]
        assert report.failures == [PytestFailure(id="FAIL:t.x")]


# --- receive: stored whole or refused whole ---
async def test_an_upload_is_stored_and_its_manifest_written_last(tmp_path: Path, service: Artifacts) -> None:
    claims = UploadClaims("shop", "web-3", "uid-1", "api")
    manifest = await service.receive(claims, _bundle(tmp_path, tar_gz({"junit.xml": b"FAIL:x"})), now=NOW)
    assert [f.name for f in manifest.files] == ["junit.xml"]
    assert await service.manifest("shop", "web-3", "uid-1", "api") == manifest
    files = await service.read_files(manifest, {"junit.xml"}, max_bytes=100)
    assert files == {"junit.xml": b"FAIL:x"}
    # a second upload (a retried attempt) replaces the first, and the first bundle is gone
    second = await service.receive(claims, _bundle(tmp_path, tar_gz({"b.txt": b"2"})), now=NOW)
    keys = sorted(o.key for o in await service.store.list(rules.run_prefix("shop", "web-3", "uid-1")))
    assert keys == sorted([second.bundle, rules.manifest_key("shop", "web-3", "uid-1", "api")])


async def test_the_run_quota_counts_the_other_tests(tmp_path: Path, service: Artifacts) -> None:
    await service.receive(
        UploadClaims("shop", "web-3", "uid-1", "a"), _bundle(tmp_path, tar_gz({"x": b"x" * 9000})), now=NOW
    )
    with pytest.raises(BundleRefused, match="per-run quota"):
        await service.receive(
            UploadClaims("shop", "web-3", "uid-1", "b"),
            _bundle(tmp_path, tar_gz({"y": b"y" * 9000})),
            now=NOW,
        )
    refused = await service.manifest("shop", "web-3", "uid-1", "b")
    assert refused is not None
    assert refused.files == []
    assert "per-run quota" in refused.refused
    assert await service.delete_run("shop", "web-3", "uid-1") == 3
    assert await service.store.list("runs/") == []


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
    token = await service.mint(_run(), "api", now=NOW)
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
    await service.receive(claims, _bundle(tmp, tar_gz({"junit.xml": b"<x/>"})), now=NOW)
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
    token = await service.mint(_run(), "ui", now=NOW)
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

    token = await service.mint(_run(), "first", now=NOW)
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
        token = await service.mint(_run(), "api", now=NOW)
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
    token = await service.mint(_run(), "ui", now=NOW)
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
    token = await service.mint(_run(), "ui", now=NOW)
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
