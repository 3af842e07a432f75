"""Helpers shared by the hook planning tests: inline hook manifests and releases."""

from __future__ import annotations

from typing import Any

import yaml

from helm_e2e.core.model.release import Hook, Release, Trigger
from helm_e2e.core.plan.chart_hooks import HookSet, build_hook_set


def manifest(kind: str, name: str, *, api: str = "v1", weight: str | None = None, policy: str | None = None,
             hook: str = "test", **fields: Any) -> str:  # fmt: skip
    annotations = {"helm.sh/hook": hook}
    if weight is not None:
        annotations["helm.sh/hook-weight"] = weight
    if policy is not None:
        annotations["helm.sh/hook-delete-policy"] = policy
    doc = {"apiVersion": api, "kind": kind, "metadata": {"name": name, "annotations": annotations}, **fields}
    return yaml.safe_dump(doc)


POD_SPEC = {"containers": [{"name": "t", "image": "busybox"}]}
RBAC = "rbac.authorization.k8s.io/v1"
ROLE_REF = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}


def release(*manifests: str, events: list[str] | None = None) -> Release:
    hooks = [
        Hook(name=f"h{i}", kind="?", manifest=m, events=events or ["test"]) for i, m in enumerate(manifests)
    ]
    return Release(name="web", namespace="shop", revision=2, status="deployed", chart_name="web-chart",
                   chart_version="1.0.0", hooks=hooks, trigger=Trigger.UPGRADE)  # fmt: skip


def hook_set(*manifests: str) -> HookSet:
    return build_hook_set(release(*manifests), default_timeout=300)


def grafana_shape() -> list[str]:
    return [
        manifest("Pod", "web-test", spec={"serviceAccountName": "web-test", **POD_SPEC}),
        manifest("ConfigMap", "web-test", data={"run.sh": "bats /tests"}),
        manifest("ServiceAccount", "web-test"),
    ]
