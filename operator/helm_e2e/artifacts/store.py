"""The artifact store: a local directory (a volume) or any S3-compatible object store, through obstore.

obstore is the Python binding of the Rust `object_store` crate (Apache Arrow's): async, streaming, S3 SigV4
signing, multipart uploads and retries are its own. One URL setting picks the backend
(artifacts/store_url.py).

Guarantees, for both backends:
- a reader sees a whole object or none: `put_*` are atomic (local: written to a staging file, then renamed;
  S3: one PUT, or a multipart upload that becomes visible only when completed); a failed or timed-out
  `put_file` leaves no object (an aborted S3 multipart upload may leave invisible parts: give the bucket an
  AbortIncompleteMultipartUpload lifecycle rule);
- memory is bounded: files stream in PART_SIZE parts (at most PART_CONCURRENCY in flight), downloads stream
  to disk, and only `get_bytes` holds an object in memory, after checking its size against `max_bytes`;
- every call has a deadline (`timeout`, or `transfer_timeout` for whole files and prefix deletes);
- errors are StoreError: the message names the store's description and the key, never obstore's own text
  (it can quote the endpoint URL or the server's response body) and never an object's contents.
"""

from __future__ import annotations

import asyncio
import atexit
import errno
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

import obstore
from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    InvalidPathError,
    NotSupportedError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)
from obstore.store import LocalStore, S3Store

from helm_e2e.artifacts.store_url import LocalLocation, S3Location, check_key, check_prefix, parse_store_url
from helm_e2e.errors import StoreError

if TYPE_CHECKING:
    from obstore.store import ClientConfig, ObjectStore, RetryConfig, S3Config

PART_SIZE = 8 * 1024 * 1024  # multipart part size (S3's minimum is 5 MiB) and download chunk size
PART_CONCURRENCY = 4  # parts in flight per upload: at most ~32 MiB buffered
LIST_PAGE = 1000  # S3's own page size for ListObjectsV2 and DeleteObjects
MAX_LISTED = 100_000  # list() refuses to hold more keys than this in memory
T = TypeVar("T")
# only these are read from obstore's error text (which is never passed on): a status code, a connect failure
_BY_STATUS = {
    "401": ("Unauthenticated", "the store refused the credentials (HTTP 401)"),
    "403": ("PermissionDenied", "permission denied (HTTP 403)"),
    "404": ("NotFound", "not found (HTTP 404: a missing bucket?)"),
    "501": ("NotSupported", "not supported by this store (HTTP 501)"),
}
_CONNECT_FAILURES = ("error trying to connect", "Connection refused", "dns error", "tcp connect error")
_HTTP_STATUS = re.compile(r"\b(?:status(?: code)?|HTTP)[: ]+([1-5]\d\d)\b", re.IGNORECASE)


@dataclass(frozen=True)
class StoredObject:
    key: str  # relative to the store's own prefix
    size: int


def _reason(error: BaseException) -> tuple[str, str]:
    """(reason, what) for a failure, from the exception's type only (plus an HTTP status or errno name)."""
    if isinstance(error, TimeoutError):
        return "Timeout", "timed out"
    if isinstance(error, FileNotFoundError):
        return "NotFound", "not found"
    if isinstance(error, AlreadyExistsError):
        return "AlreadyExists", "already exists"
    if isinstance(error, PreconditionError):
        return "AlreadyExists", "precondition failed"
    if isinstance(error, PermissionDeniedError | PermissionError):
        return "PermissionDenied", "permission denied"
    if isinstance(error, UnauthenticatedError):
        return "Unauthenticated", "the store refused the credentials"
    if isinstance(error, NotSupportedError):
        return "NotSupported", "not supported by this store"
    if isinstance(error, InvalidPathError | ValueError):
        return "InvalidKey", "invalid path"
    if isinstance(error, OSError) and error.errno is not None:
        return "Unavailable", f"local I/O error {errno.errorcode.get(error.errno, error.errno)}"
    text = str(error) if isinstance(error, BaseError) else ""
    status = _HTTP_STATUS.search(text)
    if status and status.group(1) in _BY_STATUS:
        return _BY_STATUS[status.group(1)]
    if status:
        return "Unavailable", f"HTTP {status.group(1)} ({type(error).__name__})"
    if any(sign in text for sign in _CONNECT_FAILURES):
        return "Unavailable", "cannot connect to the endpoint"
    return "Unavailable", type(error).__name__


_last_call_ended = 0.0


def _settle_before_exit() -> None:
    """Give obstore's tokio threads a moment to leave Python before the interpreter finalizes.

    A tokio worker that resolved an asyncio future may still be re-taking the GIL inside
    `call_soon_threadsafe` when the main thread starts finalizing; CPython 3.11-3.13 then exits that thread
    with pthread_exit, which aborts the process (SIGABRT) through Rust frames
    (PyO3/pyo3-async-runtimes#40). A short sleep here, while Python is still whole, lets it finish.
    """
    if time.monotonic() - _last_call_ended < 1.0:
        time.sleep(0.05)


atexit.register(_settle_before_exit)


