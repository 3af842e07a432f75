"""Decoding Helm release secrets: shapes, values merge, triggers, image tags and every error path."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from helm_encoding import helm_release_doc, helm_secret
from repo_paths import GOLDEN_RELEASES as GOLDEN

from helm_e2e.core.model.release import Trigger
from helm_e2e.core.sources.helm_secret import (
    decode_release_secret,
    merge_values,
    parse_secret_name,
    resolve_image_tag,
)
from helm_e2e.errors import ReleaseDecodeError


def test_decodes_a_gzipped_helm3_release() -> None:
    release = decode_release_secret(helm_secret(helm_release_doc()))
    assert (release.name, release.namespace, release.revision, release.status) == (
        "web",
        "shop",
        1,
        "deployed",
    )
    assert (release.chart_name, release.chart_version, release.app_version) == ("web-chart", "1.2.3", "2.0.0")
    assert release.trigger == Trigger.INSTALL
    assert release.last_deployed is not None
    assert release.last_deployed.microsecond == 500000
    assert release.values["image"] == {"repository": "r", "tag": "2.0.1"}
    assert [h.name for h in release.hooks] == ["web-smoke"]


def test_decodes_plain_json_without_gzip() -> None:
    assert decode_release_secret(helm_secret(helm_release_doc(), compress=False)).name == "web"


def test_helm4_shape_without_zero_times_hooks_or_config_decodes() -> None:
    doc = helm_release_doc(revision=2)
    doc["info"] = {"status": "deployed", "last_deployed": "2026-11-25T10:05:00+01:00"}
    del doc["hooks"], doc["config"]
    doc["chart"]["metadata"]["apiVersion"] = "v3"
    release = decode_release_secret(helm_secret(doc))
    assert release.first_deployed is None
    assert release.hooks == []
    assert release.trigger == Trigger.UPGRADE


def test_helm3_zero_time_means_never() -> None:
    doc = helm_release_doc()
    doc["info"]["first_deployed"] = "0001-01-01T00:00:00Z"
    assert decode_release_secret(helm_secret(doc)).first_deployed is None


@pytest.mark.parametrize(
    ("revision", "description", "trigger"),
    [
        (1, "Install complete", Trigger.INSTALL),
        (4, "Upgrade complete", Trigger.UPGRADE),
        (5, "Rollback to 2", Trigger.ROLLBACK),
    ],
)
def test_trigger_comes_from_revision_and_description(
    revision: int, description: str, trigger: Trigger
) -> None:
    doc = helm_release_doc(revision=revision)
    doc["info"]["description"] = description
    assert decode_release_secret(helm_secret(doc)).trigger == trigger


@pytest.mark.parametrize(
    ("info", "trigger", "rolled_back_to"),
    [
        ({"description": "Rollback to 2"}, Trigger.ROLLBACK, 2),  # Helm 3: only the description says it
        ({"description": "Rollback to 2", "rollback_revision": 2}, Trigger.ROLLBACK, 2),  # Helm 4.3
        (
            {"description": "back to the good one", "rollback_revision": 3},
            Trigger.ROLLBACK,
            3,
        ),  # --description
        ({"description": "Upgrade complete"}, Trigger.UPGRADE, None),
        ({"description": "Upgrade complete", "rollback_revision": 0}, Trigger.UPGRADE, None),
        ({"description": "Rollback to two"}, Trigger.ROLLBACK, None),
        ({"description": "x", "rollback_revision": "2"}, Trigger.UPGRADE, None),
        ({"description": "x", "rollback_revision": True}, Trigger.UPGRADE, None),
    ],
)
def test_the_rollback_revision_comes_from_info_rollback_revision_else_the_description(
    info: dict[str, Any], trigger: Trigger, rolled_back_to: int | None
) -> None:
    doc = helm_release_doc(revision=5)
    doc["info"].update(info)
    release = decode_release_secret(helm_secret(doc))
    assert (release.trigger, release.rollback_revision) == (trigger, rolled_back_to)


def test_user_values_win_maps_merge_and_null_deletes_a_default() -> None:
    merged = merge_values({"a": {"b": 1, "c": 2}, "d": 3, "e": [1]}, {"a": {"c": 5}, "d": None, "e": [2]})
    assert merged == {"a": {"b": 1, "c": 5}, "e": [2]}


@pytest.mark.parametrize(
    ("values", "path", "app_version", "tag"),
    [
        ({"image": {"tag": "1.2.3"}}, "image.tag", "9", "1.2.3"),
        ({"image": {"tag": ""}}, "image.tag", "9", "9"),
        ({"image": {}}, "image.tag", "9", "9"),
        ({"api": {"image": {"tag": 42}}}, "api.image.tag", "", "42"),
        ({"image": "flat"}, "image.tag", "9", "9"),
        ({"image": {"tag": {"nested": 1}}}, "image.tag", "", ""),
        ({}, "image.tag", "", ""),
    ],
)
def test_image_tag_from_values_path_else_app_version(
    values: dict[str, Any], path: str, app_version: str, tag: str
) -> None:
    assert resolve_image_tag(values, path, app_version) == tag


def test_secret_names_parse_into_release_and_revision() -> None:
    assert parse_secret_name("sh.helm.release.v1.my.app.v12") == ("my.app", 12)
    assert parse_secret_name("default-token-abc") is None


META = {"name": "sh.helm.release.v1.x.v1", "namespace": "shop", "labels": {"name": "x", "version": "1"}}


def _with_blob(blob: bytes) -> dict[str, Any]:
    return {
        "metadata": META,
        "type": "helm.sh/release.v1",
        "data": {"release": base64.b64encode(blob).decode()},
    }


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ({"type": "Opaque", "metadata": META}, "not helm.sh/release.v1"),
        ({"type": "helm.sh/release.v1", "metadata": META, "data": {}}, "data.release is missing"),
        ({"type": "helm.sh/release.v1", "metadata": META, "data": {"release": "%%%"}}, "not valid base64"),
        (_with_blob(b"!!!"), "release blob is not valid base64"),
        (_with_blob(base64.b64encode(b"\x1f\x8b\x08garbage")), "not valid gzip"),
        (_with_blob(base64.b64encode(gzip.compress(b'{"name": "x"}')[:-12])), "truncated"),
        (_with_blob(base64.b64encode(b"{not json")), "not valid JSON"),
        (_with_blob(base64.b64encode(b"[1, 2]")), "not an object"),
        (_with_blob(base64.b64encode(json.dumps({"name": "x"}).encode())), "unexpected release shape"),
        (_with_blob(base64.b64encode(json.dumps({**helm_release_doc(), "version": "2"}).encode())), "shape"),
        (_with_blob(base64.b64encode(b"[" * 100_000)), "not valid JSON"),
    ],
)
def test_every_corrupt_secret_raises_one_clear_error(secret: dict[str, Any], message: str) -> None:
    with pytest.raises(ReleaseDecodeError, match=message) as info:
        decode_release_secret(secret)
    assert "\n" not in str(info.value)


def test_error_messages_never_contain_release_values() -> None:
    doc = helm_release_doc()
    doc["config"] = {"password": "hunter2-secret"}
    doc["version"] = "bad"
    with pytest.raises(ReleaseDecodeError) as info:
        decode_release_secret(helm_secret(doc))
    assert "hunter2" not in str(info.value)


def test_gzip_bomb_is_refused_before_it_is_inflated() -> None:
    bomb = gzip.compress(b"0" * (40 * 2**20))  # 40 MiB of zeros, ~40 KiB compressed
    with pytest.raises(ReleaseDecodeError, match="decompresses to more than"):
        decode_release_secret(_with_blob(base64.b64encode(bomb)), max_decompressed_bytes=2**20)


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.secret.json")), ids=lambda p: p.name)
def test_golden_secrets_captured_from_real_helm_decode(path: Path) -> None:
    expected = json.loads(path.with_name(path.name.replace(".secret.json", ".expected.json")).read_text())
    release = decode_release_secret(json.loads(path.read_text()))
    got = {
        "name": release.name,
        "revision": release.revision,
        "status": release.status,
        "chart": release.chart_name,
        "trigger": release.trigger.value,
        "hooks": sorted(h.name for h in release.hooks),
    }
    assert got == expected


@pytest.mark.parametrize("helm", ["helm-v3.19.5", "helm-v4.3.1"])
def test_both_majors_golden_rollback_revisions_name_the_revision_they_restored(helm: str) -> None:
    """Helm 4.3 writes info.rollback_revision (checked here in the captured blob), Helm 3 only the text."""
    secret = json.loads((GOLDEN / f"{helm}-rollback.secret.json").read_text())
    blob = base64.b64decode(base64.b64decode(secret["data"]["release"]))
    doc = json.loads(gzip.decompress(blob) if blob[:3] == b"\x1f\x8b\x08" else blob)
    assert doc["info"].get("rollback_revision") == (1 if helm == "helm-v4.3.1" else None)
    assert decode_release_secret(secret).rollback_revision == 1
