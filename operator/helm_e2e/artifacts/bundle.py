"""Read an uploaded artifact bundle (tar or tar.gz) once, streaming, bounded: what it holds, or why not.

Blocking: run it in a thread. Nothing is extracted to disk; only regular files and directories are
accepted, every name must be a plain relative path, and the bytes read are bounded by the quota before a
member's data is read, so a gzip bomb or a forged size costs at most the quota. Every header is checked
(core.tar_headers) before tarfile reads it, so a huge PAX header or GNU long name costs nothing either.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import posixpath
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

from helm_e2e.core.artifacts import rules, tar_headers
from helm_e2e.core.model.run_status import ArtifactFile, PytestFailure

JUNIT_MAX_BYTES = 8 * 2**20  # a junit.xml larger than this is kept as a file, not parsed
MAX_FAILURES = 50  # failing tests kept per test (the junit files after that are not parsed)
CHUNK = 1 << 20
TAR_ERRORS = (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile)  # what a broken bundle raises
FailureParser = Callable[[bytes], list[PytestFailure]]


class BundleRefused(Exception):
    """Why an upload cannot be stored; the message is shown in the test's status (never a file's bytes)."""


@dataclass
class BundleReport:
    files: list[ArtifactFile] = field(default_factory=list)
    failures: list[PytestFailure] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


class _Bounded(io.RawIOBase):
    """A reader that fails once more than `limit` bytes came through it (decompressed bytes), or once its
    header scan refuses what came through (before tarfile sees it)."""

    def __init__(self, inner: BinaryIO, limit: int, scan: tar_headers.HeaderScan) -> None:
        self.inner, self.left, self.scan = inner, limit, scan

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(min(len(buffer), self.left + 1))
        self.left -= len(data)
        if self.left < 0:
            raise BundleRefused("the bundle inflates beyond the test's quota")
        if why := self.scan.feed(data):
            raise BundleRefused(why)
        buffer[: len(data)] = data
        return len(data)


def _open(raw: BinaryIO, limit: int, scan: tar_headers.HeaderScan) -> BinaryIO:
    head = raw.read(2)
    raw.seek(0)
    inner = cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb")) if head == b"\x1f\x8b" else raw
    return io.BufferedReader(_Bounded(inner, limit, scan))


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    try:
        yield from tar
    except TAR_ERRORS as e:
        raise BundleRefused(f"the bundle is not a valid tar or tar.gz ({type(e).__name__})") from None


def inspect_bundle(
    path: Path, *, max_bytes: int, max_files: int, parse_failures: FailureParser | None = None
) -> BundleReport:
    """Every regular file of the bundle with its size and sha256; junit*.xml files' failing tests."""
    report, seen = BundleReport(), set[str]()
    with path.open("rb") as raw:
        stream = _open(raw, rules.inflated_bound(max_bytes, max_files), tar_headers.scan_for(max_files))
        with _open_tar(stream) as tar:
            for member in _members(tar):
                name = rules.normalize_member_name(member.name)
                if member.isdir() or name == "":
                    continue
                if not member.isfile():
                    raise BundleRefused("the bundle holds a link, device or other non-regular file")
                if why := rules.check_member_name(name):
                    raise BundleRefused(why)
                if name in seen:
                    raise BundleRefused("the bundle holds the same file twice")
                seen.add(name)
                if len(seen) > max_files:
                    raise BundleRefused(f"more than {max_files} files (the per-test limit)")
                if report.total_bytes + member.size > max_bytes:
                    raise BundleRefused(f"more than {max_bytes} bytes (the per-test quota)")
                parse = parse_failures if len(report.failures) < MAX_FAILURES else None
                digest, junit = _read_member(tar, member, keep=parse is not None and _is_junit(name))
                report.files.append(ArtifactFile(name=name, size=member.size, sha256=digest))
                if junit is not None and parse is not None:
                    report.failures += _failures(parse, junit)
    report.failures = report.failures[:MAX_FAILURES]
    return report


def _open_tar(stream: BinaryIO) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=stream, mode="r|")
    except TAR_ERRORS as e:
        raise BundleRefused(f"the bundle is not a valid tar or tar.gz ({type(e).__name__})") from None


def _is_junit(name: str) -> bool:
    base = posixpath.basename(name).lower()
    return base.startswith("junit") and base.endswith(".xml")


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, *, keep: bool) -> tuple[str, bytes | None]:
    handle = tar.extractfile(member)
    if handle is None:
        raise BundleRefused("the bundle holds a file without data")
    digest, kept = hashlib.sha256(), bytearray() if keep and member.size <= JUNIT_MAX_BYTES else None
    try:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            if kept is not None:
                kept += chunk
    except TAR_ERRORS as e:
        raise BundleRefused(f"the bundle is truncated or corrupt ({type(e).__name__})") from None
    return digest.hexdigest(), bytes(kept) if kept is not None else None


def _failures(parse: FailureParser, data: bytes) -> list[PytestFailure]:
    try:
        return parse(data)
    except ValueError:
        return []  # a junit.xml we cannot read is still an artifact; it just names no failing tests


def extract_files(path: Path, wanted: set[str], *, max_read: int, max_bytes: int) -> dict[str, bytes]:
    """The bytes of the named files of a stored bundle (for e-mail attachments and junit), at most
    `max_bytes` in all, reading at most `max_read` inflated bytes."""
    found: dict[str, bytes] = {}
    scan = tar_headers.HeaderScan(max_entries=max_read // tar_headers.BLOCK, max_extended_total=max_read)
    with path.open("rb") as raw, tarfile.open(fileobj=_open(raw, max_read, scan), mode="r|") as tar:
        for member in _members(tar):
            name = rules.normalize_member_name(member.name)
            room = max_bytes - sum(map(len, found.values()))
            if member.isfile() and name in wanted and member.size <= room:
                handle = tar.extractfile(member)
                found[name] = handle.read() if handle is not None else b""
    return found
