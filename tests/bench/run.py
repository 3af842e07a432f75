"""`make bench`: throughput and memory of the pure core. Prints numbers; never fails on timing."""

from __future__ import annotations

import base64
import gzip
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from helm_encoding import helm_release_doc, helm_secret

from helm_e2e.core.models import Suite
from helm_e2e.core.plan import build_plan
from helm_e2e.core.release import decode_release_blob, decode_release_secret
from helm_e2e.core.report import render_report
from helm_e2e.core.results import decide_next_step


def measure(name: str, fn: Callable[[], Any], *, repeat: int = 20, unit_mib: float | None = None) -> None:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    median = statistics.median(times)
    rate = f"  {unit_mib / median:8.1f} MiB/s" if unit_mib else ""
    print(f"{name:<48} median {median * 1000:8.2f} ms  peak {peak / 2**20:7.2f} MiB{rate}")


def big_release() -> dict[str, Any]:
    doc = helm_release_doc()
    doc["manifest"] = "".join(
        f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}}}\n" for i in range(20000)
    )
    doc["config"] = {f"key{i}": {"nested": list(range(20))} for i in range(2000)}
    return doc


def main() -> None:
    doc = big_release()
    raw = json.dumps(doc).encode()
    secret = helm_secret(doc)
    print(f"release JSON {len(raw) / 2**20:.2f} MiB, gzip {len(gzip.compress(raw)) / 2**20:.2f} MiB")
    measure(
        "decode_release_secret (large, gzip)",
        lambda: decode_release_secret(secret),
        unit_mib=len(raw) / 2**20,
    )
    bomb = base64.b64encode(gzip.compress(b"\0" * (256 * 2**20)))
    measure("decode gzip bomb 256 MiB (refused at 16 MiB)", lambda: _refuse(bomb), repeat=3)
    structure = base64.b64encode(gzip.compress(b"[" + b"{}," * (5 * 2**20) + b"{}]"))
    measure("decode JSON bomb 15 MiB of {} (refused by count)", lambda: _refuse(structure), repeat=3)
    release = decode_release_secret(secret)
    suites = [
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
                    for j in range(5)
                ]
            },
        )
        for i in range(20)
    ]
    measure(
        "build_plan (2 hooks + 20 suites x 5 tests)",
        lambda: build_plan(
            release,
            suites=suites,
            image_tag_values_path="image.tag",
            run_chart_hooks=True,
            default_timeout_seconds=60,
        ),
    )
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
    from test_results import (
        T0,
        make_run,
        pod,
        pod_names,
    )

    names = [f"t{i}" for i in range(100)]
    run = make_run(*names)
    pods = {n: pod("Succeeded", exit_code=0) for n in names}
    measure(
        "decide_next_step (100 finished tests)",
        lambda: decide_next_step(run, pods, pod_names=pod_names(run), logs={}, now=T0),
    )
    from conftest import build_run as report_run

    measure("render_report (3 tests, html + text)", lambda: render_report(report_run(), cluster="prod"))


def _refuse(blob: bytes) -> None:
    try:
        decode_release_blob(blob, namespace="bench")
    except Exception:
        return


if __name__ == "__main__":
    main()
