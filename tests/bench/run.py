"""`make bench`: throughput and memory of the pure core. Prints numbers; never fails on timing.

`BENCH_QUICK=1` (`make bench-quick`, part of `make test`) runs every benchmark once on the same inputs, so
CI notices when the bench no longer runs against the core's current API; its numbers mean little.
The inputs are built here, not imported from test modules: tests may change their helpers freely.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from helm_e2e.core.lifecycle.decide import Observed, Policy, Replanned, decide_run
from helm_e2e.core.model.release import Trigger
from helm_e2e.core.model.run import ReleaseRef, Run, RunSpec, TestSource
from helm_e2e.core.model.run_status import RunPhase, RunStatus, Summary, TestPhase, TestResult
from helm_e2e.core.model.suite import Suite
from helm_e2e.core.outcomes.junit_report import build_junit_xml
from helm_e2e.core.outcomes.report import render_report
from helm_e2e.core.plan.build import build_plan
from helm_e2e.core.results.run_tests import TestObjects, decide_next_step
from helm_e2e.core.sources.helm_secret import (
    MAX_DECOMPRESSED_BYTES,
    decode_release_blob,
    decode_release_secret,
)
from helm_e2e.errors import ReleaseDecodeError

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def measure(name: str, fn: Callable[[], object], *, repeat: int = 20, mib: float | None = None) -> None:
    """Median wall time over `repeat` calls (one when quick), then the peak memory of one more call."""
    times = []
    for _ in range(1 if QUICK else repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    median = statistics.median(times)
    rate = f"  {mib / median:8.1f} MiB/s" if mib else ""
    print(f"{name:<48} median {median * 1000:8.2f} ms  peak {peak / 2**20:7.2f} MiB{rate}", flush=True)


def build_release_secret(doc: dict[str, Any]) -> dict[str, Any]:
    """A release exactly as Helm stores it: JSON → gzip → base64 (Helm) → base64 (the Secret's data)."""
    helm_blob = base64.b64encode(gzip.compress(json.dumps(doc).encode()))
    return {
        "metadata": {
            "name": f"sh.helm.release.v1.{doc['name']}.v{doc['version']}",
            "namespace": "shop",
            "labels": {
                "owner": "helm",
                "name": doc["name"],
                "version": str(doc["version"]),
                "status": "deployed",
            },
        },
        "type": "helm.sh/release.v1",
        "data": {"release": base64.b64encode(helm_blob).decode()},
    }


def build_big_release_doc() -> dict[str, Any]:
    """web r3: 20,000 manifests, 2,000 values and one test hook (a release near Helm's 1 MiB limit)."""
    hook = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-smoke\nspec:\n  containers:\n  - name: t\n"
    return {
        "name": "web",
        "namespace": "shop",
        "version": 3,
        "info": {
            "status": "deployed",
            "first_deployed": "2026-11-25T10:00:00.123456789Z",
            "last_deployed": "2026-11-25T10:05:00.5Z",
            "description": "Upgrade complete",
        },
        "chart": {
            "metadata": {"name": "web-chart", "version": "1.2.3", "appVersion": "2.0.0"},
            "values": {"image": {"repository": "r", "tag": ""}},
        },
        "config": {"image": {"tag": "2.0.1"}} | {f"key{i}": {"nested": list(range(20))} for i in range(2000)},
        "manifest": "".join(
            f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}}}\n" for i in range(20000)
        ),
        "hooks": [{"name": "web-smoke", "kind": "Pod", "events": ["test"], "manifest": hook}],
    }


def build_suites(count: int, tests_per_suite: int) -> list[Suite]:
    return [
        Suite(
            name=f"s{i}",
            namespace="shop",
            spec={
                "tests": [
                    {
                        "name": f"t{j}",
                        "template": {
                            "containers": [
                                {
                                    "name": "c",
                                    "image": "r/e2e:{{ image_tag }}",
                                    "args": ["{{ release.name }}"] * 5,
                                }
                            ]
                        },
                    }
                    for j in range(tests_per_suite)
                ]
            },
        )
        for i in range(count)
    ]


