"""`make bench-start-live`: does new work wait behind old? Live revisions during an operator's start beside a
backlog of N x H Helm Secrets (`BENCH_SCALE_N`, 1,000; `BENCH_SCALE_H`, 10). Prints numbers; never fails.

The backlog is written directly as Helm release Secrets (as `make bench-scale` does; deployed an hour ago, so
none is due a run): it is what a fresh operator lists and classifies at start. Beside it, `BENCH_LIVE_N` (20)
small real releases (`live-NN`, installed before the operator starts, so the start also has their first
runs to make).

1. **Trigger latency during the start**: the operator starts, and once kopf is up the live releases are
   upgraded one after another (real `helm upgrade`), while the start's listing is still being worked off.
   Printed: when the listing settled (the operator's CPU went quiet), and each revision's latency from its
   `deployed` event to its E2ERun's ADDED event (p50/p99/max), seen by raw watches in this process.
2. **kill -9 during the start**: for `BENCH_KILL_SECONDS` (30) the operator is SIGKILLed every 1.5 s and
   started again (each start lists the whole backlog again) while the live releases are upgraded once more,
   one every 1.5 s. Then the last operator is left alone: printed is how many of those revisions have a
   finished run 90 s after the last upgrade, and when the last one finished.

`BENCH_QUICK=1` (CI's `make bench-quick`): N = 50, H = 2, 4 live releases, 6 s of kills.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from harness import Cluster, OperatorProcess, start_cluster, wait_until
from scale import TINY, Watcher, percentile, print_intake, settle, upgrade, write_history

QUICK = os.environ.get("BENCH_QUICK") == "1"
BACKLOG = int(os.environ.get("BENCH_SCALE_N", "50" if QUICK else "1000"))
HISTORY = int(os.environ.get("BENCH_SCALE_H", "2" if QUICK else "10"))
LIVE = int(os.environ.get("BENCH_LIVE_N", "4" if QUICK else "20"))
KILL_SECONDS = float(os.environ.get("BENCH_KILL_SECONDS", "6" if QUICK else "30"))
KILL_EVERY = 1.5
PENDING_AFTER = 90.0  # the yardstick: still not finished this long after the last upgrade


def live_names() -> list[str]:
    return [f"live-{i:02d}" for i in range(LIVE)]


def trigger_latency_during_start(cluster: Cluster, namespace: str, workdir: Path) -> None:
    op = OperatorProcess(cluster, namespace, workdir).start()
    try:
        with Watcher(cluster, namespace) as seen:
            # once kopf is up its watches are listing the backlog: new work arrives now
            wait_until(
                lambda: "startup" in op.logs() and "succeeded" in op.logs(), timeout=60, what="kopf up"
            )
            target = {}
            for name in live_names():
                upgrade(cluster, namespace, name, message="during-start")
                target[name] = 2
            assert op.proc is not None
            listing = settle(op.proc.pid)
            runs = [f"{r}-{v}" for r, v in target.items()]
            wait_until(lambda: all(r in seen.created for r in runs), timeout=300, what="the live runs")
            lat = seen.latencies(target)
        print(
            f"1. {LIVE} upgrades during the start beside {BACKLOG * HISTORY} Helm Secrets: the start's work "
            f"settled after {listing:.1f} s; trigger latency p50 {percentile(lat, 0.5) * 1000:.0f} ms, "
            f"p99 {percentile(lat, 0.99) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms",
            flush=True,
        )
        # where it went: the operator's own intake steps (run.created) of the live revisions
        print_intake("\n".join(re.findall(r".*run=live-\d+-2\b.*", op.logs())))
    finally:
        op.stop()


def kill_during_start(cluster: Cluster, namespace: str, workdir: Path) -> None:
    op = OperatorProcess(cluster, namespace, workdir)
    stop = threading.Event()

    def killer() -> None:
        while not stop.is_set():
            op.start()
            stop.wait(KILL_EVERY)
            op.kill()
        op.start()  # the last one is left alone

    with Watcher(cluster, namespace) as seen:
        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        t0 = time.monotonic()
        for name in live_names():
            upgrade(cluster, namespace, name, message="during-kills")
            time.sleep(max(0.0, KILL_EVERY - (time.monotonic() - t0) % KILL_EVERY))
        time.sleep(max(0.0, KILL_SECONDS - (time.monotonic() - t0)))
        stop.set()
        thread.join(timeout=30)
        last_upgrade = max(seen.deployed.get((r, 3), 0.0) for r in live_names())
        runs = [f"{r}-3" for r in live_names()]
        deadline = last_upgrade + PENDING_AFTER
        while time.monotonic() < deadline and not all(r in seen.finished for r in runs):
            time.sleep(0.5)  # not a condition to wait for: the count at the deadline is the number
        done = [r for r in runs if r in seen.finished]
        pending = sorted(set(runs) - set(done))
        print(
            f"2. {LIVE} upgrades while the operator was SIGKILLed every {KILL_EVERY} s for {KILL_SECONDS:.0f} s "
            f"({op.starts} starts, each beside {BACKLOG * HISTORY} Helm Secrets): {len(done)} of {LIVE} runs "
            f"finished {PENDING_AFTER:.0f} s after the last upgrade; not finished: {pending[:8]}",
            flush=True,
        )
        with_finish = [seen.finished[r] - last_upgrade for r in done]
        if with_finish:
            print(f"   last run finished {max(with_finish):.1f} s after the last upgrade", flush=True)
        print(f"   finished phases of every run seen: {dict(seen.phases)}", flush=True)
    op.stop()


def main() -> None:
    cluster = start_cluster()
    cluster.apply_crds()
    namespace = f"live-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", namespace)
    try:
        t0 = time.monotonic()
        write_history(cluster, namespace, [f"r{i:04d}" for i in range(BACKLOG)], HISTORY)
        for name in live_names():
            cluster.helm("install", name, TINY, "-n", namespace)
        print(
            f"backlog: {BACKLOG} releases x {HISTORY} revisions written, {LIVE} live releases installed in "
            f"{time.monotonic() - t0:.1f} s",
            flush=True,
        )
        with tempfile.TemporaryDirectory(prefix="bench-start-live-") as tmp:
            trigger_latency_during_start(cluster, namespace, Path(tmp))
            kill_during_start(cluster, namespace, Path(tmp))
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


if __name__ == "__main__":
    main()