class ArtifactStore:
    """Objects under '/'-separated relative keys (artifacts/store_url.py: check_key) in one store."""

    def __init__(
        self, store: ObjectStore, *, description: str, timeout: float = 30.0, transfer_timeout: float = 600.0
    ) -> None:
        self._store = store
        self.description = description  # no credentials, no query: fit for logs, status and e-mails
        self.timeout = timeout
        self.transfer_timeout = transfer_timeout

    def __repr__(self) -> str:
        return f"ArtifactStore({self.description})"

    @asynccontextmanager
    async def _call(self, op: str, key: str, *, seconds: float) -> AsyncIterator[None]:
        global _last_call_ended  # one process-wide timestamp for the exit guard
        try:
            async with asyncio.timeout(seconds):
                yield
        except StoreError:
            raise
        except (BaseError, OSError, ValueError, TimeoutError) as e:
            reason, what = _reason(e)
            if reason == "Timeout":
                what = f"timed out after {seconds:g}s"
            # `from None`: obstore's text (endpoint URL, response body) must not reach logs via __cause__
            raise StoreError(
                f"artifact store {self.description}: {op} {key!r}: {what}", reason=reason
            ) from None
        finally:
            _last_call_ended = time.monotonic()

    def _too_large(self, op: str, key: str, size: int, max_bytes: int) -> StoreError:
        return StoreError(
            f"artifact store {self.description}: {op} {key!r}: {size} bytes is over the limit of {max_bytes}",
            reason="TooLarge",
        )

    async def put_file(self, key: str, path: Path) -> None:
        """Upload a local file, streamed in parts; readers see the whole object or nothing."""
        check_key(key)
        async with self._call("put", key, seconds=self.transfer_timeout):
            size = (await self._local("put", key, path.stat)).st_size
            await obstore.put_async(
                self._store,
                key,
                path,
                use_multipart=size > PART_SIZE,
                chunk_size=PART_SIZE,
                max_concurrency=PART_CONCURRENCY,
            )

    async def put_bytes(self, key: str, data: bytes) -> None:
        check_key(key)
        async with self._call("put", key, seconds=self.timeout):
            await obstore.put_async(self._store, key, data, use_multipart=False)

    async def put_bytes_if_absent(self, key: str, data: bytes) -> bool:
        """Create-only put: False if the key already exists.

        Atomic on both backends: local stores link the staged file without replacing; S3 sends
        `If-None-Match: *` (honoured by AWS since 2024 and by versitygw, proven in tests/integration). A
        server that does not implement conditional writes answers 501 and this raises
        StoreError(reason=NotSupported): deliberately no check-then-put fallback, which two writers could
        both pass. (A server that ignored the header would overwrite: use one that honours it.)
        """
        check_key(key)
        async with self._call("create", key, seconds=self.timeout):
            try:
                await obstore.put_async(self._store, key, data, mode="create", use_multipart=False)
            except (AlreadyExistsError, PreconditionError):
                return False
        return True

    async def get_bytes(self, key: str, *, max_bytes: int) -> bytes | None:
        """The whole object, or None if absent; StoreError(reason=TooLarge) if over `max_bytes` (checked
        from the object's size before reading, and again while reading)."""
        check_key(key)
        async with self._call("get", key, seconds=self.timeout):
            try:
                result = await obstore.get_async(self._store, key)
            except FileNotFoundError:
                return None
            if result.meta["size"] > max_bytes:
                raise self._too_large("get", key, result.meta["size"], max_bytes)
            data = bytearray()
            async for chunk in result.stream(min_chunk_size=min(PART_SIZE, max(max_bytes, 1))):
                data += chunk
                if len(data) > max_bytes:
                    raise self._too_large("get", key, len(data), max_bytes)
            return bytes(data)

    async def download(self, key: str, path: Path, *, max_bytes: int) -> bool:
        """Stream the object to `path` (written beside it, then renamed); False if absent."""
        check_key(key)
        partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            async with self._call("download", key, seconds=self.transfer_timeout):
                try:
                    result = await obstore.get_async(self._store, key)
                except FileNotFoundError:
                    return False
                if result.meta["size"] > max_bytes:
                    raise self._too_large("download", key, result.meta["size"], max_bytes)
                out = await self._local("download", key, lambda: partial.open("xb"))
                try:
                    await self._copy(
                        result.stream(min_chunk_size=PART_SIZE), out, key=key, max_bytes=max_bytes
                    )
                finally:
                    await self._local("download", key, out.close)
                await self._local("download", key, os.replace, partial, path)
                return True
        finally:
            with suppress(FileNotFoundError):
                partial.unlink()

    async def _copy(self, chunks: obstore.BytesStream, out: IO[bytes], *, key: str, max_bytes: int) -> None:
        written = 0
        async for chunk in chunks:
            written += len(chunk)
            if written > max_bytes:
                raise self._too_large("download", key, written, max_bytes)
            await self._local("download", key, out.write, chunk)

    async def _local(self, op: str, key: str, call: Callable[..., T], *args: object) -> T:
        """A local-file step off the event loop; its OSError is the local side's, not the store's."""
        try:
            return await asyncio.to_thread(call, *args)
        except OSError as e:
            what = errno.errorcode.get(e.errno, str(e.errno)) if e.errno is not None else type(e).__name__
            raise StoreError(
                f"artifact store {self.description}: {op} {key!r}: local file: {what}", reason="LocalIO"
            ) from None

    async def list(self, prefix: str) -> list[StoredObject]:
        """Every object under `prefix` (whole segments: 'runs/a' lists 'runs/a/...', not 'runs/ab'),
        all pages; '' lists the whole store. StoreError(reason=TooMany) beyond MAX_LISTED objects."""
        prefix = check_prefix(prefix, allow_empty=True)
        found: list[StoredObject] = []
        async with self._call("list", prefix, seconds=self.transfer_timeout):
            async for page in obstore.list(self._store, prefix or None, chunk_size=LIST_PAGE):
                found.extend(StoredObject(key=meta["path"], size=meta["size"]) for meta in page)
                if len(found) > MAX_LISTED:
                    raise StoreError(
                        f"artifact store {self.description}: list {prefix!r}: more than {MAX_LISTED} objects",
                        reason="TooMany",
                    )
        return found

    async def delete(self, key: str) -> None:
        """Delete one object; an absent key is fine (idempotent)."""
        check_key(key)
        async with self._call("delete", key, seconds=self.timeout):
            with suppress(FileNotFoundError):
                await obstore.delete_async(self._store, key)

    async def probe(self) -> None:
        """Write, read back and delete a small object under `_probe/`: StoreError if the store is not
        usable (wrong endpoint, bucket, credentials, a read-only volume). For startup and readiness."""
        key = f"_probe/{secrets.token_hex(8)}"
        await self.put_bytes(key, b"helm-e2e")
        try:
            if await self.get_bytes(key, max_bytes=16) != b"helm-e2e":
                raise StoreError(
                    f"artifact store {self.description}: probe read back other data", reason="Unavailable"
                )
        finally:
            await self.delete(key)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix` (never '': the whole store is not deletable this way), page
        by page (bulk DeleteObjects on S3); returns how many were deleted."""
        prefix = check_prefix(prefix, allow_empty=False)
        deleted = 0
        async with self._call("delete", prefix, seconds=self.transfer_timeout):
            async for page in obstore.list(self._store, prefix, chunk_size=LIST_PAGE):
                deleted += await self._delete_page([meta["path"] for meta in page])
        return deleted

    async def _delete_page(self, keys: Sequence[str]) -> int:
        try:
            await obstore.delete_async(self._store, keys)
            return len(keys)
        except FileNotFoundError:  # local: one of them went away meanwhile; delete the rest one by one
            count = 0
            for key in keys:
                with suppress(FileNotFoundError):
                    await obstore.delete_async(self._store, key)
                    count += 1
            return count


def _s3_store(location: S3Location, *, timeout: float, transfer_timeout: float) -> S3Store:
    config: S3Config = {}
    # the HTTP client's own limit covers a whole request and its body (a download streams in one GET):
    # the per-call deadlines of ArtifactStore are the real limits; this one only stops a runaway request
    client: ClientConfig = {
        "connect_timeout": timedelta(seconds=min(timeout, 10)),
        "timeout": timedelta(seconds=transfer_timeout),
    }
    if location.endpoint:
        config["endpoint"] = location.endpoint
        config["virtual_hosted_style_request"] = False  # path-style: http://host:port/bucket/key
        client["allow_http"] = location.endpoint.startswith("http://")
    if location.region:
        config["region"] = location.region
    retry: RetryConfig = {"max_retries": 3, "retry_timeout": timedelta(seconds=timeout)}
    # credentials: obstore reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (or web
    # identity) from the environment; nothing is taken from the URL
    return S3Store(
        location.bucket,
        prefix=location.prefix or None,
        config=config,
        client_options=client,
        retry_config=retry,
    )


def open_store(url: str, *, timeout: float = 30.0, transfer_timeout: float = 600.0) -> ArtifactStore:
    """The store `url` names (file:///path, /path or s3://bucket/prefix?endpoint=...&region=...).

    A local directory is created if missing. Nothing is contacted here: a wrong S3 endpoint or credential
    shows on the first call. StoreError(reason=InvalidUrl) for a URL that is not accepted.
    """
    location = parse_store_url(url)
    store: ObjectStore
    if isinstance(location, LocalLocation):
        try:
            Path(location.path).mkdir(parents=True, exist_ok=True)
            store = LocalStore(location.path, automatic_cleanup=True)
        except (OSError, BaseError, ValueError) as e:
            raise StoreError(
                f"artifact store {location.description}: cannot use the directory: {_reason(e)[1]}",
                reason="Unavailable",
            ) from None
    else:
        try:
            store = _s3_store(location, timeout=timeout, transfer_timeout=transfer_timeout)
        except (BaseError, ValueError) as e:
            raise StoreError(
                f"artifact store {location.description}: cannot configure the S3 client: {_reason(e)[1]}",
                reason="InvalidUrl",
            ) from None
    return ArtifactStore(
        store, description=location.description, timeout=timeout, transfer_timeout=transfer_timeout
    )
