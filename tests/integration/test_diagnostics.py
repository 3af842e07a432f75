"""Failure diagnostics against the real apiserver (kwok): a test that did not pass keeps its pod's container
states and Kubernetes Events in status.tests[].diagnostics, and the container whose log explains it.

kwok always completes init containers, and a pod it does not run is never touched by it: the init-container
and can-never-start cases use a test pod that no node can take (the real scheduler then reports
FailedScheduling) and write its status through the API, as a kubelet would.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import ROOT, Cluster, wait_until
from test_operator import wait_run

TINY = str(ROOT / "tests" / "data" / "charts" / "tiny")


def unschedulable_chart(tmp_path: Path) -> str:
    """A chart whose one test hook has a jwt-setup init container and a node selector no node matches."""
    chart = tmp_path / "unschedulable"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: unschedulable\nversion: 0.1.0\n")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "{{ .Release.Name }}-e2e", "annotations": {"helm.sh/hook": "test"}},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"helm-e2e.dev/node": "nowhere"},
            "initContainers": [{"name": "jwt-setup", "image": "localhost/jwt-setup:dev"}],
            "containers": [{"name": "pytest", "image": "localhost/pytest-runner:dev"}],
        },
    }
    (chart / "templates" / "test-pod.yaml").write_text(json.dumps(pod))
    return str(chart)


def pod_event(cluster: Cluster, namespace: str, pod: dict[str, Any], *, reason: str, message: str) -> None:
    """Post a real core/v1 Event about the pod through the API."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta = pod["metadata"]
    cluster.kubectl(
        "create",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{meta['name']}.{secrets.token_hex(4)}", "namespace": namespace},
                "involvedObject": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "namespace": namespace,
                    "uid": meta["uid"],
                },
                "type": "Warning",
                "reason": reason,
                "message": message,
                "count": 3,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": {"component": "kubelet"},
            }
        ),
    )


