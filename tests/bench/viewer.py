"""`make bench` (viewer): `helm-e2e ui` over a namespace with 10,000 E2ERuns. Prints numbers; never fails.

10,000 runs (BENCH_QUICK=1: 300) of 100 releases are created with their status (Succeeded, every seventh
Failed) in a fresh namespace on the local cluster, then `helm-e2e ui` runs as a subprocess and each API
request below is timed (median and p95 over the repeats), with the first runs page as Debian's headless
Chromium renders it (navigation until the table's rows are in the DOM). The namespace is deleted after.
Needs the local cluster (`make cluster-up`) and /usr/bin/chromium.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from harness import ROOT, Cluster, free_tcp_port, start_cluster, wait_until
from kubernetes import client, config

from helm_e2e.core.model import names
from helm_e2e.core.model.release import Trigger
from helm_e2e.core.model.run import ReleaseRef, RunSpec, TestSource
from helm_e2e.core.model.run_codec import build_run_body

QUICK = os.environ.get("BENCH_QUICK") == "1"
RUNS = 300 if QUICK else 10_000
RELEASES = 10 if QUICK else 100
REPEAT = 3 if QUICK else 20
HELM_E2E = str(ROOT / ".venv" / "bin" / "helm-e2e")


def run_body(namespace: str, release: str, revision: int) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = RunSpec(
        release=ReleaseRef(
            name=release, namespace=namespace, revision=revision, chart="bench", chart_version="1.0.0",
            image_tag=f"1.{revision}.0", trigger=Trigger.UPGRADE,
        ),
        tests=[TestSource(name="smoke", source="hook", timeout_seconds=60)],
    )  # fmt: skip
    failed = revision % 7 == 0
    status = {
        "phase": "Failed" if failed else "Succeeded",
        "startedAt": "2026-12-01T10:00:00Z",
        "completedAt": f"2026-12-01T10:0{revision % 10}:30Z",
        "summary": {"total": 1, "passed": 0 if failed else 1, "failed": int(failed)},
        "tests": [
            {"name": "smoke", "phase": "Failed" if failed else "Succeeded", "exitCode": int(failed),
             "logTail": "collected 12 items\n" + "." * 200}
        ],
    }  # fmt: skip
    return build_run_body(spec, name=f"{release}-{revision}", namespace=namespace), status


def create_runs(cluster: Cluster, namespace: str) -> float:
    """RUNS E2ERuns with their status, 32 requests in flight; the seconds it took."""
    api = client.CustomObjectsApi(config.new_client_from_config(str(cluster.kubeconfig)))
    api.api_client.configuration.connection_pool_maxsize = 32
    per_release = RUNS // RELEASES

    def one(i: int) -> None:
        body, status = run_body(namespace, f"rel-{i % RELEASES}", i // RELEASES + 1)
        name = body["metadata"]["name"]
        api.create_namespaced_custom_object(names.GROUP, names.VERSION, namespace, names.RUNS, body)
        api.patch_namespaced_custom_object_status(
            names.GROUP, names.VERSION, namespace, names.RUNS, name, {"status": status}
        )

    started = time.monotonic()
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(one, range(RELEASES * per_release)))
    return time.monotonic() - started


def timed(url: str) -> tuple[float, int]:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=60) as reply:  # noqa: S310 - the viewer on 127.0.0.1
        size = len(reply.read())
    return (time.monotonic() - started) * 1000, size


def report(label: str, url: str) -> None:
    times, size = [], 0
    for _ in range(REPEAT):
        ms, size = timed(url)
        times.append(ms)
    p95 = sorted(times)[max(0, round(len(times) * 0.95) - 1)]
    print(f"  {label:<44} median {statistics.median(times):7.1f} ms  p95 {p95:7.1f} ms  ({size} bytes)")


def browser_render(url: str, row: str) -> None:
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = browser.new_page()
        times = []
        for _ in range(REPEAT):
            started = time.monotonic()
            page.goto(url)
            page.wait_for_selector(row)
            times.append((time.monotonic() - started) * 1000)
        browser.close()
    print(f"  {'runs page in Chromium (navigation → rows)':<44} median {statistics.median(times):7.1f} ms")


def measure(url: str, namespace: str) -> None:
    first = f"{url}/api/v1/runs?namespace={namespace}&limit=50"
    with urllib.request.urlopen(first, timeout=60) as reply:  # noqa: S310
        cursor = json.loads(reply.read())["continue"]
    report("GET /api/v1/runs (cluster-wide, limit 50)", f"{url}/api/v1/runs?limit=50")
    report("GET /api/v1/runs?namespace (limit 50)", first)
    report("GET /api/v1/runs, the next page (continue)", f"{first}&continue={cursor}")
    report("GET /api/v1/runs?release=rel-7 (limit 50)", f"{first}&release=rel-7")
    report("GET /api/v1/runs?phase=Failed (scan ≤ 10 pages)", f"{first}&phase=Failed")
    report(
        f"GET release history ({RUNS // RELEASES} runs, last 30)",
        f"{url}/api/v1/namespaces/{namespace}/releases/rel-7",
    )
    report("GET one run with its Events", f"{url}/api/v1/namespaces/{namespace}/runs/rel-7-1")
    report("GET / (the page shell)", f"{url}/")
    browser_render(f"{url}/?namespace={namespace}", "#runs-body tr[data-run]")


def main() -> None:
    cluster = start_cluster()
    cluster.apply_crds()
    namespace = f"bench-viewer-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", namespace)
    log = Path(f"/tmp/{namespace}-ui.log")
    proc = None
    try:
        took = create_runs(cluster, namespace)
        print(f"viewer bench: {RUNS} E2ERuns of {RELEASES} releases created with status in {took:.1f}s")
        port = free_tcp_port()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [HELM_E2E, "ui", "--port", str(port)], env=cluster.env, stdout=out, stderr=out
            )
        wait_until(lambda: "serving" in log.read_text(), timeout=30, what="helm-e2e ui")
        print(f"per request against `helm-e2e ui` ({REPEAT} repeats; the namespace holds {RUNS} runs):")
        measure(f"http://127.0.0.1:{port}", namespace)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=15)
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


if __name__ == "__main__":
    main()
