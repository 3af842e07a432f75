"""The readiness gate on a custom resource, by Helm 4's kstatus rules (core/plan/readiness.py `_custom`).

A Widget CRD without a status subresource, so the chart's manifest sets the Widget's status (its
controller would). The chart is written per test (a test-only kind stays out of tests/data/charts, whose
kinds the default rollback RBAC must cover): `Ready=False` holds the release's run back until the condition turns True. Helm 4's
own `--wait` is the oracle: it fails on the same Widget that Helm 3's `--wait` accepts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from harness import TEST_HELM, Cluster, assert_stays, wait_until
from test_operator import get_run, wait_run
from test_readiness_gate import operator_pods, ready_condition

WIDGET = """\
apiVersion: e2e-test.helm-e2e.dev/v1
kind: Widget
metadata:
  name: {{ .Release.Name }}-widget
spec:
  size: 1
status:  # set by the chart: its CRD has no status subresource (a controller would set it)
  observedGeneration: 1
  conditions:
  - {type: Ready, status: "False", reason: Provisioning, message: "a free-text message the gate never quotes"}
"""
TEST_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-smoke
  annotations: {helm.sh/hook: test, sim.helm-e2e.dev/exit-code: "0", sim.helm-e2e.dev/duration: 1s}
spec:
  restartPolicy: Never
  containers: [{name: smoke, image: busybox, command: ["true"]}]
"""
CHART_FILES = {
    "Chart.yaml": "apiVersion: v2\nname: custom-ready\nversion: 0.1.0\nappVersion: 1.0.0\n",
    "templates/widget.yaml": WIDGET,
    "templates/test-pod.yaml": TEST_POD,
}
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.e2e-test.helm-e2e.dev"},
    "spec": {
        "group": "e2e-test.helm-e2e.dev",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def widgets(cluster: Cluster) -> Cluster:
    """The Widget CRD, served before the first test (kept: other checkouts' runs may use it meanwhile)."""
    cluster.apply(json.dumps(CRD))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{CRD['metadata']['name']}", "--timeout=60s")
    return cluster


@pytest.fixture
def chart(tmp_path: Path) -> str:
    for name, text in CHART_FILES.items():
        (tmp_path / "custom-ready" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "custom-ready" / name).write_text(text)
    return str(tmp_path / "custom-ready")


def patch_status(cluster: Cluster, namespace: str, name: str, status: dict[str, Any]) -> None:
    """Without a status subresource every write bumps metadata.generation, as a spec change would."""
    patch = json.dumps({"status": status})
    cluster.kubectl("patch", "widget", name, "-n", namespace, "--type=merge", "-p", patch)


def waiting_for(cluster: Cluster, namespace: str, text: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        condition = ready_condition(get_run(cluster, namespace, "c-1"))
        return condition if text in condition.get("message", "") else None

    found: dict[str, Any] = wait_until(probe, what=f"the run to wait for {text!r}")
    return found


def test_a_custom_resource_not_ready_holds_the_tests_until_its_ready_condition_turns_true(
    widgets: Cluster, namespace: str, start_operator: Any, chart: str
) -> None:
    cluster = widgets
    start_operator()
    cluster.helm("install", "c", chart, "-n", namespace)  # no --wait: deployed while the Widget is not Ready

    condition = waiting_for(cluster, namespace, "widget/c-widget Ready=False (Provisioning)")
    assert (condition["status"], condition["reason"]) == ("False", "WaitingForRollout")
    assert "free-text" not in condition["message"]
    assert_stays(
        lambda: operator_pods(cluster, namespace) == [], seconds=3, what="no test pod while it waits"
    )

    ready = {"conditions": [{"type": "Ready", "status": "True", "reason": "Provisioned"}]}
    patch_status(cluster, namespace, "c-widget", ready)  # generation 2, observed still 1: kstatus waits
    waiting_for(cluster, namespace, "widget/c-widget generation not observed yet")
    generation = cluster.get_json("widget", "c-widget", "-n", namespace)["metadata"]["generation"]
    patch_status(cluster, namespace, "c-widget", {**ready, "observedGeneration": generation + 1})
    run = wait_run(cluster, namespace, "c-1")
    assert (run["status"]["phase"], ready_condition(run)["reason"]) == ("Succeeded", "RolledOut")


def test_helm_waits_for_the_same_widget_only_in_helm_4(widgets: Cluster, namespace: str, chart: str) -> None:
    """The oracle: `--wait` of the helm under test on a release whose Widget stays Ready=False."""
    cluster = widgets
    args = ("install", "w", chart, "-n", namespace, "--wait", "--timeout", "5s")
    proc = cluster.helm(*args, check=False, timeout=60)
    if TEST_HELM == "helm4":
        assert proc.returncode != 0, proc.stdout
        assert "Widget" in proc.stderr, proc.stderr
        assert "not ready" in proc.stderr, proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr  # Helm 3's ReadyChecker ignores custom resources
