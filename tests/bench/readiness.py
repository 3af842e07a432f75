"""`make bench-readiness`: what the readiness gate costs, on the local cluster. Prints numbers; never fails.

1. Per check of one waiting release: API calls and wall time of `RolloutReader.check` over the objects of
   a real release's manifest (the rollout fixture chart with N extra Deployments), median of a few checks.
2. Delay from the release's last Deployment becoming available to the first test pod: the operator waits
   on a held rollout; the bench releases it, polls the Deployment every 50 ms, and the test pod likewise.

`BENCH_QUICK=1`: fewer checks. Needs the local cluster (`make cluster-up`).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from harness import ROOT, Cluster, OperatorProcess, start_cluster
from kubernetes.config import new_client_from_config

from helm_e2e.clients.rollout import RolloutReader
from helm_e2e.core.plan.readiness import list_rollout_objects
from helm_e2e.core.sources.helm_secret import decode_release_secret

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
CHART = str(ROOT / "tests" / "data" / "charts" / "rollout")


def poll(probe: Callable[[], Any], *, timeout: float = 120, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout}s")


def check_cost(cluster: Cluster, namespace: str, extra: int) -> None:
    cluster.helm(
        "install", "cost", CHART, "-n", namespace, "--set", f"extra={extra}", "--set", "test.enabled=false"
    )
    secret = cluster.get_json("secret", "sh.helm.release.v1.cost.v1", "-n", namespace)
    release = decode_release_secret(secret)
    keys = list_rollout_objects(release.manifest, namespace=namespace)
    reader = RolloutReader(new_client_from_config(config_file=str(cluster.kubeconfig)))

    async def measure() -> list[float]:
        times = []
        for _ in range(3 if QUICK else 20):
            t0 = time.perf_counter()
            await reader.check(keys)
            times.append(time.perf_counter() - t0)
        return times

    times = asyncio.run(measure())
    calls = reader.calls / len(times)
    print(
        f"check of one waiting release ({len(keys)} objects): {calls:.0f} API calls (GETs), "
        f"median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms",
        flush=True,
    )


def start_delay(cluster: Cluster, namespace: str, workdir: Path) -> None:
    op = OperatorProcess(cluster, namespace, workdir).start()
    try:
        cluster.helm("install", "r", CHART, "-n", namespace, "--set", "web.unschedulable=true")
        poll(
            lambda: "WaitingForRollout" in json.dumps(cluster.try_get_json("e2erun", "r-1", "-n", namespace))
        )
        patch = [{"op": "remove", "path": "/spec/template/spec/nodeSelector"}]
        cluster.kubectl("patch", "deployment", "web", "-n", namespace, "--type=json", "-p", json.dumps(patch))

        def available() -> bool:
            status = cluster.get_json("deployment", "web", "-n", namespace).get("status", {})
            return status.get("availableReplicas") == 2 and status.get("replicas") == 2

        poll(available)
        t_ready = time.monotonic()
        selector = "app.kubernetes.io/managed-by=helm-e2e"
        poll(lambda: cluster.get_json("pods", "-n", namespace, "-l", selector)["items"])
        print(
            f"from the last Deployment available to the first test pod: {time.monotonic() - t_ready:.2f} s "
            "(polled every 50 ms; includes the poll's own latency)",
            flush=True,
        )
    finally:
        op.stop()


def main() -> None:
    cluster = start_cluster()
    cluster.apply_crds()
    print(f"bench-readiness{' (quick)' if QUICK else ''}", flush=True)
    namespace = f"bench-ready-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", namespace)
    try:
        for extra in (0, 10) if QUICK else (0, 10, 50):
            ns = f"{namespace}-{extra}"
            cluster.kubectl("create", "namespace", ns)
            try:
                check_cost(cluster, ns, extra)
            finally:
                cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        with tempfile.TemporaryDirectory(prefix="bench-readiness-") as tmp:
            start_delay(cluster, namespace, Path(tmp))
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


if __name__ == "__main__":
    main()
