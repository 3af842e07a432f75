"""Helm release secret → Release (pure). Every failure is one ReleaseDecodeError with a one-line reason.

Storage facts (DESIGN.md §4): `data.release` = base64 (Kubernetes) of base64 of gzip of JSON; gunzip
only when the bytes start with 1f 8b 08. Decompression and parsing are bounded (core/model/limits.py), so a
gzip or JSON bomb is refused before it is built. Identity comes from the Secret, never from its content:
the namespace is the Secret's, and the name and revision in its name, its labels and the JSON must agree
(ReleaseIdentityError otherwise). Reasons never quote a value from the Secret.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from helm_e2e.core.model import limits
from helm_e2e.core.model.release import Hook, Release, Trigger
from helm_e2e.errors import LimitExceeded, ReleaseDecodeError, ReleaseIdentityError

HELM_SECRET_TYPE = "helm.sh/release.v1"  # noqa: S105 - a Secret type, not a password
GZIP_MAGIC = b"\x1f\x8b\x08"
MAX_INPUT_BYTES = 8 * 2**20  # a Secret is at most 1 MiB; leave room, refuse the absurd
# A Secret holds at most 1 MiB, so the gzip is at most ~768 KiB; real releases (chart files are stored
# base64, which compresses poorly) decompress 2-10x. 16 MiB leaves a wide margin and bounds the peak.
MAX_DECOMPRESSED_BYTES = 16 * 2**20
MAX_TEST_HOOK_YAML_BYTES = 2 * 2**20  # all test hooks of one release together (a real chart's: a few KiB)
_NAME = re.compile(r"^sh\.helm\.release\.v1\.(?P<release>.+)\.v(?P<revision>\d+)$")


def parse_secret_name(name: str) -> tuple[str, int] | None:
    match = _NAME.match(name)
    return (match["release"], int(match["revision"])) if match else None


def check_secret_identity(secret: Mapping[str, Any]) -> str | None:
    """None when the Secret's name, namespace and Helm labels agree; else a one-line problem (no values)."""
    meta = secret.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    parsed = parse_secret_name(str(meta.get("name") or ""))
    if parsed is None:
        return "secret name is not sh.helm.release.v1.<release>.v<revision>"
    if not meta.get("namespace"):
        return "secret has no metadata.namespace"
    labels = meta.get("labels")
    labels = labels if isinstance(labels, Mapping) else {}
    release, revision = parsed
    if labels.get("name") != release:
        return "label 'name' does not match the release named by the secret"
    if labels.get("version") != str(revision):
        return "label 'version' does not match the revision named by the secret"
    return None


def decode_release_secret(
    secret: Mapping[str, Any],
    *,
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
    max_items: int = limits.MAX_JSON_ITEMS,
) -> Release:
    """The Release in a Helm Secret; ReleaseIdentityError when its identity is inconsistent."""
    meta = secret.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name = str(meta.get("name", "?"))
    where = f"release secret {name}"
    if secret.get("type") != HELM_SECRET_TYPE:
        raise ReleaseDecodeError(f"{where}: type is not {HELM_SECRET_TYPE}")
    problem = check_secret_identity(secret)
    if problem:
        raise ReleaseIdentityError(f"{where}: {problem}")
    data = secret.get("data") or {}
    encoded = data.get("release") if isinstance(data, Mapping) else None
    if not isinstance(encoded, str) or not encoded:
        raise ReleaseDecodeError(f"{where}: data.release is missing")
    if len(encoded) > MAX_INPUT_BYTES * 2:
        raise ReleaseDecodeError(f"{where}: data.release is larger than {MAX_INPUT_BYTES} bytes")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ReleaseDecodeError(f"{where}: data.release is not valid base64") from e
    release = decode_release_blob(
        blob,
        where=where,
        namespace=str(meta["namespace"]),
        max_decompressed_bytes=max_decompressed_bytes,
        max_items=max_items,
    )
    if (release.name, release.revision) != parse_secret_name(name):
        raise ReleaseIdentityError(f"{where}: release JSON names another release or revision than the secret")
    return release


def decode_release_blob(
    blob: bytes,
    *,
    namespace: str,
    where: str = "release",
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
    max_items: int = limits.MAX_JSON_ITEMS,
) -> Release:
    """Decode Helm's own encoding (base64 of optionally gzipped JSON) into a Release in `namespace`
    (the Secret's). ReleaseIdentityError when the JSON names another namespace."""
    if len(blob) > MAX_INPUT_BYTES:
        raise ReleaseDecodeError(f"{where}: release blob is larger than {MAX_INPUT_BYTES} bytes")
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ReleaseDecodeError(f"{where}: release blob is not valid base64") from e
    if raw.startswith(GZIP_MAGIC):
        raw = _gunzip(raw, limit=max_decompressed_bytes, where=where)
    try:
        limits.check_json(raw, max_bytes=max_decompressed_bytes, max_items=max_items)
    except LimitExceeded as e:
        raise ReleaseDecodeError(f"{where}: release refused: {e}") from e
    try:
        text = raw.decode("utf-8")
        del raw  # peak memory: never the bytes, their text and the parsed document at once
        doc = json.loads(text)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise ReleaseDecodeError(f"{where}: release is not valid JSON") from e
    if not isinstance(doc, dict):
        raise ReleaseDecodeError(f"{where}: release JSON is not an object")
    if doc.get("namespace") not in (None, "", namespace):
        raise ReleaseIdentityError(f"{where}: release JSON names another namespace than the secret")
    try:
        return _to_release(doc, namespace)
    except (ValidationError, TypeError, ValueError, KeyError, AttributeError, RecursionError) as e:
        raise ReleaseDecodeError(f"{where}: unexpected release shape ({_short(e)})") from e


