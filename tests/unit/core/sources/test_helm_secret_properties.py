"""Property tests: whatever bytes or JSON a release secret holds, only ReleaseDecodeError escapes."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import tracemalloc
from typing import Any

from helm_encoding import encode_blob, helm_release_doc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helm_e2e.core.sources.helm_secret import decode_release_blob, decode_release_secret
from helm_e2e.errors import ReleaseDecodeError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decodes_or_raises_cleanly(secret: dict[str, Any]) -> None:
    with contextlib.suppress(ReleaseDecodeError):
        decode_release_secret(secret)


@SETTINGS
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_escape_as_another_error(blob: bytes) -> None:
    for payload in (blob, base64.b64encode(blob), base64.b64encode(gzip.compress(blob))):
        with contextlib.suppress(ReleaseDecodeError):
            decode_release_blob(payload, namespace="shop")


@SETTINGS
@given(json_values)
def test_arbitrary_json_never_escapes_as_another_error(doc: Any) -> None:
    _decodes_or_raises_cleanly(
        {
            "type": "helm.sh/release.v1",
            "metadata": {"name": "s"},
            "data": {"release": base64.b64encode(encode_blob(doc)).decode()},
        }
    )


@SETTINGS
@given(st.sampled_from(["name", "version", "info", "chart", "config", "hooks", "namespace"]), json_values)
def test_any_field_replaced_by_anything_never_escapes(field: str, value: Any) -> None:
    doc = helm_release_doc()
    doc[field] = value
    _decodes_or_raises_cleanly(
        {
            "type": "helm.sh/release.v1",
            "metadata": {"name": "s"},
            "data": {"release": base64.b64encode(encode_blob(doc)).decode()},
        }
    )


@SETTINGS
@given(st.integers(min_value=0, max_value=400), st.integers(min_value=0, max_value=255))
def test_flipping_any_byte_of_a_valid_blob_never_escapes(position: int, byte: int) -> None:
    blob = bytearray(base64.b64decode(encode_blob(helm_release_doc())))
    blob[position % len(blob)] = byte
    with contextlib.suppress(ReleaseDecodeError):
        decode_release_blob(base64.b64encode(bytes(blob)), namespace="shop")


def test_gzip_bomb_keeps_peak_memory_near_the_limit() -> None:
    limit = 4 * 2**20
    compressor = gzip.compress(b"\0" * (256 * 2**20), compresslevel=9)  # 256 MiB → ~250 KiB
    payload = base64.b64encode(compressor)
    tracemalloc.start()
    try:
        decode_release_blob(payload, namespace="shop", max_decompressed_bytes=limit)
        raise AssertionError("the bomb decoded")
    except ReleaseDecodeError:
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 3 * limit + 4 * len(payload), f"peak {peak} bytes"


def test_huge_values_within_limits_still_decode() -> None:
    doc = helm_release_doc()
    doc["config"] = {"blob": "x" * (3 * 2**20)}
    raw = json.dumps(doc).encode()
    release = decode_release_blob(base64.b64encode(gzip.compress(raw)), namespace="shop")
    assert len(release.values["blob"]) == 3 * 2**20
