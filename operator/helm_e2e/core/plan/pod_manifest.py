"""A planned test's Pod manifest (pure): owned by its E2ERun, never restarted, labelled for the watch."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from helm_e2e.core.model import names
from helm_e2e.core.model.dns_names import build_pod_name, label_value
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_codec import build_owner_reference
from helm_e2e.core.plan.planned_test import PlannedTest


def _with_env(container: Any, env: list[dict[str, str]]) -> Any:
    if not isinstance(container, Mapping):
        return container  # malformed: left for the apiserver to reject with its own message
    out = dict(container)
    existing = list(out.get("env") or [])
    names = {e.get("name") for e in existing if isinstance(e, Mapping)}
    out["env"] = existing + [e for e in env if e["name"] not in names]  # the template's own value wins
    return out


def pod_spec(run: Run, test: PlannedTest) -> dict[str, Any]:
    ref = run.spec.release
    env = [
        {"name": "HELM_E2E_RELEASE", "value": ref.name},
        {"name": "HELM_E2E_NAMESPACE", "value": ref.namespace},
        {"name": "HELM_E2E_REVISION", "value": str(ref.revision)},
        {"name": "HELM_E2E_IMAGE_TAG", "value": ref.image_tag},
        {"name": "HELM_E2E_CHART_VERSION", "value": ref.chart_version},
        {"name": "HELM_E2E_RUN", "value": run.name},
    ]
    spec = copy.deepcopy(test.pod_spec)
    for key in ("containers", "initContainers"):
        if isinstance(spec.get(key), list):
            spec[key] = [_with_env(c, env) for c in spec[key]]
    spec["restartPolicy"] = "Never"
    if not test.token_allowed:  # least privilege: no API token unless an allowed account is named
        spec["automountServiceAccountToken"] = False
    deadline = spec.get("activeDeadlineSeconds")
    keep = type(deadline) is int and 0 < deadline <= test.timeout_seconds
    if not keep:
        spec["activeDeadlineSeconds"] = test.timeout_seconds  # a smaller deadline of the template stays
    return spec


def build_pod_manifest(*, run: Run, test: PlannedTest) -> dict[str, Any]:
    """The v1 Pod for one test of a run: owned by the E2ERun, never restarted, labelled for the watch."""
    ref = run.spec.release
    labels = {
        **test.labels,
        names.MANAGED_BY_LABEL: names.MANAGED_BY,
        names.RUN_LABEL: label_value(run.name),
        names.RELEASE_LABEL: label_value(ref.name),
        names.REVISION_LABEL: str(ref.revision),
        names.TEST_LABEL: label_value(test.name),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": build_pod_name(run.name, test.name),
            "namespace": run.namespace,
            "labels": labels,
            "annotations": {**test.annotations, names.SOURCE_ANNOTATION: test.source},
            "ownerReferences": [build_owner_reference(run)],
        },
        "spec": pod_spec(run, test),
    }
