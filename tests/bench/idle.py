"""`make bench-idle`: the operator's memory at rest. Prints numbers; never fails.

1. Imports: a fresh interpreter's VmRSS before and after `import helm_e2e.runtime.main` (what `helm-e2e run`
   imports before it reads its settings), and which of the stacks a run only needs later are loaded by then
   (the report and mail stack, the artifact store and server, the viewer).
2. At rest (skipped with `BENCH_QUICK=1`, which needs no cluster): `helm-e2e run` out of cluster against the
   local cluster, watching a fresh namespace with no releases, artifacts off; after kopf is up and
   `BENCH_IDLE_SECONDS` (20) more, VmRSS and VmHWM of the operator process, and apart from it those of its
   children (the decode sandbox's fork server and workers).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from harness import ROOT, Cluster, OperatorProcess, start_cluster, wait_until

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "20"))
# what a run does not need at its start: loaded only when a report, an artifact or the viewer is due
DEFERRED = (
    "jinja2",
    "aiosmtplib",
    "obstore",
    "jwt",
    "tarfile",
    "helm_e2e.artifacts.service",
    "helm_e2e.viewer",
)
TINY = str(ROOT / "tests" / "data" / "charts" / "tiny")
FINAL = {"Succeeded", "Failed", "Error", "NoTests", "Cancelled", "Superseded"}
IMPORTS = f"""
import json, sys
def rss():
    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS:')) / 1024
before = rss()
import helm_e2e.runtime.main
print(json.dumps({{"before": before, "after": rss(), "loaded": [m for m in {DEFERRED!r} if m in sys.modules]}}))
"""


def status_mib(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def children(pid: int) -> list[int]:
    """Every descendant of `pid` (the sandbox's fork server and its workers)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *children(int(child))]
    return found


def imports() -> None:
    out = subprocess.run([sys.executable, "-c", IMPORTS], check=True, capture_output=True, text=True).stdout
    got = json.loads(out)
    print(
        f"  import helm_e2e.runtime.main: VmRSS {got['before']:.1f} -> {got['after']:.1f} MiB "
        f"(+{got['after'] - got['before']:.1f}); deferred stacks loaded: {', '.join(got['loaded']) or 'none'}",
        flush=True,
    )


def print_tree(pid: int, when: str) -> None:
    own = status_mib(pid)
    print(f"  operator {when}: VmRSS {own['VmRSS']:.1f} MiB, VmHWM {own['VmHWM']:.1f} MiB", flush=True)
    for child in children(pid):
        got, name = status_mib(child), Path(f"/proc/{child}/comm").read_text().strip()
        print(
            f"    child {child} ({name}): VmRSS {got['VmRSS']:.1f} MiB, VmHWM {got['VmHWM']:.1f} MiB",
            flush=True,
        )


def run_phase(cluster: Cluster, namespace: str, name: str) -> str:
    body = cluster.try_get_json("e2erun", name, "-n", namespace) or {}
    return str(body.get("status", {}).get("phase", ""))


def at_rest() -> None:
    cluster = start_cluster()
    cluster.apply_crds()
    namespace = f"bench-idle-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", namespace)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
            op = OperatorProcess(cluster, namespace, Path(tmp)).start()
            try:
                wait_until(
                    lambda: "startup" in op.logs() and "succeeded" in op.logs(), timeout=60, what="kopf up"
                )
                time.sleep(IDLE_SECONDS)
                op.assert_alive()
                assert op.proc is not None
                print_tree(op.proc.pid, f"at rest ({IDLE_SECONDS:g} s after kopf is up, no releases)")
                # then one release and its run: what the first run loads (the built-in APIs' models)
                cluster.helm("install", "r", TINY, "-n", namespace)
                wait_until(lambda: run_phase(cluster, namespace, "r-1") in FINAL, timeout=120, what="run r-1")
                time.sleep(IDLE_SECONDS)
                print_tree(
                    op.proc.pid,
                    f"{IDLE_SECONDS:g} s after one release's run ({run_phase(cluster, namespace, 'r-1')})",
                )
            finally:
                op.stop()
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def main() -> None:
    print(f"bench-idle{' (quick: imports only)' if QUICK else ''}", flush=True)
    imports()
    if not QUICK:
        at_rest()


if __name__ == "__main__":
    main()
