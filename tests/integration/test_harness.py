"""Proves the local cluster is real: pinned apiserver, helm storage, kwok pod outcomes, logs, GC."""

from __future__ import annotations

import json
from pathlib import Path

from harness import ROOT, Cluster, pinned_versions, wait_until

TINY = str(ROOT / "tests" / "data" / "charts" / "tiny")


def helm_secrets(cluster: Cluster, namespace: str, release: str) -> dict[int, dict[str, str]]:
    items = cluster.get_json("secrets", "-n", namespace, "-l", f"owner=helm,name={release}")["items"]
    keys = ("owner", "name", "status", "version")  # Helm also adds modifiedAt, which we do not pin
    return {
        int(s["metadata"]["labels"]["version"]): {k: s["metadata"]["labels"][k] for k in keys} for s in items
    }


def test_apiserver_reports_the_pinned_kubernetes_version(cluster: Cluster) -> None:
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == pinned_versions()["KUBE_VERSION"]


def test_kwok_node_is_ready_without_a_taint(cluster: Cluster) -> None:
    def untainted() -> dict | None:  # the not-ready taint is lifted a moment after Ready
        nodes = cluster.get_json("nodes", "-l", "type=kwok")["items"]
        return nodes[0] if nodes and not nodes[0]["spec"].get("taints") else None

    node = wait_until(untainted, timeout=60, what="an untainted kwok node")
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    assert ready == "True"
    assert not node["spec"].get("taints")


def test_helm_install_upgrade_rollback_test_uninstall_write_the_release_secrets(
    cluster: Cluster, namespace: str
) -> None:
    cluster.helm("install", "web", TINY, "-n", namespace, "--wait")
    assert helm_secrets(cluster, namespace, "web") == {
        1: {"owner": "helm", "name": "web", "status": "deployed", "version": "1"}
    }
    secret = cluster.get_json("secret", "-n", namespace, "sh.helm.release.v1.web.v1")
    assert secret["type"] == "helm.sh/release.v1"

    cluster.helm("upgrade", "web", TINY, "-n", namespace, "--set", "message=two")
    statuses = {v: labels["status"] for v, labels in helm_secrets(cluster, namespace, "web").items()}
    assert statuses == {1: "superseded", 2: "deployed"}

    cluster.helm("rollback", "web", "1", "-n", namespace)
    statuses = {v: labels["status"] for v, labels in helm_secrets(cluster, namespace, "web").items()}
    assert statuses == {1: "superseded", 2: "superseded", 3: "deployed"}

    out = cluster.helm("test", "web", "-n", namespace, "--timeout", "60s").stdout
    assert "web-smoke" in out
    assert "Succeeded" in out

    cluster.helm("uninstall", "web", "-n", namespace)
    assert helm_secrets(cluster, namespace, "web") == {}


def test_helm_test_reports_a_failing_test_pod_as_failed(cluster: Cluster, namespace: str) -> None:
    cluster.helm("install", "bad", TINY, "-n", namespace, "--set", "test.exitCode=1")
    proc = cluster.helm("test", "bad", "-n", namespace, "--timeout", "60s", check=False)
    assert proc.returncode != 0
    assert "bad-smoke" in proc.stdout + proc.stderr


def _pod(name: str, annotations: dict[str, str]) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {
                "restartPolicy": "Never",
                "initContainers": [{"name": "setup", "image": "localhost/jwt-setup:dev"}],
                "containers": [{"name": "main", "image": "localhost/pytest-runner:dev"}],
            },
        }
    )


def _terminated(cluster: Cluster, namespace: str, name: str) -> dict | None:
    pod = cluster.try_get_json("pod", "-n", namespace, name)
    if not pod or pod["status"].get("phase") not in ("Succeeded", "Failed"):
        return None
    return pod


def test_test_pods_finish_as_their_annotations_say(cluster: Cluster, namespace: str) -> None:
    cluster.apply(_pod("passes", {}), namespace)
    cluster.apply(
        _pod(
            "fails",
            {
                "sim.helm-e2e.dev/exit-code": "3",
                "sim.helm-e2e.dev/duration": "2s",
                "sim.helm-e2e.dev/termination-message": '{"passed": 1, "failed": 2}',
            },
        ),
        namespace,
    )
    passed = wait_until(lambda: _terminated(cluster, namespace, "passes"), what="pod passes to finish")
    failed = wait_until(lambda: _terminated(cluster, namespace, "fails"), what="pod fails to finish")

    assert passed["status"]["phase"] == "Succeeded"
    assert passed["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert failed["status"]["phase"] == "Failed"
    term = failed["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 3
    assert term["reason"] == "Error"
    assert json.loads(term["message"]) == {"passed": 1, "failed": 2}
    assert term["startedAt"] <= term["finishedAt"]


def test_kubectl_logs_returns_the_served_log(cluster: Cluster, namespace: str, logdir: Path) -> None:
    cluster.serve_log(
        namespace=namespace, pod="talker", lines=["collected 3 items", "3 passed"], workdir=logdir
    )
    cluster.apply(_pod("talker", {}), namespace)
    wait_until(lambda: _terminated(cluster, namespace, "talker"), what="pod talker to finish")
    logs = wait_until(
        lambda: cluster.kubectl("logs", "-n", namespace, "talker", "-c", "main", check=False).stdout,
        what="kubectl logs",
    )
    assert logs.splitlines() == ["collected 3 items", "3 passed"]


def test_deleting_an_owner_garbage_collects_its_pod(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "configmap", "owner", "-n", namespace)
    owner_uid = cluster.get_json("configmap", "-n", namespace, "owner")["metadata"]["uid"]
    pod = json.loads(_pod("owned", {}))
    pod["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}
    ]
    cluster.apply(json.dumps(pod), namespace)
    wait_until(lambda: cluster.try_get_json("pod", "-n", namespace, "owned"), what="pod to exist")

    cluster.kubectl("delete", "configmap", "owner", "-n", namespace)
    wait_until(
        lambda: cluster.try_get_json("pod", "-n", namespace, "owned") is None,
        timeout=60,
        what="garbage collector to delete the owned pod",
    )
