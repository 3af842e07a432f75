"""Ship it: the operator chart installs and becomes available; the CLI gates a pipeline; metrics count."""

from __future__ import annotations

import json
import subprocess
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, Cluster, wait_until
from test_operator import wait_run

TINY = str(ROOT / "tests" / "data" / "charts" / "tiny")
CHART = str(ROOT / "charts" / "helm-e2e")


@pytest.fixture
def artifacts_volume(cluster: Cluster, namespace: str) -> Iterator[None]:
    """The chart's artifacts PVC needs a volume and this cluster has no provisioner: a PersistentVolume
    reserved for exactly that claim stands in for one (removed afterwards: it is cluster-scoped)."""
    name = f"pv-{namespace}"[:63]
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": f"/tmp/{namespace}"},
            "claimRef": {"namespace": namespace, "name": "ops-helm-e2e-artifacts"},
            "persistentVolumeReclaimPolicy": "Retain",
        },
    }
    cluster.apply(json.dumps(volume))
    yield
    cluster.kubectl("delete", "pv", name, "--wait=false", check=False)


@pytest.mark.usefixtures("artifacts_volume")
def test_operator_chart_installs_with_namespaced_rbac_and_becomes_available(
    cluster: Cluster, namespace: str, crds: Cluster
) -> None:
    cluster.helm(
        "install",
        "ops",
        CHART,
        "-n",
        namespace,
        "--set",
        f"watchNamespaces={{{namespace}}}",
        "--set",
        "image.repository=localhost/helm-e2e",
        "--set",
        "image.tag=dev",
        "--wait",
        "--timeout",
        "120s",
    )
    deployment = cluster.get_json("deployment", "-n", namespace, "ops-helm-e2e")
    assert deployment["status"]["availableReplicas"] == 2  # a leader and a standby (Lease election)
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    pod = cluster.get_json("pods", "-n", namespace, "-l", "app.kubernetes.io/name=helm-e2e")["items"][0]
    assert pod["spec"]["nodeName"].startswith("kwok-node-")
    container = pod["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HELM_E2E_WATCH_NAMESPACES"] == namespace
    assert cluster.try_get_json("role", "-n", namespace, "ops-helm-e2e") is not None
    assert cluster.try_get_json("clusterrole", "ops-helm-e2e") is None
    can = cluster.kubectl(
        "auth",
        "can-i",
        "create",
        "pods",
        "-n",
        namespace,
        f"--as=system:serviceaccount:{namespace}:ops-helm-e2e",
    ).stdout.strip()
    cannot = cluster.kubectl(
        "auth",
        "can-i",
        "list",
        "secrets",
        "-n",
        "default",
        f"--as=system:serviceaccount:{namespace}:ops-helm-e2e",
        check=False,
    ).stdout.strip()
    assert (can, cannot) == ("yes", "no")
    service = cluster.get_json("service", "-n", namespace, "ops-helm-e2e-metrics")
    assert service["spec"]["ports"][0]["port"] == 9090


def cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "helm-e2e"), *args],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_wait_junit_and_logs_gate_a_pipeline_with_clear_exit_codes(
    cluster: Cluster, namespace: str, start_operator: Any, logdir: Path
) -> None:
    start_operator()
    cluster.helm("install", "gate", TINY, "-n", namespace)
    ok = cli(cluster, "wait", "gate", "-n", namespace, "--timeout", "60", "--interval", "0.5")
    assert ok.returncode == 0, ok.stderr
    assert "gate-smoke: Succeeded" in ok.stdout
    assert "gate-1: Succeeded — 1/1 passed" in ok.stdout

    cluster.serve_log(namespace=namespace, pod="gate-2-gate-smoke", workdir=logdir, lines=["boom: 500"])
    cluster.helm("upgrade", "gate", TINY, "-n", namespace, "--set", "test.exitCode=4")
    failed = cli(cluster, "wait", "gate", "-n", namespace, "--timeout", "60", "--interval", "0.5")
    assert failed.returncode == 1, failed.stderr
    assert "exit code 4" in failed.stdout

    timeout = cli(cluster, "wait", "gate", "-n", namespace, "--revision", "99", "--timeout", "1")
    assert timeout.returncode == 2
    assert "timed out" in timeout.stderr
    missing = cli(cluster, "wait", "nope", "-n", namespace, "--timeout", "1")
    assert (missing.returncode, missing.stderr.strip()) == (
        2,
        f"helm-e2e: error: no Helm release nope in namespace {namespace}",
    )

    junit = cli(cluster, "junit", "gate-2", "-n", namespace)
    assert junit.returncode == 0
    suite = ET.fromstring(junit.stdout.split("?>", 1)[1])
    assert (suite.get("tests"), suite.get("failures")) == ("1", "1")

    logs = cli(cluster, "logs", "gate-2", "gate-smoke", "-n", namespace)
    assert logs.returncode == 0
    assert "terminated smoke - Error (exit 4)" in logs.stdout  # the diagnostics, then the log itself
    assert logs.stdout.strip().endswith("log of container smoke:\nboom: 500")
    unknown = cli(cluster, "logs", "gate-2", "nope", "-n", namespace)
    assert unknown.returncode == 2
    assert "tests: gate-smoke" in unknown.stderr
    absent = cli(cluster, "junit", "gate-9", "-n", namespace)
    assert absent.returncode == 2


def test_metrics_count_runs_tests_emails_and_trigger_latency(
    cluster: Cluster, namespace: str, start_operator: Any, unused_tcp_port: int
) -> None:
    start_operator(metrics_port=str(unused_tcp_port))
    cluster.helm("install", "m", TINY, "-n", namespace)
    wait_run(cluster, namespace, "m-1")

    def scrape() -> str | None:
        try:
            text: str = (
                urllib.request.urlopen(f"http://127.0.0.1:{unused_tcp_port}/metrics", timeout=5)
                .read()
                .decode()
            )
        except OSError:
            return None
        done = 'helm_e2e_runs_total{phase="Succeeded"}' in text and "helm_e2e_emails_total{" in text
        return text if done else None  # the outbox records its outcome on the pass after the result

    metrics = wait_until(scrape, what="metrics after the run and its outbox")
    assert 'helm_e2e_runs_total{phase="Succeeded"} 1.0' in metrics
    assert 'helm_e2e_tests_total{phase="Succeeded"} 1.0' in metrics
    assert 'helm_e2e_triggered_runs_total{trigger="install"} 1.0' in metrics
    assert "helm_e2e_trigger_latency_seconds_count 1.0" in metrics
    assert 'helm_e2e_emails_total{result="Disabled"} 1.0' in metrics
    assert "helm_e2e_watch_restarts_total 1.0" in metrics
