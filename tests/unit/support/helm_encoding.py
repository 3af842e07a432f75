"""Encode a release exactly as Helm stores it: JSON → gzip → base64 (Helm) → base64 (Kubernetes)."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any


def helm_release_doc(name: str = "web", revision: int = 1, **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": name,
        "namespace": "shop",
        "version": revision,
        "info": {
            "status": "deployed",
            "first_deployed": "2026-11-25T10:00:00.123456789Z",
            "last_deployed": "2026-11-25T10:05:00.5Z",
            "description": "Install complete" if revision == 1 else "Upgrade complete",
        },
        "chart": {
            "metadata": {"name": "web-chart", "version": "1.2.3", "appVersion": "2.0.0"},
            "values": {"image": {"repository": "r", "tag": ""}, "replicas": 1, "db": {"host": "x"}},
        },
        "config": {"image": {"tag": "2.0.1"}},
        "manifest": "---\n",
        "hooks": [
            {
                "name": "web-smoke",
                "kind": "Pod",
                "path": "web/templates/test.yaml",
                "events": ["test"],
                "manifest": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-smoke\n"
                "  annotations:\n    helm.sh/hook: test\n    sim.helm-e2e.dev/exit-code: '1'\n"
                "spec:\n  containers:\n  - name: t\n    image: busybox\n",
            }
        ],
    }
    doc.update(overrides)
    return doc


def encode_blob(doc: Any, *, compress: bool = True) -> bytes:
    raw = json.dumps(doc).encode()
    return base64.b64encode(gzip.compress(raw) if compress else raw)


def helm_secret(doc: Any, *, compress: bool = True, name: str = "") -> dict[str, Any]:
    """The Secret Helm writes for `doc`: its name and labels from the doc's name and version."""
    if not name:
        fields = doc if isinstance(doc, dict) else {}
        name = f"sh.helm.release.v1.{fields.get('name', 'web')}.v{fields.get('version', 1)}"
    release, _, revision = name.removeprefix("sh.helm.release.v1.").rpartition(".v")
    labels = {"owner": "helm", "name": release, "version": revision, "status": "deployed"}
    return {
        # a uid as the apiserver gives every object: a run records its Secret's (core/lifecycle/trust.py)
        "metadata": {"name": name, "namespace": "shop", "labels": labels, "uid": f"uid-{name}"},
        "type": "helm.sh/release.v1",
        "data": {"release": base64.b64encode(encode_blob(doc, compress=compress)).decode()},
    }
