"""The readiness gate's rules, table-driven over real-shaped objects (as `kubectl get -o json` shows them)."""

from __future__ import annotations

from typing import Any

import pytest

from helm_e2e.core.plan.readiness import (
    ObjectKey,
    Readiness,
    check_object,
    summarize,
)

NS = "shop"


def key(kind: str, name: str = "web", api_version: str = "apps/v1") -> ObjectKey:
    return ObjectKey(kind, api_version, NS, name)


def deployment(*, spec: dict[str, Any] | None = None, gen: int = 2, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS, "generation": gen},
        "spec": {"replicas": 3, "paused": False, **(spec or {})},
        "status": {"observedGeneration": 2, **status},
    }


ROLLED_OUT = {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}
DEPLOYMENTS = [
    ("rolled out", deployment(**ROLLED_OUT), None),
    ("generation lag", deployment(gen=3, **ROLLED_OUT), "deployment/web generation not observed yet"),
    ("controller never saw it", {**deployment(), "status": {}}, "deployment/web generation not observed yet"),
    (
        "new pods not created yet",
        deployment(replicas=3, updatedReplicas=1, readyReplicas=3, availableReplicas=3),
        "deployment/web 1/3 updated",
    ),
    (
        "old ReplicaSet still has pods",
        deployment(replicas=4, updatedReplicas=3, readyReplicas=4, availableReplicas=4),
        "deployment/web 1 old replica(s) still running",
    ),
    (
        "new pods not ready",
        deployment(
            replicas=3, updatedReplicas=3, readyReplicas=1, availableReplicas=1, unavailableReplicas=2
        ),
        "deployment/web 1/3 ready",
    ),
    (
        "ready but not yet available (minReadySeconds)",
        deployment(replicas=3, updatedReplicas=3, readyReplicas=3, availableReplicas=2),
        "deployment/web 2/3 available",
    ),
    (
        "replicas default to 1",
        deployment(spec={"replicas": None}, replicas=1, updatedReplicas=1),
        "web 0/1 ready",
    ),
    ("scaled to zero", deployment(spec={"replicas": 0}), None),
    ("paused counts as ready (helm --wait)", deployment(spec={"paused": True}, gen=9), None),
]


@pytest.mark.parametrize(("obj", "pending"), [c[1:] for c in DEPLOYMENTS], ids=[c[0] for c in DEPLOYMENTS])
def test_deployment_rules(obj: dict[str, Any], pending: str | None) -> None:
    result = check_object(key("Deployment"), obj)
    assert result.ready is (pending is None)
    assert not result.failed
    assert pending is None or pending in result.pending


