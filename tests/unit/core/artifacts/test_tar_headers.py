"""Tar headers are checked before tarfile reads them: hostile headers are refused from their 512-byte header
block, legitimate bundles (PAX and GNU long names, directories) pass however the stream is cut."""

from __future__ import annotations

import io
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helm_e2e.core.artifacts import tar_headers
from helm_e2e.core.artifacts.tar_headers import HeaderScan


def header(name: str, *, kind: bytes = tarfile.REGTYPE, size: int = 0) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size
    return info.tobuf(tarfile.USTAR_FORMAT)


def with_size_field(block: bytes, field: bytes) -> bytes:
    """The header block with its 12-byte size field replaced and its checksum made right again."""
    raw = bytearray(block)
    raw[124:136] = field
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\x00 " % sum(raw)
    return bytes(raw)


def tar(members: dict[str, bytes], *, fmt: int = tarfile.PAX_FORMAT, dirs: int = 0) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as t:
        for i in range(dirs):
            info = tarfile.TarInfo(f"d{i}")
            info.type = tarfile.DIRTYPE
            t.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


def scan(data: bytes, *, entries: int = 100, extended: int = 100_000) -> str:
    return HeaderScan(max_entries=entries, max_extended_total=extended).feed(data)


LONG = "reports/" + "n" * 200 + "/junit.xml"  # over ustar's 100 bytes: PAX or a GNU long name
LEGIT = {
    "pax": tar({LONG: b"<x/>", "ünïcode.txt": b"u", "a.txt": b"x" * 1000}),
    "gnu": tar({LONG: b"<x/>", "a.txt": b"x" * 1000}, fmt=tarfile.GNU_FORMAT),
    "ustar with directories": tar({"a/b.txt": b"b"}, fmt=tarfile.USTAR_FORMAT, dirs=3),
}


@pytest.mark.parametrize("kind", sorted(LEGIT))
def test_legitimate_bundles_pass_to_their_end(kind: str) -> None:
    walk = HeaderScan(max_entries=100, max_extended_total=100_000)
    assert walk.feed(LEGIT[kind]) == ""
    assert walk.done


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(sorted(LEGIT)), cuts=st.lists(st.integers(1, 1500), max_size=40))
def test_the_walk_does_not_depend_on_how_the_stream_is_cut(kind: str, cuts: list[int]) -> None:
    data, walk, pos = LEGIT[kind], HeaderScan(max_entries=100, max_extended_total=100_000), 0
    for step in [*cuts, len(LEGIT[kind])]:
        assert walk.feed(data[pos : pos + step]) == ""
        pos += step
    assert walk.done


HUGE = 50 * 2**20
HOSTILE = {
    "a huge PAX header": (header("p", kind=tarfile.XHDTYPE, size=HUGE), "larger than 8192 bytes"),
    "a huge global PAX header": (header("g", kind=tarfile.XGLTYPE, size=HUGE), "larger than 8192 bytes"),
    "a huge GNU long name": (header("L", kind=tarfile.GNUTYPE_LONGNAME, size=HUGE), "larger than 8192"),
    "a huge GNU long link": (header("K", kind=tarfile.GNUTYPE_LONGLINK, size=HUGE), "larger than 8192"),
    "a chain of empty PAX headers": (
        header("p", kind=tarfile.XHDTYPE) * 300,
        "more than 4 extended headers",
    ),
    "long names adding up in one chain": (
        (header("L", kind=tarfile.GNUTYPE_LONGNAME, size=5000) + b"n" * 5120) * 2,
        "larger than 8192 bytes",
    ),
    "a GNU sparse file": (header("s", kind=tarfile.GNUTYPE_SPARSE, size=10), "sparse file"),
    "a negative size": (
        with_size_field(header("a"), b"\xff" * 12),
        "negative size",
    ),
    "a corrupt header": (b"\x01" * 512, "corrupt header block"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_headers_are_refused_from_their_header_block(case: str) -> None:
    data, why = HOSTILE[case]
    assert why in scan(data)


@pytest.mark.parametrize(
    "pax",
    [
        {"size": "5"},  # moves where tarfile finds the next header
        {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"},  # then a sparse map of any length
        {"GNU.sparse.map": "0,1"},
    ],
)
def test_pax_keywords_that_move_offsets_or_read_sparse_maps_are_refused(pax: dict[str, str]) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo("a.txt")
        info.size, info.pax_headers = 5, pax
        t.addfile(info, io.BytesIO(b"hello"))
    assert "sets a size or a sparse map" in scan(out.getvalue())


def test_a_file_name_that_merely_mentions_size_passes() -> None:
    assert scan(tar({"sizes/" + "x" * 120 + "_size=3.txt": b"3"})) == ""


def test_entries_and_extended_bytes_are_counted_over_the_whole_bundle() -> None:
    assert "more than 10 entries" in scan(tar({}, dirs=11), entries=10)
    assert scan(tar({}, dirs=10), entries=10) == ""
    names = {f"{i:03d}-" + "n" * 150: b"" for i in range(20)}  # each needs a PAX record of ~170 bytes
    assert "tar headers (PAX or GNU long names) exceed 2000 bytes" in scan(tar(names), extended=2000)
    assert scan(tar(names), extended=20_000) == ""


def test_nothing_after_the_end_of_the_archive_is_read_as_a_header() -> None:
    walk = HeaderScan(max_entries=10, max_extended_total=1000)
    assert walk.feed(tar({"a": b"a"}) + header("p", kind=tarfile.XHDTYPE, size=HUGE)) == ""
    assert walk.done


def test_an_upload_scan_allows_directories_beside_its_files() -> None:
    walk = tar_headers.scan_for(1000)
    assert (walk.max_entries, walk.max_extended_total) == (2000, 1024 * 2002)