def _short(e: Exception) -> str:
    if isinstance(e, ValidationError):
        err = e.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return type(e).__name__


def _gunzip(data: bytes, *, limit: int, where: str) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as e:
        raise ReleaseDecodeError(f"{where}: release is not valid gzip") from e
    if len(out) > limit or inflater.unconsumed_tail:
        raise ReleaseDecodeError(f"{where}: release decompresses to more than {limit} bytes")
    if not inflater.eof:
        raise ReleaseDecodeError(f"{where}: release gzip stream is truncated")
    return out


def _time(value: object) -> datetime | None:
    """RFC 3339 with nanoseconds; Helm 3 writes year 1 for 'never', Helm 4 omits it."""
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
    return datetime.fromisoformat(text)


def merge_values(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing: user config wins, maps merge recursively, `null` deletes a default."""
    out = dict(defaults)
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = value
    return out


def _trigger(revision: int, description: str, rollback_revision: int | None) -> Trigger:
    if rollback_revision is not None or description.startswith("Rollback to"):
        return Trigger.ROLLBACK
    if revision == 1 or description == "Install complete":
        return Trigger.INSTALL
    return Trigger.UPGRADE


def _annotations(value: object) -> dict[str, str]:
    """Chart.yaml `annotations`: string keys and values only, each bounded (never a crash on odd input)."""
    if not isinstance(value, Mapping):
        return {}
    return {
        k[:253]: v[:1024] for k, v in list(value.items())[:64] if isinstance(k, str) and isinstance(v, str)
    }


_ROLLBACK_DESCRIPTION = re.compile(r"Rollback to ([1-9][0-9]{0,9})")


def _rollback_revision(info: Mapping[str, Any], description: str) -> int | None:
    """The revision a rollback restored: `info.rollback_revision` where Helm writes it (Helm 4.3 pkg/action
    rollback.go sets Info.RollbackRevision; golden data helm-v4.3.1-rollback) — the description is only
    its default there, `helm rollback --description` replaces it — else Helm 3's description
    `Rollback to N`. None for an install or an upgrade."""
    value = info.get("rollback_revision")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _ROLLBACK_DESCRIPTION.fullmatch(description.strip())
    return int(match.group(1)) if match else None


def _to_release(doc: Mapping[str, Any], namespace: str) -> Release:
    info = doc.get("info") or {}
    chart = doc.get("chart") or {}
    meta = chart.get("metadata") or {}
    defaults, config = chart.get("values") or {}, doc.get("config") or {}
    if not isinstance(defaults, Mapping) or not isinstance(config, Mapping):
        raise TypeError("values")
    revision = doc["version"]
    if not isinstance(revision, int) or isinstance(revision, bool):
        raise TypeError("version")
    description = str(info.get("description") or "")
    rolled_back_to = _rollback_revision(info, description)
    hooks = [Hook.model_validate(h) for h in doc.get("hooks") or []]
    check_test_hook_yaml(hooks)
    return Release(
        name=doc["name"],
        namespace=namespace,
        revision=revision,
        status=str(info.get("status") or "unknown"),
        description=description,
        chart_name=meta["name"],
        chart_version=str(meta.get("version") or ""),
        app_version=str(meta.get("appVersion") or ""),
        values=merge_values(defaults, config),
        hooks=hooks,
        manifest=str(doc.get("manifest") or ""),
        chart_annotations=_annotations(meta.get("annotations")),
        first_deployed=_time(info.get("first_deployed")),
        last_deployed=_time(info.get("last_deployed")),
        trigger=_trigger(revision, description, rolled_back_to),
        rollback_revision=rolled_back_to,
        apply_method=str(doc.get("apply_method") or "")[:16],
    )


def check_test_hook_yaml(hooks: Sequence[Hook], *, limit: int = MAX_TEST_HOOK_YAML_BYTES) -> None:
    """The test hooks' YAML is parsed once per plan: its total is bounded (each document's own limit alone
    let 4 MiB of hooks cost ~30 s of CPU per plan)."""
    total = sum(len(h.manifest) for h in hooks if "test" in h.events or "test-success" in h.events)
    if total > limit:
        raise ReleaseDecodeError(
            f"the release's test hooks hold {total} bytes of YAML, over the limit of {limit} bytes"
        )


def resolve_image_tag(values: Mapping[str, Any], values_path: str, app_version: str) -> str:
    """The tag at a dotted values path (e.g. `image.tag`); else the chart's appVersion; else ''."""
    node: Any = values
    for part in values_path.split(".") if values_path else []:
        node = node.get(part) if isinstance(node, Mapping) else None
    if isinstance(node, bool) or node is None or isinstance(node, Mapping | list):
        return app_version
    text = str(node).strip()
    return text or app_version