def test_a_deployment_past_its_progress_deadline_has_failed() -> None:
    obj = deployment(replicas=3, updatedReplicas=1, readyReplicas=0)
    obj["status"]["conditions"] = [
        {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"},
    ]
    assert check_object(key("Deployment"), obj) == Readiness(
        ready=False, failed=True, pending="deployment/web progress deadline exceeded"
    )


def statefulset(
    *, partition: int | None = None, strategy: str = "RollingUpdate", **status: Any
) -> dict[str, Any]:
    update: dict[str, Any] = {"type": strategy}
    if partition is not None:
        update["rollingUpdate"] = {"partition": partition}
    base = {"observedGeneration": 1, "replicas": 3, "currentRevision": "db-7c9", "updateRevision": "db-7c9"}
    return {
        "metadata": {"name": "db", "namespace": NS, "generation": 1},
        "spec": {"replicas": 3, "updateStrategy": update},
        "status": {**base, **status},
    }


STATEFULSETS = [
    ("rolled out", statefulset(updatedReplicas=3, readyReplicas=3, currentReplicas=3), None),
    ("generation lag", statefulset(observedGeneration=0, readyReplicas=3), "generation not observed yet"),
    ("not updated", statefulset(updatedReplicas=1, readyReplicas=3), "statefulset/db 1/3 updated"),
    ("not ready", statefulset(updatedReplicas=3, readyReplicas=2), "statefulset/db 2/3 ready"),
    (
        "revision not rolled out",
        statefulset(updatedReplicas=3, readyReplicas=3, updateRevision="db-5f1"),
        "statefulset/db revision not rolled out",
    ),
    (
        "partition 2: one updated pod is enough, revisions may differ",
        statefulset(partition=2, updatedReplicas=1, readyReplicas=3, updateRevision="db-5f1"),
        None,
    ),
    (
        "partition 1 with no updated pod",
        statefulset(partition=1, readyReplicas=3),
        "statefulset/db 0/2 updated",
    ),
    ("OnDelete never waits", statefulset(strategy="OnDelete", readyReplicas=0), None),
]


@pytest.mark.parametrize(("obj", "pending"), [c[1:] for c in STATEFULSETS], ids=[c[0] for c in STATEFULSETS])
def test_statefulset_rules(obj: dict[str, Any], pending: str | None) -> None:
    result = check_object(key("StatefulSet", "db"), obj)
    assert result.ready is (pending is None)
    assert pending is None or pending in result.pending


def daemonset(*, gen: int = 1, strategy: str = "RollingUpdate", **status: Any) -> dict[str, Any]:
    base = {"observedGeneration": 1, "desiredNumberScheduled": 2, "currentNumberScheduled": 2}
    return {
        "metadata": {"name": "agent", "namespace": NS, "generation": gen},
        "spec": {"updateStrategy": {"type": strategy, "rollingUpdate": {"maxUnavailable": 1}}},
        "status": {**base, **status},
    }


DAEMONSETS = [
    ("rolled out", daemonset(updatedNumberScheduled=2, numberReady=2, numberAvailable=2), None),
    (
        "generation lag",
        daemonset(gen=2, updatedNumberScheduled=2, numberReady=2),
        "generation not observed yet",
    ),
    ("not updated", daemonset(updatedNumberScheduled=1, numberReady=2), "daemonset/agent 1/2 updated"),
    (
        "one not ready: helm's maxUnavailable would pass, we wait",
        daemonset(updatedNumberScheduled=2, numberReady=1, numberAvailable=1),
        "daemonset/agent 1/2 ready",
    ),
    ("OnDelete never waits", daemonset(strategy="OnDelete"), None),
]


@pytest.mark.parametrize(("obj", "pending"), [c[1:] for c in DAEMONSETS], ids=[c[0] for c in DAEMONSETS])
def test_daemonset_rules(obj: dict[str, Any], pending: str | None) -> None:
    result = check_object(key("DaemonSet", "agent"), obj)
    assert result.ready is (pending is None)
    assert pending is None or pending in result.pending


def conditions(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {
        "conditions": [
            {"type": t, "status": s, "lastTransitionTime": "2026-01-01T00:00:00Z"} for t, s in pairs
        ]
    }


OTHERS = [
    (
        "job complete",
        "Job",
        "batch/v1",
        conditions(("SuccessCriteriaMet", "True"), ("Complete", "True")),
        (True, False, ""),
    ),
    (
        "job running",
        "Job",
        "batch/v1",
        {"active": 1, "startTime": "2026-01-01T00:00:00Z"},
        (False, False, "job/x not complete"),
    ),
    (
        "job failed",
        "Job",
        "batch/v1",
        conditions(("FailureTarget", "True"), ("Failed", "True")),
        (False, True, "job/x failed"),
    ),
    ("pod ready", "Pod", "v1", {"phase": "Running", **conditions(("Ready", "True"))}, (True, False, "")),
    (
        "pod succeeded",
        "Pod",
        "v1",
        {"phase": "Succeeded", **conditions(("Ready", "False"))},
        (True, False, ""),
    ),
    (
        "pod running, not ready",
        "Pod",
        "v1",
        {"phase": "Running", **conditions(("Ready", "False"))},
        (False, False, "pod/x Running, not ready"),
    ),
    ("pod unscheduled", "Pod", "v1", {"phase": "Pending"}, (False, False, "pod/x Pending, not ready")),
    ("pod failed", "Pod", "v1", {"phase": "Failed"}, (False, True, "pod/x Failed")),
    ("pvc bound", "PersistentVolumeClaim", "v1", {"phase": "Bound"}, (True, False, "")),
    ("pvc pending", "PersistentVolumeClaim", "v1", {"phase": "Pending"}, (False, False, "pvc/x Pending")),
    ("pvc lost", "PersistentVolumeClaim", "v1", {"phase": "Lost"}, (False, True, "pvc/x Lost")),
    (
        "lb with ingress",
        "Service",
        "v1",
        {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}]}},
        (True, False, ""),
    ),
    (
        "lb without ingress",
        "Service",
        "v1",
        {"loadBalancer": {}},
        (False, False, "service/x load balancer has no ingress yet"),
    ),
]


