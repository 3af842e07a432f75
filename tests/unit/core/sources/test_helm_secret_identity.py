"""Release identity from the Secret itself, and decoding bounded in memory whatever the Secret holds."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helm_encoding import helm_release_doc, helm_secret

from helm_e2e.core.sources.helm_secret import check_secret_identity, decode_release_secret
from helm_e2e.errors import ReleaseDecodeError, ReleaseIdentityError


def secret_with(doc: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    secret = helm_secret(doc or helm_release_doc(revision=2))
    secret["metadata"] = {**secret["metadata"], **meta}
    return secret


def test_a_consistent_helm_secret_has_no_identity_problem() -> None:
    assert check_secret_identity(secret_with()) is None


@pytest.mark.parametrize(
    ("meta", "problem"),
    [
        ({"name": "web-values"}, "secret name is not sh.helm.release.v1.<release>.v<revision>"),
        ({"namespace": ""}, "secret has no metadata.namespace"),
        ({"labels": {"name": "other", "version": "2"}}, "label 'name' does not match"),
        ({"labels": {"name": "web", "version": "3"}}, "label 'version' does not match"),
        ({"labels": None}, "label 'name' does not match"),
    ],
)
def test_name_namespace_and_labels_must_agree(meta: dict[str, Any], problem: str) -> None:
    secret = secret_with(**meta)
    assert (check_secret_identity(secret) or "").startswith(problem)
    with pytest.raises(
        ReleaseIdentityError, match=r"release secret sh\.helm\.release\.v1\.web\.v2|release secret web-values"
    ):
        decode_release_secret(secret)


def test_the_namespace_comes_from_the_secret_not_the_json() -> None:
    doc = helm_release_doc(revision=2)
    del doc["namespace"]
    assert decode_release_secret(secret_with(doc, namespace="shop")).namespace == "shop"


def test_json_naming_another_namespace_is_an_identity_error() -> None:
    doc = helm_release_doc(revision=2, namespace="kube-system")
    with pytest.raises(ReleaseIdentityError, match="another namespace"):
        decode_release_secret(secret_with(doc))


@pytest.mark.parametrize("field", ["name", "version"])
def test_json_naming_another_release_or_revision_is_an_identity_error(field: str) -> None:
    doc = helm_release_doc(revision=2)
    secret = secret_with(doc)
    doc[field] = "admin" if field == "name" else 7
    secret["data"]["release"] = helm_secret(doc)["data"]["release"]
    with pytest.raises(ReleaseIdentityError, match="another release or revision") as info:
        decode_release_secret(secret)
    assert isinstance(info.value, ReleaseDecodeError)  # callers catching decode errors still catch it
    assert "admin" not in str(info.value)


# --- bounded decoding -----------------------------------------------------------------------------------

MEASURE = """
import json, resource, sys
from helm_e2e.core.sources.helm_secret import decode_release_secret
from helm_e2e.errors import ReleaseDecodeError
secret = json.loads(open(sys.argv[1]).read())
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    decode_release_secret(secret)
    outcome = "decoded"
except ReleaseDecodeError as e:
    outcome = "refused"
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(outcome, (after - before) // 1024)
"""
HEAD = b'{"name":"web","version":1,"info":{"status":"deployed"},"chart":{"metadata":{"name":"c"}},"config":{"p":['


def _bomb(body: bytes) -> dict[str, Any]:
    secret = helm_secret({"name": "web", "version": 1})
    blob = base64.b64encode(gzip.compress(HEAD + body + b"0]}}", 9))
    secret["data"]["release"] = base64.b64encode(blob).decode()
    return secret


BOMBS = {
    "31 MiB of {}": b"{}," * (11 * 2**20),  # the reported one: ~55 KB as a Secret, ~900 MiB parsed before
    "15 MiB of {}": b"{}," * (5 * 2**20),
    "15 MiB of small ints": b"1000," * (3 * 2**20),
    "15 MiB of short strings": b'"abcdefgh",' * (1400 * 2**10),
    "one 15 MiB string": b'"' + b"a" * (15 * 2**20) + b'",',
}


@pytest.mark.parametrize("name", BOMBS)
def test_decoding_a_hostile_secret_peaks_below_60_mib(name: str, tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    path.write_text(json.dumps(_bomb(BOMBS[name])))
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)], check=True, capture_output=True, text=True, timeout=120
    ).stdout.split()
    assert int(out[1]) < 60, f"{name}: {out[0]}, peak +{out[1]} MiB"