def build_run(test_count: int, *, finished: bool) -> Run:
    """web r2 with `test_count` tests; finished = Succeeded with every result recorded, else Running."""
    release = ReleaseRef(
        name="web", namespace="shop", revision=2, chart="web", chart_version="1.0.0", trigger=Trigger.UPGRADE
    )
    names = [f"t{i}" for i in range(test_count)]
    spec = RunSpec(
        release=release, tests=[TestSource(name=n, source="hook", timeout_seconds=60) for n in names]
    )
    if not finished:
        return Run(name="web-2", namespace="shop", uid="u1", spec=spec, status=RunStatus())
    results = [
        TestResult(
            name=n,
            pod=f"web-2-{n}",
            phase=TestPhase.SUCCEEDED,
            exit_code=0,
            reason="Completed",
            duration_seconds=3.0,
            log_tail="collected 5 items\n.....\n5 passed in 1.2s\n" * 20,
        )
        for n in names
    ]
    status = RunStatus(
        phase=RunPhase.SUCCEEDED,
        started_at=T0,
        completed_at=T0 + timedelta(seconds=42),
        tests=results,
        summary=Summary(total=test_count, passed=test_count),
    )
    return Run(name="web-2", namespace="shop", uid="u1", spec=spec, status=status)


def build_succeeded_pod() -> dict[str, Any]:
    started, finished = T0.isoformat(), (T0 + timedelta(seconds=3)).isoformat()
    terminated = {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": finished}
    return {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "main"}]},
        "status": {
            "phase": "Succeeded",
            "startTime": started,
            "containerStatuses": [{"name": "main", "state": {"terminated": terminated}}],
        },
    }


def refuse_bomb(blob: bytes) -> None:
    try:
        decode_release_blob(blob, namespace="bench")
    except ReleaseDecodeError:
        return
    raise AssertionError("a gzip bomb was decoded instead of refused")


def main() -> None:
    print(f"bench ({'quick: one call each, numbers are not meaningful' if QUICK else 'median of 20'})")
    doc = build_big_release_doc()
    raw = json.dumps(doc).encode()
    secret = build_release_secret(doc)
    print(f"release JSON {len(raw) / 2**20:.2f} MiB, gzip {len(gzip.compress(raw)) / 2**20:.2f} MiB")
    measure(
        "decode_release_secret (large, gzip)", lambda: decode_release_secret(secret), mib=len(raw) / 2**20
    )

    bomb_mib = 8 * MAX_DECOMPRESSED_BYTES // 2**20
    bomb = base64.b64encode(gzip.compress(b"\0" * (bomb_mib * 2**20)))
    limit = MAX_DECOMPRESSED_BYTES // 2**20
    measure(f"decode gzip bomb {bomb_mib} MiB (refused at {limit} MiB)", lambda: refuse_bomb(bomb), repeat=3)
    structure = base64.b64encode(gzip.compress(b"[" + b"{}," * (5 * 2**20) + b"{}]"))
    measure("decode JSON bomb 15 MiB of {} (refused by count)", lambda: refuse_bomb(structure), repeat=3)

    release = decode_release_secret(secret)
    suites = build_suites(20, 5)
    measure(
        "build_plan (1 hook + 20 suites x 5 tests)",
        lambda: build_plan(
            release,
            suites=suites,
            image_tag_values_path="image.tag",
            run_chart_hooks=True,
            default_timeout_seconds=60,
        ),
    )

    running = build_run(100, finished=False)
    pods = TestObjects(pods={t.name: build_succeeded_pod() for t in running.spec.tests})
    pod_names = {t.name: f"{running.name}-{t.name}" for t in running.spec.tests}
    measure(
        "decide_next_step (100 finished tests)",
        lambda: decide_next_step(running, pods, pod_names=pod_names, logs={}, now=T0),
    )
    policy = Policy(
        resync_seconds=5,
        pod_ttl_seconds=3600,
        mail_to=("ops@example.com",),
        report_cancelled=True,
        smtp_enabled=True,
        mail_retry_base_seconds=2,
    )
    observed = Observed(now=T0, objects=pods, logs={}, plan=Replanned(tests={}))
    measure(
        "decide_run (the whole lifecycle, 100 finished tests)", lambda: decide_run(running, observed, policy)
    )

    finished = build_run(100, finished=True)
    measure("render_report (100 tests, html + text)", lambda: render_report(finished, cluster="prod"))
    measure("build_junit_xml (100 tests)", lambda: build_junit_xml(finished))


if __name__ == "__main__":
    main()
