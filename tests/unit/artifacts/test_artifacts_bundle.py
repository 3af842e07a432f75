"""artifacts/bundle.py: what a bundle holds is listed with sizes and digests; a hostile bundle is refused
with a reason, at no cost in memory."""

from __future__ import annotations

import gzip
import io
import tarfile
import tracemalloc
from pathlib import Path

import pytest
from artifact_service import bundle_at, fail_lines
from tarballs import tar_gz

from helm_e2e.artifacts.bundle import BundleRefused, inspect_bundle
from helm_e2e.core.model.run_status import PytestFailure


# --- bundles ---
def test_a_bundle_lists_its_files_with_sizes_and_digests(tmp_path: Path) -> None:
    path = bundle_at(tmp_path, tar_gz({"junit.xml": b"FAIL:t.py::a ok", "screens/a.png": b"\x89PNG"}))
    report = inspect_bundle(path, max_bytes=1000, max_files=10, parse_failures=fail_lines)
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
        inspect_bundle(bundle_at(tmp_path, data), max_bytes=1000, max_files=10)


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
        inspect_bundle(bundle_at(tmp_path, out.getvalue()), max_bytes=100_000, max_files=10)


def test_long_names_in_pax_and_gnu_bundles_are_kept(tmp_path: Path) -> None:
    name = "reports/" + "n" * 150 + "/junit.xml"
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w:gz", format=fmt) as tar:
            info = tarfile.TarInfo(name)
            info.size = 8
            tar.addfile(info, io.BytesIO(b"FAIL:t.x"))
        report = inspect_bundle(
            bundle_at(tmp_path, out.getvalue()), max_bytes=1000, max_files=10, parse_failures=fail_lines
        )
        assert [f.name for f in report.files] == [name]
        assert report.failures == [PytestFailure(id="FAIL:t.x")]