@pytest.mark.parametrize(
    ("kind", "api", "status", "want"), [c[1:] for c in OTHERS], ids=[c[0] for c in OTHERS]
)
def test_jobs_pods_claims_and_load_balancers(
    kind: str, api: str, status: dict[str, Any], want: tuple[bool, bool, str]
) -> None:
    spec = {"type": "LoadBalancer"} if kind == "Service" else {}
    obj = {"metadata": {"name": "x", "namespace": NS}, "spec": spec, "status": status}
    result = check_object(key(kind, "x", api), obj)
    assert (result.ready, result.failed, result.pending) == want


def test_a_load_balancer_with_external_ips_and_other_services_never_wait() -> None:
    lb = {"spec": {"type": "LoadBalancer", "externalIPs": ["192.0.2.1"]}, "status": {"loadBalancer": {}}}
    assert check_object(key("Service", "x", "v1"), lb).ready
    assert check_object(key("Service", "x", "v1"), {"spec": {"type": "ClusterIP"}}).ready


def test_a_missing_object_is_pending_and_built_in_kinds_without_rules_never_block() -> None:
    assert check_object(key("Deployment"), None) == Readiness(
        ready=False, pending="deployment/web not found yet"
    )
    assert check_object(key("ConfigMap", "cfg", "v1"), None).ready
    assert check_object(key("Ingress", "i", "networking.k8s.io/v1"), None).ready
    assert not check_object(key("Widget", "w", "example.com/v1"), None).ready  # a custom resource: waited for


def widget(*, gen: int = 2, deleting: bool = False, **status: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "w", "namespace": NS, "generation": gen}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-05T10:00:00Z"
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": meta, "status": status}


def cond(kind: str, status: str, reason: str = "Because") -> dict[str, str]:
    return {"type": kind, "status": status, "reason": reason, "message": "free text: password=hunter2"}


@pytest.mark.parametrize(
    ("obj", "pending", "failed"),
    [
        (widget(), None, False),  # no status at all: kstatus Current
        (widget(observedGeneration=2, conditions=[cond("Ready", "True")]), None, False),
        (widget(observedGeneration=1, conditions=[cond("Ready", "True")]), "generation not observed yet", False),
        (widget(conditions=[cond("Ready", "True")]), None, False),  # no observedGeneration: not a lag
        (widget(conditions=[cond("Ready", "False", "Provisioning")]), "Ready=False (Provisioning)", False),
        (widget(conditions=[cond("Ready", "Unknown", "not a reason!")]), "Ready=Unknown", False),
        (widget(conditions=[cond("Reconciling", "True", "Progressing"), cond("Ready", "True")]),
         "reconciling (Progressing)", False),
        (widget(conditions=[cond("Stalled", "True", "BadSpec"), cond("Ready", "False")]), "stalled (BadSpec)", True),
        (widget(conditions=[cond("Stalled", "False"), cond("Reconciling", "False")]), None, False),
        (widget(deleting=True, conditions=[cond("Ready", "True")]), "terminating", False),
        (widget(conditions=[cond("Available", "False")]), None, False),  # only Ready counts
    ],
)  # fmt: skip
def test_custom_resources_follow_helm4s_kstatus_rules(
    obj: dict[str, Any], pending: str | None, failed: bool
) -> None:
    got = check_object(key("Widget", "w", "example.com/v1"), obj)
    assert (got.ready, got.failed) == (pending is None, failed)
    assert got.pending == (f"widget/w {pending}" if pending else "")
    assert "hunter2" not in got.pending  # a condition's message is never quoted


def test_summary_names_the_first_few_and_counts_the_rest() -> None:
    checks = [check_object(key("Deployment", f"d{i}"), None) for i in range(5)]
    checks += [Readiness(ready=True), Readiness(ready=False, failed=True, pending="job/m failed")]
    ready, failed, pending = summarize(checks)
    assert not ready
    assert failed == "job/m failed"
    assert pending == (
        "deployment/d0 not found yet, deployment/d1 not found yet, deployment/d2 not found yet and 2 more"
    )
    assert summarize([Readiness(ready=True)]) == (True, "", "")
    assert summarize([]) == (True, "", "")
