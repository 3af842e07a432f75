"""The artifact store against both backends: a local directory (file://) and a real S3-compatible server
(versitygw, started by the harness). The same cases run on each; nothing is mocked."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import S3Server

from helm_e2e.artifacts.store import ArtifactStore, StoredObject, open_store
from helm_e2e.errors import StoreError

MiB = 1024 * 1024


@pytest.fixture(params=["file", "s3"])
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh, empty store per test: a tmp directory, or a fresh prefix in the real S3 server's bucket."""
    if request.param == "file":
        yield f"file://{tmp_path / 'store'}"
        return
    server: S3Server = request.getfixturevalue("s3_server")
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    yield server.url(f"t-{secrets.token_hex(4)}/artifacts")


@pytest.fixture
def store(store_url: str) -> ArtifactStore:
    return open_store(store_url, timeout=30, transfer_timeout=300)


def write_random(path: Path, size: int) -> str:
    """A file of `size` pseudo-random bytes (incompressible, 1 MiB at a time); returns its sha256."""
    digest = hashlib.sha256()
    block = secrets.token_bytes(MiB)
    with path.open("wb") as f:
        for i in range(size // MiB + 1):
            chunk = (block[i % 251 :] + block[: i % 251])[: min(MiB, size - i * MiB)]
            f.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


async def test_bytes_round_trip_absent_keys_and_create_only_puts(store: ArtifactStore) -> None:
    await store.put_bytes("runs/r1/api/junit.xml", b"<testsuite/>")
    assert await store.get_bytes("runs/r1/api/junit.xml", max_bytes=100) == b"<testsuite/>"
    assert await store.get_bytes("runs/r1/api/absent.xml", max_bytes=100) is None
    assert await store.put_bytes_if_absent("runs/r1/token", b"one") is True
    assert await store.put_bytes_if_absent("runs/r1/token", b"two") is False
    assert await store.get_bytes("runs/r1/token", max_bytes=100) == b"one"
    await store.put_bytes("runs/r1/api/junit.xml", b"<testsuites/>")  # put_bytes replaces
    assert await store.get_bytes("runs/r1/api/junit.xml", max_bytes=100) == b"<testsuites/>"


async def test_concurrent_create_only_puts_let_exactly_one_writer_win(store: ArtifactStore) -> None:
    results = await asyncio.gather(*(store.put_bytes_if_absent("runs/r1/lock", b"%d" % i) for i in range(12)))
    assert sorted(results) == [False] * 11 + [True]
    assert await store.get_bytes("runs/r1/lock", max_bytes=10) == b"%d" % results.index(True)


async def test_a_50_mib_artifact_goes_up_in_parts_and_comes_back_identical(
    store: ArtifactStore, tmp_path: Path
) -> None:
    size = 50 * MiB + 7
    checksum = write_random(tmp_path / "artifacts.tar.gz", size)
    await store.put_file("runs/r1/api/artifacts.tar.gz", tmp_path / "artifacts.tar.gz")
    assert await store.list("runs/r1") == [StoredObject(key="runs/r1/api/artifacts.tar.gz", size=size)]
    out = tmp_path / "downloaded"
    out.mkdir()
    assert await store.download("runs/r1/api/artifacts.tar.gz", out / "a.tgz", max_bytes=size) is True
    assert sha256_of(out / "a.tgz") == checksum
    assert [p.name for p in out.iterdir()] == ["a.tgz"]
    with pytest.raises(StoreError) as refused:
        await store.download("runs/r1/api/artifacts.tar.gz", out / "b.tgz", max_bytes=size - 1)
    assert refused.value.reason == "TooLarge"
    assert [p.name for p in out.iterdir()] == ["a.tgz"]
    with pytest.raises(StoreError) as refused:
        await store.get_bytes("runs/r1/api/artifacts.tar.gz", max_bytes=5 * MiB)
    assert refused.value.reason == "TooLarge"


async def test_readers_see_the_old_or_the_new_object_whole_while_a_big_put_replaces_it(
    store: ArtifactStore, tmp_path: Path
) -> None:
    size = 20 * MiB
    (tmp_path / "a").write_bytes(b"a" * size)
    (tmp_path / "b").write_bytes(b"b" * size)
    await store.put_file("obj", tmp_path / "a")
    put = asyncio.ensure_future(store.put_file("obj", tmp_path / "b"))
    reads = 0
    while not put.done():
        data = await store.get_bytes("obj", max_bytes=size)
        assert data is not None
        assert len(data) == size
        assert data in {b"a" * size, b"b" * size}
        reads += 1
    await put
    assert reads >= 1
    assert await store.get_bytes("obj", max_bytes=size) == b"b" * size


async def test_a_put_that_fails_midway_leaves_nothing_readable(store_url: str, tmp_path: Path) -> None:
    write_random(tmp_path / "big", 64 * MiB)
    started = time.monotonic()
    await open_store(store_url).put_file("measure/big", tmp_path / "big")
    half = (time.monotonic() - started) / 2  # time out halfway through the same upload
    store = open_store(store_url, transfer_timeout=half)
    with pytest.raises(StoreError) as failed:
        await store.put_file("runs/r1/big", tmp_path / "big")
    assert failed.value.reason == "Timeout"
    await asyncio.sleep(1)  # nor later: the upload was abandoned, not left running
    assert await store.get_bytes("runs/r1/big", max_bytes=1) is None
    assert [o.key for o in await store.list("")] == ["measure/big"]  # no staging file or part is listed


async def test_delete_prefix_removes_many_keys_across_pages_and_nothing_else(store: ArtifactStore) -> None:
    gate = asyncio.Semaphore(16)

    async def put(key: str) -> None:
        async with gate:
            await store.put_bytes(key, b"x")

    await asyncio.gather(*(put(f"runs/r1/t{i % 5}/f{i:04d}") for i in range(1203)))
    await asyncio.gather(put("runs/r10/keep"), put("runs/r1-other/keep"))
    assert len(await store.list("runs/r1")) == 1203  # more than one page of 1000
    assert await store.delete_prefix("runs/r1") == 1203
    assert sorted(o.key for o in await store.list("")) == ["runs/r1-other/keep", "runs/r10/keep"]
    assert await store.delete_prefix("runs/r1") == 0


async def test_stores_on_different_prefixes_do_not_see_each_other(store_url: str) -> None:
    base, _, query = store_url.partition("?")
    first = open_store(f"{base}/one{'?' if query else ''}{query}")
    second = open_store(f"{base}/two{'?' if query else ''}{query}")
    await first.put_bytes("k", b"1")
    assert await second.get_bytes("k", max_bytes=1) is None
    assert await second.list("") == []
    assert await first.list("") == [StoredObject(key="k", size=1)]


async def test_wrong_credentials_are_refused_without_echoing_them(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
    store = open_store(s3_server.url("denied"), timeout=20)
    with pytest.raises(StoreError) as refused:
        await store.put_bytes("k", b"x")
    message = str(refused.value)
    assert refused.value.reason in {"PermissionDenied", "Unauthenticated"}
    assert "wrong-secret" not in message
    assert s3_server.access_key not in message
    assert s3_server.endpoint not in message


async def test_the_probe_passes_on_a_usable_store_and_fails_on_a_missing_bucket(
    store: ArtifactStore, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.probe()
    assert await store.list("") == []
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    missing = open_store(
        s3_server.url().replace(f"s3://{s3_server.bucket}", "s3://no-such-bucket"), timeout=20
    )
    with pytest.raises(StoreError) as failed:
        await missing.probe()
    assert failed.value.reason in {"NotFound", "Unavailable"}
    assert str(failed.value).startswith("artifact store s3://no-such-bucket: put '_probe/")
