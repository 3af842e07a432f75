"""A run's reconciles read the run and its pods from the watch cache: a long test costs no API reads per
resync (before the cache, every pass - each second here - was a GET of the run and a LIST of its pods).

The operator's own requests are counted from its log (the Kubernetes client's request lines at DEBUG):
the apiserver's counters are everyone's, and a namespace being deleted beside this test LISTs pods too."""

from __future__ import annotations

import re
import time
from typing import Any

from harness import ROOT, Cluster, wait_until
from kubernetes import client as k8s
from kubernetes.config import new_client_from_config

TINY = str(ROOT / "tests" / "data" / "charts" / "tiny")
SECONDS = 8


def test_a_long_test_costs_a_fixed_number_of_reads_not_one_per_pass(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    op = start_operator(log_level="DEBUG")  # resync every second (the harness's setting)
    wait_until(lambda: "startup" in op.logs() and "succeeded" in op.logs(), what="operator up")
    custom = k8s.CustomObjectsApi(new_client_from_config(config_file=str(cluster.kubeconfig)))

    def finished() -> dict[str, Any] | None:
        try:
            run = custom.get_namespaced_custom_object(
                "helm-e2e.dev", "v1alpha1", namespace, "e2eruns", "web-1"
            )
        except k8s.ApiException:
            return None
        email = {c["type"]: c for c in run.get("status", {}).get("conditions", [])}.get("EmailSent")
        return run if email and run["status"].get("phase") == "Succeeded" else None

    started = time.monotonic()
    cluster.helm("install", "web", TINY, "-n", namespace, "--set", f"test.duration={SECONDS}s")
    wait_until(finished, timeout=90, interval=1.0, what="web-1 Succeeded and its outbox done")
    elapsed = time.monotonic() - started
    requests = re.findall(r'"GET (/\S+) HTTP', op.logs())
    gets = sum(
        path == f"/apis/helm-e2e.dev/v1alpha1/namespaces/{namespace}/e2eruns/web-1" for path in requests
    )
    pods = f"/api/v1/namespaces/{namespace}/pods?labelSelector="
    lists = sum(path.startswith(pods) and path.endswith("run%3Dweb-1") for path in requests)
    print(f"GET e2eruns {gets}, LIST pods {lists} in {elapsed:.0f} s")
    assert elapsed >= SECONDS  # the run was active for at least this many one-second resyncs
    # the intake's existence check, then one pass after the report's outcome (a settled run is not cached);
    # one more for a conflict
    assert gets <= 3, f"GET e2eruns {gets} in {elapsed:.0f} s"
    # the priming LIST, then the same pass
    assert lists <= 3, f"LIST pods {lists} in {elapsed:.0f} s"
