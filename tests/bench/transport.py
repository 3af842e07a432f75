"""`make bench-transport`: the operator's CPU per API request, by transport. Prints numbers; never fails.

A run's own requests (create the E2ERun, write its status, post an Event, read a log, list the release's
runs, delete) are sent by `clients/kube_rest.py`: in the operator with aiohttp on its event loop (`LoopRest`),
elsewhere with the kubernetes client in a worker thread (`ThreadRest`). Each kind of request is sent
`BENCH_TRANSPORT_N` times (200; `BENCH_QUICK=1`: 10) one after another against the local cluster, through the
same Kube adapter methods, and this process's CPU time (user + system, its threads included) is divided by
the count. The first round of each transport is a warm-up and is not printed.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from harness import Cluster, start_cluster
from kubernetes.config import new_client_from_config

from helm_e2e.clients.kube import Kube, ObjectRef
from helm_e2e.clients.kube_rest import LoopRest
from helm_e2e.core.model import names

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
N = 10 if QUICK else int(os.environ.get("BENCH_TRANSPORT_N", "200"))


def run_body(namespace: str, name: str) -> dict[str, object]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.RUN_KIND,
        "metadata": {"name": name, "namespace": namespace, "labels": {names.RELEASE_LABEL: "web"}},
        "spec": {
            "release": {
                "name": "web",
                "namespace": namespace,
                "revision": 1,
                "chart": "tiny",
                "trigger": "install",
            },
            "tests": [{"name": "smoke", "source": "hook", "timeoutSeconds": 60}],
        },
    }


async def cpu_ms_per_call(call: Callable[[int], Awaitable[object]]) -> float:
    started = time.process_time()
    for i in range(N):
        await call(i)
    return 1000 * (time.process_time() - started) / N


async def one_round(kube: Kube, namespace: str, prefix: str) -> dict[str, float]:
    def ref(i: int) -> ObjectRef:
        return ObjectRef(names.RUN_KIND, names.API_VERSION, namespace, f"{prefix}-{i}", "uid")

    status = {"phase": "Running", "message": "x" * 100}
    return {
        "POST e2eruns": await cpu_ms_per_call(
            lambda i: kube.create_run(run_body(namespace, f"{prefix}-{i}"))
        ),
        "PATCH status": await cpu_ms_per_call(
            lambda i: kube.patch_run_status(namespace, f"{prefix}-{i}", status)
        ),
        "POST events": await cpu_ms_per_call(
            lambda i: kube.post_event(ref(i), type="Normal", reason="Bench", message="m")
        ),
        "GET log (404)": await cpu_ms_per_call(
            lambda i: kube.read_log(namespace, "none", "c", limit_bytes=1000)
        ),
        "LIST e2eruns": await cpu_ms_per_call(lambda i: kube.list_runs(namespace, "web")),
        "DELETE e2eruns": await cpu_ms_per_call(lambda i: kube.delete_run(namespace, f"{prefix}-{i}")),
    }


async def bench(cluster: Cluster, namespace: str) -> None:
    for label in ("thread", "loop", "thread", "loop"):
        api = new_client_from_config(config_file=str(cluster.kubeconfig))
        rest = LoopRest(api.configuration, timeout_seconds=30) if label == "loop" else None
        kube = Kube(api, timeout_seconds=30, rest=rest)
        warm = await one_round(kube, namespace, f"w{secrets.token_hex(2)}")
        got = await one_round(kube, namespace, f"m{secrets.token_hex(2)}")
        await kube.rest.close()
        del warm
        each = ", ".join(f"{k} {v:.2f}" for k, v in got.items())
        mean = sum(got.values()) / len(got)
        print(f"  {label:6} mean {mean:.2f} ms CPU per request ({each})", flush=True)


def main() -> None:
    cluster = start_cluster()
    cluster.apply_crds()
    namespace = f"transport-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", namespace)
    print(f"CPU per request, {N} of each kind, one at a time (process CPU: user + system, threads included):")
    try:
        asyncio.run(bench(cluster, namespace))
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


if __name__ == "__main__":
    main()