def wait_pod(cluster: Cluster, namespace: str, run: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        pods = cluster.get_json("pods", "-n", namespace, "-l", f"helm-e2e.dev/run={run}")["items"]
        return pods[0] if pods else None

    return wait_until(probe, timeout=60, what=f"the test pod of {run}")


def wait_event(cluster: Cluster, namespace: str, pod: str, reason: str) -> None:
    def probe() -> bool:
        items = cluster.get_json("events", "-n", namespace, "--field-selector", f"involvedObject.name={pod}")
        return any(e.get("reason") == reason for e in items["items"])

    wait_until(probe, timeout=60, what=f"a {reason} Event about {pod}")


def set_pod_status(cluster: Cluster, namespace: str, pod: str, status: dict[str, Any]) -> None:
    cluster.kubectl(
        "patch",
        "pod",
        pod,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def container_status(name: str, image: str, state: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "image": image, "imageID": "", "ready": False, "restartCount": 0, "state": state}


def test_a_failing_test_keeps_its_container_states_and_its_pods_events(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    start_operator()
    cluster.helm(
        "install", "web", TINY, "-n", namespace, "--set", "test.exitCode=3", "--set", "test.duration=6s"
    )
    pod = wait_pod(cluster, namespace, "web-1")
    wait_until(lambda: pod_phase(cluster, namespace, pod) == "Running", timeout=60, what="the pod running")
    pod = cluster.get_json("pod", "-n", namespace, pod["metadata"]["name"])
    pod_event(cluster, namespace, pod, reason="Unhealthy", message="Readiness probe failed: 503")
    run = wait_run(cluster, namespace, "web-1")

    assert run["status"]["phase"] == "Failed"
    test = run["status"]["tests"][0]
    assert test["logContainer"] == "smoke"
    [container] = test["diagnostics"]["containers"]
    assert (container["name"], container["state"], container["exitCode"]) == ("smoke", "terminated", 3)
    assert container["reason"] == "Error"
    events = test["diagnostics"]["events"]
    assert ("Warning", "Unhealthy", "Readiness probe failed: 503", 3) in [
        (e["type"], e["reason"], e["message"], e.get("count")) for e in events
    ]
    assert "Created" in [e["reason"] for e in events]  # kwok's own Event about the pod
    assert all(
        e["reason"] not in ("Started", "Completed", "TestFailed") for e in events
    )  # the run's, not the pod's


def pod_phase(cluster: Cluster, namespace: str, pod: dict[str, Any]) -> str:
    found = cluster.try_get_json("pod", "-n", namespace, pod["metadata"]["name"])
    return str((found or {}).get("status", {}).get("phase", ""))


def test_an_init_container_failure_names_the_init_container_and_keeps_the_schedulers_event(
    cluster: Cluster, namespace: str, start_operator: Any, tmp_path: Path
) -> None:
    start_operator()
    cluster.helm("install", "jwt", unschedulable_chart(tmp_path), "-n", namespace)
    pod = wait_pod(cluster, namespace, "jwt-1")
    name = pod["metadata"]["name"]
    wait_event(cluster, namespace, name, "FailedScheduling")  # the real scheduler's
    terminated = {"exitCode": 2, "reason": "Error", "message": "HELM_E2E_JWT_AUDIENCE is empty"}
    set_pod_status(
        cluster,
        namespace,
        name,
        {
            "phase": "Failed",
            "initContainerStatuses": [
                container_status("jwt-setup", "localhost/jwt-setup:dev", {"terminated": terminated})
            ],
            "containerStatuses": [
                container_status(
                    "pytest", "localhost/pytest-runner:dev", {"waiting": {"reason": "PodInitializing"}}
                )
            ],
        },
    )
    run = wait_run(cluster, namespace, "jwt-1")

    test = run["status"]["tests"][0]
    assert (test["phase"], test["reason"], test["exitCode"]) == ("Error", "InitContainerFailed", 2)
    assert test["logContainer"] == "jwt-setup"
    init, main = test["diagnostics"]["containers"]
    assert (init["name"], init["init"], init["state"], init["exitCode"]) == (
        "jwt-setup",
        True,
        "terminated",
        2,
    )
    assert init["message"] == "HELM_E2E_JWT_AUDIENCE is empty"
    assert (main["name"], main["state"], main["reason"]) == ("pytest", "waiting", "PodInitializing")
    assert "FailedScheduling" in [e["reason"] for e in test["diagnostics"]["events"]]

    shown = cli_logs(cluster, namespace, "jwt-1", test["name"])
    assert shown.index("terminated jwt-setup (init) - Error (exit 2)") < shown.index(
        "log of container jwt-setup"
    )


def cli_logs(cluster: Cluster, namespace: str, run: str, test: str) -> str:
    """`helm-e2e logs RUN TEST`, as a user runs it with their kubeconfig."""
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "helm-e2e"), "logs", run, test, "-n", namespace],
        capture_output=True,
        text=True,
        env=cluster.env,
        timeout=60,
        check=True,
    )
    return proc.stdout


def test_a_pod_that_can_never_start_keeps_its_waiting_reason_and_events(
    cluster: Cluster, namespace: str, start_operator: Any, tmp_path: Path
) -> None:
    start_operator()
    cluster.helm("install", "never", unschedulable_chart(tmp_path), "-n", namespace)
    pod = wait_pod(cluster, namespace, "never-1")
    pod_event(cluster, namespace, pod, reason="ErrImageNeverPull", message="Container image is not present")
    waiting = {
        "reason": "ErrImageNeverPull",
        "message": 'Container image "localhost/jwt-setup:dev" is not present',
    }
    set_pod_status(
        cluster,
        namespace,
        pod["metadata"]["name"],
        {
            "phase": "Pending",
            "initContainerStatuses": [
                container_status("jwt-setup", "localhost/jwt-setup:dev", {"waiting": waiting})
            ],
        },
    )
    run = wait_run(cluster, namespace, "never-1")

    test = run["status"]["tests"][0]
    assert (test["phase"], test["reason"]) == ("Error", "ErrImageNeverPull")
    [init] = test["diagnostics"]["containers"]
    assert (init["name"], init["init"], init["state"], init["reason"]) == (
        "jwt-setup",
        True,
        "waiting",
        "ErrImageNeverPull",
    )
    assert "ErrImageNeverPull" in [e["reason"] for e in test["diagnostics"]["events"]]
    wait_until(lambda: pod_phase(cluster, namespace, pod) == "", timeout=60, what="the stuck pod deleted")
