"""Flux objects as helm-controller writes them, for the tests of core/sources/flux.py and its callers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import runs

from helm_e2e.core.model.release import ManagedBy, Trigger
from helm_e2e.core.model.run import Run

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
FLUX = ManagedBy(kind="HelmRelease", name="web", namespace="flux-system")


def flux_manifest(name: str = "web", namespace: str = "flux-system") -> str:
    """Objects as Flux's post-renderer writes them: its two labels on every object."""
    labels = f"    helm.toolkit.fluxcd.io/name: {name}\n    helm.toolkit.fluxcd.io/namespace: {namespace}\n"
    return (
        "---\n# Source: web/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n"
        f"  labels:\n    app: web\n{labels}data:\n  a: b\n"
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n"
        f"  labels:\n{labels}spec:\n  ports: [{{port: 80}}]\n"
    )


def helm_release(**spec: Any) -> dict[str, Any]:
    """A HelmRelease as the Flux API holds it (helm.toolkit.fluxcd.io/v2)."""
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": "flux-system"},
        "spec": {"interval": "30s", "chart": {"spec": {"chart": "web"}}, **spec},
        "status": {},
    }


def flux_run() -> Run:
    release = {
        "revision": 1,
        "chart": "web",
        "trigger": Trigger.INSTALL,
        "managed_by": FLUX.model_copy(update={"tests": True}),
    }
    return runs.make_run("web-smoke", release=release, source="flux", timeout=60, uid="u1", created_at=NOW)
