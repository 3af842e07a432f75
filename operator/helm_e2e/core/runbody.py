"""E2ERun bodies ⇄ the core's Run model (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .models import Run, RunSpec, RunStatus

API_VERSION = "helm-e2e.dev/v1alpha1"


def build_run_body(spec: RunSpec, *, name: str, namespace: str) -> dict[str, Any]:
    release = spec.release
    return {
        "apiVersion": API_VERSION,
        "kind": "E2ERun",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "helm-e2e",
                "helm-e2e.dev/release": release.name[:63],
                "helm-e2e.dev/revision": str(release.revision),
            },
        },
        "spec": spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
    }


def run_from_body(body: Mapping[str, Any]) -> Run:
    meta = body.get("metadata", {})
    return Run(
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta.get("uid", ""),
        created_at=meta.get("creationTimestamp"),
        spec=RunSpec.model_validate(body["spec"]),
        status=RunStatus.model_validate(body.get("status") or {}),
    )


def status_body(status: RunStatus) -> dict[str, Any]:
    body: dict[str, Any] = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    return body
