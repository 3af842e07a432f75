"""The artifact store on a real local directory (file://): atomicity, bounds, keys and what errors say.
The same store against a real S3 server: tests/integration/test_store.py."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import obstore.exceptions as obstore_errors
import pytest

from helm_e2e.artifacts import store as store_module
from helm_e2e.artifacts.store import ArtifactStore, StoredObject, open_store
from helm_e2e.errors import StoreError

MiB = 1024 * 1024


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store" / "nested"


@pytest.fixture
def store(root: Path) -> ArtifactStore:
    return open_store(f"file://{root}")


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def write(path: Path, size: int, byte: bytes = b"a") -> Path:
    with path.open("wb") as f:
        for _ in range(size // MiB):
            f.write(byte * MiB)
        f.write(byte * (size % MiB))
    return path


def test_opening_a_local_store_creates_its_directory_and_describes_it_by_path(root: Path) -> None:
    store = open_store(str(root))
    assert root.is_dir()
    assert store.description == f"file:{root}"
    assert repr(store) == f"ArtifactStore(file:{root})"


def test_opening_an_s3_store_contacts_nothing_and_describes_it_without_endpoint() -> None:
    store = open_store("s3://bucket/runs?endpoint=http://127.0.0.1:9&region=us-east-1")
    assert store.description == "s3://bucket/runs"


async def test_bytes_round_trip_and_an_absent_key_reads_as_none(store: ArtifactStore, root: Path) -> None:
    await store.put_bytes("runs/r1/a.txt", b"hello")
    assert await store.get_bytes("runs/r1/a.txt", max_bytes=5) == b"hello"
    assert await store.get_bytes("runs/r1/missing.txt", max_bytes=5) is None
    assert files_under(root) == ["runs/r1/a.txt"]


async def test_put_if_absent_creates_once_and_never_replaces(store: ArtifactStore) -> None:
    assert await store.put_bytes_if_absent("tokens/t1", b"first") is True
    assert await store.put_bytes_if_absent("tokens/t1", b"second") is False
    assert await store.get_bytes("tokens/t1", max_bytes=100) == b"first"


async def test_concurrent_create_only_puts_let_exactly_one_writer_win(store: ArtifactStore) -> None:
    results = await asyncio.gather(*(store.put_bytes_if_absent("lock", str(i).encode()) for i in range(8)))
    assert sorted(results) == [False] * 7 + [True]
    winner = results.index(True)
    assert await store.get_bytes("lock", max_bytes=10) == str(winner).encode()


async def test_get_bytes_refuses_an_object_over_the_limit_by_its_size_without_quoting_it(
    store: ArtifactStore,
) -> None:
    await store.put_bytes("big", b"secret-content" * 1000)
    with pytest.raises(StoreError) as refused:
        await store.get_bytes("big", max_bytes=13_999)
    assert refused.value.reason == "TooLarge"
    assert "14000 bytes is over the limit of 13999" in str(refused.value)
    assert "secret-content" not in str(refused.value)
    assert await store.get_bytes("big", max_bytes=14_000) == b"secret-content" * 1000


async def test_put_file_streams_a_large_file_and_download_streams_it_back(
    store: ArtifactStore, tmp_path: Path
) -> None:
    source = write(tmp_path / "artifacts.tar.gz", 20 * MiB + 123, b"z")
    await store.put_file("runs/r1/artifacts.tar.gz", source)
    target = tmp_path / "out" / "copy.tar.gz"
    target.parent.mkdir()
    assert await store.download("runs/r1/artifacts.tar.gz", target, max_bytes=21 * MiB) is True
    assert target.stat().st_size == 20 * MiB + 123
    assert target.read_bytes() == source.read_bytes()
    assert os.listdir(target.parent) == ["copy.tar.gz"]  # no partial file left beside it


async def test_download_of_an_absent_key_is_false_and_creates_no_file(
    store: ArtifactStore, tmp_path: Path
) -> None:
    assert await store.download("nope", tmp_path / "x", max_bytes=10) is False
    assert os.listdir(tmp_path) == ["store"]


async def test_a_download_into_a_missing_directory_says_the_local_side_failed(
    store: ArtifactStore, tmp_path: Path
) -> None:
    await store.put_bytes("k", b"x")
    with pytest.raises(StoreError) as failed:
        await store.download("k", tmp_path / "no" / "such" / "dir", max_bytes=1)
    assert failed.value.reason == "LocalIO"
    assert str(failed.value).endswith("download 'k': local file: ENOENT")


async def test_download_over_the_limit_leaves_neither_the_file_nor_a_partial_one(
    store: ArtifactStore, tmp_path: Path
) -> None:
    await store.put_bytes("k", b"x" * 2048)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(StoreError) as refused:
        await store.download("k", out / "k", max_bytes=2047)
    assert refused.value.reason == "TooLarge"
    assert os.listdir(out) == []


async def test_a_reader_never_sees_a_partial_object_while_a_big_put_replaces_it(
    store: ArtifactStore, tmp_path: Path
) -> None:
    size = 24 * MiB
    await store.put_file("obj", write(tmp_path / "a", size, b"a"))
    replacement = write(tmp_path / "b", size, b"b")
    seen: set[bytes] = set()

    async def read_until(done: asyncio.Task[None]) -> None:
        while not done.done():
            data = await store.get_bytes("obj", max_bytes=size)
            assert data is not None
            assert len(data) == size
            assert data.count(data[:1]) == size  # one version, whole: never a mix
            seen.add(data[:1])

    put = asyncio.ensure_future(store.put_file("obj", replacement))
    await read_until(put)
    await put
    assert seen <= {b"a", b"b"}
    assert await store.get_bytes("obj", max_bytes=size) == b"b" * size


async def test_a_put_that_times_out_leaves_no_object_and_no_staging_file(root: Path, tmp_path: Path) -> None:
    store = open_store(str(root), transfer_timeout=0.05)
    source = write(tmp_path / "huge", 96 * MiB)
    with pytest.raises(StoreError) as failed:
        await store.put_file("runs/r1/huge", source)
    assert failed.value.reason == "Timeout"
    assert "timed out after 0.05s" in str(failed.value)
    await asyncio.sleep(0.5)  # a cancelled upload must not finish later either
    assert await store.get_bytes("runs/r1/huge", max_bytes=1) is None
    assert await store.list("") == []
    assert files_under(root) == []


async def test_a_put_of_a_missing_source_file_fails_and_stores_nothing(
    store: ArtifactStore, root: Path, tmp_path: Path
) -> None:
    with pytest.raises(StoreError) as failed:
        await store.put_file("k", tmp_path / "does-not-exist")
    assert failed.value.reason == "LocalIO"
    assert str(failed.value).endswith("put 'k': local file: ENOENT")
    assert files_under(root) == []


async def test_list_returns_every_page_by_whole_segments_with_sizes(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "LIST_PAGE", 3)
    for i in range(10):
        await store.put_bytes(f"runs/a/f{i}", b"x" * i)
    await store.put_bytes("runs/ab/other", b"y")
    listed = await store.list("runs/a")
    assert sorted(listed, key=lambda o: o.key) == [
        StoredObject(key=f"runs/a/f{i}", size=i) for i in range(10)
    ]
    assert await store.list("runs/a/") == listed
    assert len(await store.list("")) == 11
    assert await store.list("runs/none") == []


async def test_list_refuses_to_hold_more_than_its_bound(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "MAX_LISTED", 5)
    monkeypatch.setattr(store_module, "LIST_PAGE", 2)
    for i in range(7):
        await store.put_bytes(f"p/{i}", b"")
    with pytest.raises(StoreError) as refused:
        await store.list("p")
    assert refused.value.reason == "TooMany"


async def test_delete_prefix_deletes_every_page_under_the_prefix_only(
    store: ArtifactStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "LIST_PAGE", 4)
    for i in range(25):
        await store.put_bytes(f"runs/r1/t{i % 3}/f{i}", b"1")
    await store.put_bytes("runs/r10/keep", b"1")
    assert await store.delete_prefix("runs/r1") == 25
    assert await store.list("") == [StoredObject(key="runs/r10/keep", size=1)]
    assert files_under(root) == ["runs/r10/keep"]
    assert not (root / "runs" / "r1").exists()  # empty directories go with their objects
    assert await store.delete_prefix("runs/r1") == 0


async def test_delete_prefix_refuses_to_empty_the_whole_store(store: ArtifactStore) -> None:
    await store.put_bytes("k", b"1")
    for prefix in ("", "/"):
        with pytest.raises(StoreError) as refused:
            await store.delete_prefix(prefix)
        assert refused.value.reason == "InvalidKey"
    assert await store.get_bytes("k", max_bytes=1) == b"1"


@pytest.mark.parametrize("key", ["../outside", "/etc/passwd", "a//b", "a/./b", "x#1"])
async def test_every_operation_refuses_an_invalid_key_before_touching_storage(
    store: ArtifactStore, root: Path, tmp_path: Path, key: str
) -> None:
    source = write(tmp_path / "f", 1)
    calls = [
        store.put_file(key, source),
        store.put_bytes(key, b"x"),
        store.put_bytes_if_absent(key, b"x"),
        store.get_bytes(key, max_bytes=1),
        store.download(key, tmp_path / "d", max_bytes=1),
    ]
    for call in calls:
        with pytest.raises(StoreError) as refused:
            await call
        assert refused.value.reason == "InvalidKey"
    assert files_under(root) == []
    assert not (tmp_path / "outside").exists()


async def test_a_storage_failure_names_the_store_and_key_but_not_the_librarys_text(
    store: ArtifactStore, root: Path
) -> None:
    await store.put_bytes("file", b"x")
    with pytest.raises(StoreError) as failed:
        await store.put_bytes("file/under/a/file", b"x")  # a directory where a file is
    message = str(failed.value)
    assert message.startswith(f"artifact store file:{root}: put 'file/under/a/file': ")
    assert "Debug source" not in message
    assert "os error" not in message
    assert failed.value.__cause__ is None


async def test_an_unreachable_s3_server_fails_in_time_without_quoting_credentials_or_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA-TEST-ID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-test-key")
    store = open_store("s3://bucket/p?endpoint=http://127.0.0.1:9&region=us-east-1", timeout=3)
    with pytest.raises(StoreError) as failed:
        await store.get_bytes("k", max_bytes=1)
    message = str(failed.value)
    assert failed.value.reason == "Unavailable"
    assert message == "artifact store s3://bucket/p: get 'k': cannot connect to the endpoint"
    assert "very-secret" not in message
    assert "AKIA" not in message
    assert "127.0.0.1" not in message


def test_a_process_exiting_right_after_store_calls_exits_cleanly(tmp_path: Path) -> None:
    """obstore's tokio threads racing interpreter finalization used to abort ~1 exit in 3 (SIGABRT)."""
    script = (
        "import asyncio, sys\n"
        "from helm_e2e.artifacts.store import open_store\n"
        "async def main():\n"
        "    s = open_store(sys.argv[1])\n"
        "    await s.put_bytes('a', b'1')\n"
        "    await s.put_bytes('a', b'2')\n"
        "asyncio.run(main())\n"
    )
    codes = [
        subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / f"s{i}")], check=False, timeout=60
        ).returncode
        for i in range(8)
    ]
    assert codes == [0] * 8


