"""artifacts/service.py: upload tokens (one test of one run, forgeries fail, the key survives a restart) and
receiving a bundle (stored whole or refused whole, within the test's and the run's quota)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from artifact_service import NOW, artifact_service, artifact_settings, bundle_at, upload_run
from tarballs import tar_gz

from helm_e2e.artifacts.bundle import BundleRefused
from helm_e2e.artifacts.service import Artifacts, UploadClaims
from helm_e2e.artifacts.store import open_store
from helm_e2e.core.artifacts import rules


@pytest.fixture
def service(tmp_path: Path) -> Artifacts:
    return artifact_service(tmp_path)


# --- tokens ---
async def test_a_token_names_one_test_of_one_run_and_forgeries_fail(service: Artifacts) -> None:
    token = await service.mint(upload_run(), "api", now=NOW)
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
    token = await service.mint(upload_run(), "api", now=NOW)
    again = Artifacts(open_store(str(tmp_path / "store")), artifact_settings(tmp_path))
    assert await again.verify(token) == UploadClaims("shop", "web-3", "uid-1", "api")


# --- receive: stored whole or refused whole ---
async def test_an_upload_is_stored_and_its_manifest_written_last(tmp_path: Path, service: Artifacts) -> None:
    claims = UploadClaims("shop", "web-3", "uid-1", "api")
    manifest = await service.receive(claims, bundle_at(tmp_path, tar_gz({"junit.xml": b"FAIL:x"})), now=NOW)
    assert [f.name for f in manifest.files] == ["junit.xml"]
    assert await service.manifest("shop", "web-3", "uid-1", "api") == manifest
    files = await service.read_files(manifest, {"junit.xml"}, max_bytes=100)
    assert files == {"junit.xml": b"FAIL:x"}
    # a second upload (a retried attempt) replaces the first, and the first bundle is gone
    second = await service.receive(claims, bundle_at(tmp_path, tar_gz({"b.txt": b"2"})), now=NOW)
    keys = sorted(o.key for o in await service.store.list(rules.run_prefix("shop", "web-3", "uid-1")))
    assert keys == sorted([second.bundle, rules.manifest_key("shop", "web-3", "uid-1", "api")])


async def test_the_run_quota_counts_the_other_tests(tmp_path: Path, service: Artifacts) -> None:
    await service.receive(
        UploadClaims("shop", "web-3", "uid-1", "a"), bundle_at(tmp_path, tar_gz({"x": b"x" * 9000})), now=NOW
    )
    with pytest.raises(BundleRefused, match="per-run quota"):
        await service.receive(
            UploadClaims("shop", "web-3", "uid-1", "b"),
            bundle_at(tmp_path, tar_gz({"y": b"y" * 9000})),
            now=NOW,
        )
    refused = await service.manifest("shop", "web-3", "uid-1", "b")
    assert refused is not None
    assert refused.files == []
    assert "per-run quota" in refused.refused
    assert await service.delete_run("shop", "web-3", "uid-1") == 3
    assert await service.store.list("runs/") == []