async def test_delete_removes_one_object_and_an_absent_key_is_fine(store: ArtifactStore, root: Path) -> None:
    await store.put_bytes("runs/r1/a", b"1")
    await store.put_bytes("runs/r1/b", b"2")
    await store.delete("runs/r1/a")
    await store.delete("runs/r1/a")
    assert files_under(root) == ["runs/r1/b"]


async def test_the_probe_leaves_nothing_behind_in_a_usable_store(store: ArtifactStore, root: Path) -> None:
    await store.probe()
    assert files_under(root) == []


@pytest.mark.parametrize(
    ("error", "reason", "what"),
    [
        (TimeoutError(), "Timeout", "timed out"),
        (FileNotFoundError(2, "No such file: /secret/path"), "NotFound", "not found"),
        (obstore_errors.AlreadyExistsError("exists at http://minio/b/k"), "AlreadyExists", "already exists"),
        (
            obstore_errors.PreconditionError("If-None-Match http://minio"),
            "AlreadyExists",
            "precondition failed",
        ),
        (
            obstore_errors.PermissionDeniedError("body <Error>AKIA</Error>"),
            "PermissionDenied",
            "permission denied",
        ),
        (obstore_errors.UnauthenticatedError("body"), "Unauthenticated", "the store refused the credentials"),
        (obstore_errors.NotSupportedError("x"), "NotSupported", "not supported by this store"),
        (obstore_errors.InvalidPathError("x"), "InvalidKey", "invalid path"),
        (OSError(28, "No space left on /secret"), "Unavailable", "local I/O error ENOSPC"),
        (
            obstore_errors.GenericError("Client error with status 401 Unauthorized: <body>AKIA</body>"),
            "Unauthenticated",
            "the store refused the credentials (HTTP 401)",
        ),
        (
            obstore_errors.GenericError("Server returned non-2xx status code: 503 Service Unavailable: body"),
            "Unavailable",
            "HTTP 503 (GenericError)",
        ),
        (
            obstore_errors.GenericError(
                "error sending request for url (http://10.0.0.1:9000/b): tcp connect error"
            ),
            "Unavailable",
            "cannot connect to the endpoint",
        ),
        (
            obstore_errors.GenericError("anything http://user@minio/with?X-Amz-Signature=abc"),
            "Unavailable",
            "GenericError",
        ),
    ],
)
def test_a_failure_is_described_by_its_type_status_or_errno_never_by_its_text(
    error: BaseException, reason: str, what: str
) -> None:
    assert store_module._reason(error) == (reason, what)
