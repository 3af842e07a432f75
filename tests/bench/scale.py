"""`make bench-scale`: one operator against many releases on the local cluster. Prints numbers; never fails.

`scale.py` (burst): N releases (`BENCH_SCALE_N`, 100) with H revisions of history each (`BENCH_SCALE_H`, 3),
written directly as Helm release Secrets (copies of one real `helm install`, the same encoding as
tests/unit/support/helm_encoding.py, older revisions `superseded`, deployed an hour ago so no run is due). Then a
baseline with no operator running, for "the burst finished within 1.0x the installs plus kwok's time for the
same bare pods": (A) the same N `helm upgrade`s, 8 at a time, timed (helm alone; revision H+1); (B) as many
bare pods as the operator would create for N runs (one per test hook of the chart, rendered from it, so kwok
completes them the same way), created 8 at a time and timed from the first create until a watch saw all
Succeeded (kwok alone), then deleted. Then the operator starts, with a startup grace short enough that the
baseline's revisions get no run (checked: no E2ERun `<release>-<H+1>`), and a burst of real `helm upgrade`s
(revision H+2), 8 at a time. A raw watch of the Secrets and one of the E2ERuns (in this process) time each
revision's `deployed` event to its E2ERun's creation event.
Printed: the baseline, trigger latency p50/p99, from the burst start and from the last `deployed` to the last
run finished (the former as a multiple of helm alone + kwok alone), the operator's CPU seconds per run (its
process tree, /proc/<pid>/stat), its peak RSS (VmHWM), and API requests per run from the apiserver's own
`apiserver_request_total` (diffed; the metric has no user-agent label, so requests are listed by verb and
resource and attributed by resource; the cluster is shared, so others' requests are noise in the shared
resources). `BENCH_SCALE_NICE=1`: every helm of both upgrade phases runs under `nice -n 19`, as in
production, where the helm clients do not share the operator's CPU.

`scale.py sequential` (`make bench-trigger`): `BENCH_TRIGGER_N` (20) sequential upgrades of one release
after a fresh operator start; per upgrade the bench's latency and the operator's own intake timings (the
`run.created` line: wait/decode/get/plan/create ms), to find where trigger latency's p99 comes from.

`scale.py startup` (`make bench-startup`): N x H history Secrets, then an operator's start beside them: how
long its listing takes, its CPU, peak RSS and the RSS it keeps once settled.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import gzip
import json
import os
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from harness import ROOT, Cluster, OperatorProcess, api_requests, free_tcp_port, start_cluster, wait_until
from kubernetes import client as k8s
from kubernetes import watch
from kubernetes.config import new_client_from_config

TINY = str(ROOT / "tests" / "data" / "charts" / "tiny")
TEMPLATE = "scaletmpl"
FINISHED = {"Succeeded", "Failed", "Error", "NoTests", "Cancelled", "Superseded"}
PARALLEL = 8
CLK_TCK = os.sysconf("SC_CLK_TCK")
NICE = os.environ.get("BENCH_SCALE_NICE", "0") == "1"
# The operator runs revisions deployed at most this long before it saw them: the burst's revisions are seen
# within it, the baseline's (done before the operator starts, and at least this long before) are not.
STARTUP_GRACE_SECONDS = 120  # at N = 5,000 the operator may be a while behind the burst
BARE_LABEL = "bench.helm-e2e.dev/bare"


# --- release history, written directly -------------------------------------------------------------------


def decode_doc(secret: dict[str, Any]) -> dict[str, Any]:
    raw = base64.b64decode(base64.b64decode(secret["data"]["release"]))
    return dict(json.loads(gzip.decompress(raw)))


def history_secret(template: dict[str, Any], *, namespace: str, release: str, revision: int, deployed: bool):  # type: ignore[no-untyped-def]
    """Helm's Secret for `release` revision `revision`: the template release renamed, deployed an hour ago."""
    doc = json.loads(json.dumps(template).replace(TEMPLATE, release))
    doc.update(name=release, namespace=namespace, version=revision)
    status = "deployed" if deployed else "superseded"
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    doc["info"].update(status=status, last_deployed=an_hour_ago, first_deployed=an_hour_ago)
    blob = base64.b64encode(gzip.compress(json.dumps(doc).encode()))
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": f"sh.helm.release.v1.{release}.v{revision}",
            "namespace": namespace,
            "labels": {"owner": "helm", "name": release, "version": str(revision), "status": status},
        },
        "data": {"release": base64.b64encode(blob).decode()},
    }


def write_history(cluster: Cluster, namespace: str, releases: list[str], revisions: int) -> None:
    cluster.helm("install", TEMPLATE, TINY, "-n", namespace)
    template = decode_doc(cluster.get_json("secret", f"sh.helm.release.v1.{TEMPLATE}.v1", "-n", namespace))
    cluster.helm("uninstall", TEMPLATE, "-n", namespace)
    items = [
        history_secret(template, namespace=namespace, release=r, revision=v, deployed=v == revisions)
        for r in releases
        for v in range(1, revisions + 1)
    ]
    chunks = [items[i : i + 150] for i in range(0, len(items), 150)]
    with ThreadPoolExecutor(4) as pool:  # 50,000 Secrets in minutes, not a quarter of an hour
        list(
            pool.map(
                lambda chunk: cluster.apply(
                    json.dumps({"apiVersion": "v1", "kind": "List", "items": chunk}), namespace
                ),
                chunks,
            )
        )


# --- what the bench observes ---------------------------------------------------------------------------------


class Watcher:
    """Raw watches of the namespace's Helm Secrets and E2ERuns in threads, timestamped on receipt."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        api = new_client_from_config(config_file=str(cluster.kubeconfig))
        self.core, self.custom, self.namespace = k8s.CoreV1Api(api), k8s.CustomObjectsApi(api), namespace
        self.deployed: dict[tuple[str, int], float] = {}  # (release, revision) -> first `deployed` event
        self.created: dict[str, float] = {}  # run name -> ADDED event
        self.finished: dict[str, float] = {}  # run name -> first event in a finished phase
        self.phases: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=f, daemon=True) for f in (self._secrets, self._runs)]
        self.ready = threading.Barrier(3)

    def __enter__(self) -> Watcher:
        for t in self._threads:
            t.start()
        self.ready.wait(timeout=30)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()

    def _stream(self, fn: Any, *args: Any, **kw: Any) -> Iterator[dict[str, Any]]:
        """List once, then watch from there, resuming each watch from the last resourceVersion seen."""
        listed = fn(*args, limit=1, **kw)  # only for a version to watch from: never 55,000 Secrets at once
        version = listed["metadata"]["resourceVersion"] if isinstance(listed, dict) else ""
        version = version or listed.metadata.resource_version
        self.ready.wait(timeout=30)
        while not self._stop.is_set():
            w = watch.Watch()
            for event in w.stream(fn, *args, resource_version=version, timeout_seconds=300, **kw):
                yield event
                if self._stop.is_set():
                    w.stop()
            version = w.resource_version or version

    def _secrets(self) -> None:
        for event in self._stream(
            self.core.list_namespaced_secret, self.namespace, label_selector="owner=helm"
        ):
            now = time.monotonic()
            labels = event["object"].metadata.labels or {}
            if labels.get("status") == "deployed":
                self.deployed.setdefault((labels["name"], int(labels["version"])), now)

    def _runs(self) -> None:
        fn = self.custom.list_namespaced_custom_object
        for event in self._stream(fn, "helm-e2e.dev", "v1alpha1", self.namespace, "e2eruns"):
            now = time.monotonic()
            body = event["object"]
            name = body["metadata"]["name"]
            if event["type"] == "ADDED":
                self.created.setdefault(name, now)
            phase = (body.get("status") or {}).get("phase", "")
            if phase in FINISHED and name not in self.finished:
                self.finished[name] = now
                self.phases[phase] += 1

    def latencies(self, revisions: dict[str, int]) -> list[float]:
        return [
            self.created[f"{r}-{v}"] - self.deployed[(r, v)]
            for r, v in revisions.items()
            if (r, v) in self.deployed and f"{r}-{v}" in self.created
        ]


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and its living descendants (the sandbox's fork server and workers)."""
    stats: dict[int, tuple[int, float]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                stats[int(proc.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK)
    tree, total = {pid}, 0.0
    for _ in range(4):
        tree |= {p for p, (ppid, _) in stats.items() if ppid in tree}
    for p in tree:
        total += stats.get(p, (0, 0.0))[1]
    return total


CONTROL_PLANE = ("kube-apiserver", "etcd", "kwok-controller", "kube-controller-manager", "kube-scheduler")


def cpu_snapshot(operator_pid: int | None = None) -> collections.Counter[str]:
    """CPU seconds so far: each control-plane process (by name), the helm/kubectl children this bench ran
    (reaped), the operator's tree, this bench (its watches), and the whole machine's busy time."""
    out: collections.Counter[str] = collections.Counter()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                name = (proc / "comm").read_text().strip()
                if name in {n[:15] for n in CONTROL_PLANE}:
                    fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                    out[name] += (int(fields[11]) + int(fields[12])) / CLK_TCK
    children, me = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    out["helm+kubectl"] = children.ru_utime + children.ru_stime
    out["bench"] = me.ru_utime + me.ru_stime
    if operator_pid is not None:
        out["operator"] = tree_cpu_seconds(operator_pid)
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    idle = int(cpu[3]) + int(cpu[4])  # idle + iowait
    out["machine busy"] = (sum(int(v) for v in cpu[:8]) - idle) / CLK_TCK
    return out


def print_cpu(
    phase: str, before: collections.Counter[str], after: collections.Counter[str], seconds: float
) -> None:
    """Where a phase's CPU went: on a machine this size the phases are CPU-bound, so the burst's length is
    roughly everyone's CPU over the CPUs there are."""
    used = {k: after[k] - before[k] for k in after if k != "machine busy"}
    parts = ", ".join(f"{k} {v:.0f}" for k, v in sorted(used.items(), key=lambda kv: -kv[1]) if v >= 0.5)
    busy = after["machine busy"] - before["machine busy"]
    cpus = os.cpu_count() or 1
    print(
        f"  CPU s, {phase} ({seconds:.0f} s): {parts}; machine busy {busy:.0f} of {cpus} x {seconds:.0f} s "
        f"({busy / (cpus * seconds) * 100:.0f}%)",
        flush=True,
    )


def settle(pid: int) -> float:
    """Seconds until the process tree used under 5% of a CPU for two seconds in a row (its start's listing
    of the history is done)."""
    start, quiet = time.monotonic(), 0
    before = tree_cpu_seconds(pid)
    while quiet < 2:
        time.sleep(1)
        now = tree_cpu_seconds(pid)
        quiet, before = (quiet + 1 if now - before < 0.05 else 0), now
    return time.monotonic() - start - 2


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))] if ordered else float("nan")
    )


@contextlib.contextmanager
def profiled(pid: int) -> Iterator[None]:
    """`BENCH_SCALE_PROFILE=<file>`: py-spy (on PATH, not a dependency) samples the operator's process tree
    during the burst into <file> as collapsed stacks (flamegraph.pl's input), to see where its CPU goes."""
    out = os.environ.get("BENCH_SCALE_PROFILE")
    if not out:
        yield
        return
    cmd = [
        "py-spy",
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--format",
        "raw",
        "--rate",
        "250",
        "--nonblocking",
        "--gil",
        "-o",
        out,
    ]
    spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        spy.send_signal(2)  # SIGINT: py-spy writes its file and exits
        spy.wait(timeout=60)
        print(f"  profile of the burst (py-spy, collapsed stacks): {out}", flush=True)


# --- the benches -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def operator(
    cluster: Cluster, namespace: str, workdir: Path, extra: dict[str, str] | None = None
) -> Iterator[OperatorProcess]:
    env = {k: v for k, v in os.environ.items() if k.startswith("HELM_E2E_")}  # e.g. HELM_E2E_API_THREADS
    env.update(extra or {})
    op = OperatorProcess(cluster, namespace, workdir, env)
    op.start()
    try:
        wait_until(lambda: "startup" in op.logs() and "succeeded" in op.logs(), timeout=60, what="kopf up")
        yield op
    finally:
        op.stop()


def upgrade(cluster: Cluster, namespace: str, release: str, message: str = "burst") -> None:
    """`cluster.helm` takes no command prefix: with `NICE`, helm runs here under `nice -n 19`."""
    args = ["upgrade", release, TINY, "-n", namespace, "--set", f"message={message}"]
    if not NICE:
        cluster.helm(*args, timeout=300)
        return
    cmd = ["nice", "-n", "19", str(cluster.bin / "helm"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=cluster.env, timeout=300, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}{proc.stdout}")


def upgrade_all(cluster: Cluster, namespace: str, releases: list[str], message: str) -> float:
    """Upgrade every release, `PARALLEL` at a time; seconds taken."""
    start = time.monotonic()
    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(lambda r: upgrade(cluster, namespace, r, message), releases))
    return time.monotonic() - start


def hook_pods(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    """The chart's test hook pods as the operator would create them (its own fields only where kwok or the
    apiserver might care); the sim annotations that tell kwok how the test ends come from the chart."""
    rendered = cluster.helm("template", TEMPLATE, TINY, "-n", namespace).stdout
    pods: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(rendered):
        annotations = ((doc or {}).get("metadata") or {}).get("annotations") or {}
        if doc and doc.get("kind") == "Pod" and "test" in annotations.get("helm.sh/hook", "").split(","):
            kept = {k: v for k, v in annotations.items() if not k.startswith("helm.sh/")}
            doc["metadata"] = {"name": doc["metadata"]["name"], "annotations": kept}
            doc["spec"].update(restartPolicy="Never", automountServiceAccountToken=False)
            doc["spec"].setdefault("activeDeadlineSeconds", 600)
            pods.append(doc)
    return pods


def kwok_alone(cluster: Cluster, namespace: str, releases: list[str]) -> tuple[int, float]:
    """Bare test pods for every release, `PARALLEL` creates at a time: (pods, seconds from the first create
    until a watch saw all of them finished), then deleted and gone."""
    api = new_client_from_config(config_file=str(cluster.kubeconfig))
    core = k8s.CoreV1Api(api)
    template = hook_pods(cluster, namespace)
    pods: list[dict[str, Any]] = []
    for release in releases:
        for pod in template:
            body = json.loads(json.dumps(pod).replace(TEMPLATE, release))
            body["metadata"]["name"] = f"bare-{body['metadata']['name']}"
            body["metadata"]["labels"] = {BARE_LABEL: "1"}
            pods.append(body)
    phases: dict[str, str] = {}
    done = threading.Event()
    listed = core.list_namespaced_pod(namespace, label_selector=BARE_LABEL).metadata
    version = listed.resource_version if listed else None

    def watch_pods() -> None:
        since = version
        while not done.is_set():  # a watch ends after its timeout: resume from the last version seen
            w = watch.Watch()
            for event in w.stream(
                core.list_namespaced_pod,
                namespace,
                label_selector=BARE_LABEL,
                resource_version=since,
                timeout_seconds=300,
            ):
                pod = event["object"]
                if pod.status and pod.status.phase in ("Succeeded", "Failed"):
                    phases.setdefault(pod.metadata.name, pod.status.phase)
                    if len(phases) == len(pods):
                        done.set()
                        w.stop()
            since = w.resource_version or since

    threading.Thread(target=watch_pods, daemon=True).start()
    start = time.monotonic()
    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(lambda body: core.create_namespaced_pod(namespace, body), pods))
    if not done.wait(timeout=120 + 2 * len(pods)):
        raise AssertionError(f"bare pods: {len(phases)} of {len(pods)} finished")
    took = time.monotonic() - start
    failed = sum(1 for phase in phases.values() if phase != "Succeeded")
    if failed:
        print(f"  bare pods: {failed} of {len(pods)} did not succeed", flush=True)
    core.delete_collection_namespaced_pod(namespace, label_selector=BARE_LABEL)
    wait_until(
        lambda: not core.list_namespaced_pod(namespace, label_selector=BARE_LABEL, limit=1).items,
        timeout=600,
        interval=2,
        what="bare pods gone",
    )
    return len(pods), took


def burst(cluster: Cluster, namespace: str, workdir: Path, n: int, history: int) -> None:
    releases = [f"r{i:03d}" for i in range(n)]
    t0 = time.monotonic()
    write_history(cluster, namespace, releases, history)
    print(f"history: {n} releases x {history} revisions written in {time.monotonic() - t0:.1f} s", flush=True)
    cpu0 = cpu_snapshot()
    helm_alone = upgrade_all(cluster, namespace, releases, "baseline")
    baseline_done, cpu1 = time.monotonic(), cpu_snapshot()
    pods, kwok = kwok_alone(cluster, namespace, releases)
    cpu2 = cpu_snapshot()
    print(
        f"baseline: {n} upgrades alone {helm_alone:.1f} s; {pods} bare pods on kwok {kwok:.1f} s", flush=True
    )
    print_cpu("helm alone", cpu0, cpu1, helm_alone)
    print_cpu("kwok alone (with the deletion of its pods)", cpu1, cpu2, time.monotonic() - baseline_done)
    # not a wait for a condition: the baseline's revisions must be older than the grace when the operator
    # first sees them
    time.sleep(max(0.0, baseline_done + STARTUP_GRACE_SECONDS + 1 - time.monotonic()))
    target = dict.fromkeys(releases, history + 2)
    metrics_port = free_tcp_port()
    grace = {
        "HELM_E2E_STARTUP_GRACE_SECONDS": str(STARTUP_GRACE_SECONDS),
        "HELM_E2E_METRICS_PORT": str(metrics_port),
    }
    with operator(cluster, namespace, workdir, grace) as op, Watcher(cluster, namespace) as seen:
        assert op.proc is not None
        listing = settle(op.proc.pid)
        print(
            f"operator start: initial listing of {n * (history + 1)} Helm Secrets settled after "
            f"{listing:.1f} s, CPU {tree_cpu_seconds(op.proc.pid):.1f} s, peak RSS {vm_hwm_mib(op.proc.pid):.0f} MiB",
            flush=True,
        )
        everyone0, requests0 = cpu_snapshot(op.proc.pid), api_requests(cluster)
        passes0 = counter(metrics_port, "helm_e2e_reconcile_passes_total")
        t_burst = time.monotonic()
        runs = [f"{r}-{v}" for r, v in target.items()]
        with profiled(op.proc.pid):
            with ThreadPoolExecutor(PARALLEL) as pool:
                list(pool.map(lambda r: upgrade(cluster, namespace, r), releases))
            t_helm = time.monotonic()
            wait_until(
                lambda: all(r in seen.finished for r in runs),
                timeout=120 + 3 * n,
                interval=0.5,
                what=f"all {n} runs finished",
            )
        everyone1, requests1, t_end = cpu_snapshot(op.proc.pid), api_requests(cluster), time.monotonic()
        passes = counter(metrics_port, "helm_e2e_reconcile_passes_total") - passes0
        operator_cpu = everyone1["operator"] - everyone0["operator"]
        hwm = vm_hwm_mib(op.proc.pid)
        lat = seen.latencies(target)
        last_deployed = max(seen.deployed.get((r, v), 0.0) for r, v in target.items())
        last_finished = max(seen.finished[r] for r in runs)
        existing = {run["metadata"]["name"] for run in cluster.get_json("e2eruns", "-n", namespace)["items"]}
        baseline_runs = sorted(existing & {f"{r}-{history + 1}" for r in releases})
        print(
            f"N={n} H={history} (helm {'under nice -n 19' if NICE else 'not niced'}): {n} upgrades "
            f"({PARALLEL} at a time) took {t_helm - t_burst:.1f} s; "
            f"runs of the baseline's revisions: {len(baseline_runs)} {baseline_runs[:5]}",
            flush=True,
        )
        print(
            f"  trigger latency (deployed event -> E2ERun ADDED event, {len(lat)} of {n} runs): "
            f"p50 {percentile(lat, 0.5) * 1000:.0f} ms, p99 {percentile(lat, 0.99) * 1000:.0f} ms, "
            f"max {max(lat) * 1000:.0f} ms",
            flush=True,
        )
        print(
            f"  last deployed -> last run finished: {last_finished - last_deployed:.1f} s "
            f"(phases {dict(seen.phases)})",
            flush=True,
        )
        took = last_finished - t_burst
        print(
            f"  burst start -> last run finished: {took:.1f} s = x{took / (helm_alone + kwok):.2f} "
            f"of (helm alone + kwok alone: {helm_alone:.1f} + {kwok:.1f} s)",
            flush=True,
        )
        print(
            f"  operator CPU (process tree): {operator_cpu:.1f} s, {operator_cpu / n * 1000:.0f} ms per run; "
            f"peak RSS (VmHWM) {hwm:.0f} MiB; {passes / n:.1f} reconcile passes per run",
            flush=True,
        )
        print_cpu("the burst", everyone0, everyone1, t_end - t_burst)
        print_requests(requests1 - requests0, n)
        print_events(cluster, namespace, n)
        print_intake(op.logs())


def counter(port: int, name: str) -> float:
    """A counter of the operator's own /metrics (Prometheus text format)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(f"{name} "))


def print_events(cluster: Cluster, namespace: str, runs: int) -> None:
    """Who posted the namespace's Events (the apiserver's count of POST events is everyone's)."""
    by: collections.Counter[str] = collections.Counter()
    for event in cluster.get_json("events", "-n", namespace)["items"]:
        if (event.get("involvedObject") or {}).get("name", "").startswith("bare-"):
            continue  # the baseline's bare pods, not the operator's
        who = event.get("reportingComponent") or (event.get("source") or {}).get("component") or "?"
        by[f"{who}/{event.get('reason', '')}"] += int(event.get("count") or 1)
    summary = ", ".join(f"{k} {v / runs:.1f}" for k, v in by.most_common(8))
    print(f"  Events in the namespace per run, by component/reason: {summary}", flush=True)


def print_intake(logs: str) -> None:
    """p50/p99 of each intake step the operator logged in `run.created` (ms)."""
    steps: dict[str, list[float]] = collections.defaultdict(list)
    for line in logs.splitlines():
        if "run.created" in line:
            for key, value in re.findall(r"\b(\w+)_ms=([\d.]+)", line):
                steps[key].append(float(value))
    summary = ", ".join(
        f"{k} {percentile(v, 0.5):.0f}/{percentile(v, 0.99):.0f}" for k, v in sorted(steps.items())
    )
    print(f"  operator intake steps, ms p50/p99: {summary}", flush=True)


OPERATOR_RESOURCES = {"e2eruns", "e2esuites", "serviceaccounts"}  # only the operator touches these here


def print_requests(diff: collections.Counter[tuple[str, str, str]], runs: int) -> None:
    total = sum(diff.values())
    print(
        f"  apiserver requests during the burst: {total} ({total / runs:.1f} per run, everyone's)", flush=True
    )
    for (verb, kind, sub), count in sorted(diff.items(), key=lambda kv: -kv[1]):
        if count >= max(2, runs // 10):
            name = f"{kind}/{sub}" if sub else kind
            who = "operator" if kind in OPERATOR_RESOURCES else "shared"
            print(f"    {verb:7} {name:28} {count:6}  {count / runs:5.1f}/run  ({who})", flush=True)


RUN_CREATED = re.compile(r"run\.created.*")


def sequential(cluster: Cluster, namespace: str, workdir: Path, n: int) -> None:
    with operator(cluster, namespace, workdir) as op, Watcher(cluster, namespace) as seen:
        cluster.helm("install", "seq", TINY, "-n", namespace)
        wait_until(lambda: "seq-1" in seen.created, what="seq-1")
        for _ in range(n):
            revision = len(seen.created) + 1
            upgrade(cluster, namespace, "seq")
            run = f"seq-{revision}"
            wait_until(lambda run=run: run in seen.created, what=run)  # type: ignore[misc]
        lat = [seen.created[f"seq-{v}"] - seen.deployed[("seq", v)] for v in range(1, n + 2)]
        lines = [line for line in op.logs().splitlines() if "run.created" in line]
    print(
        f"{n + 1} sequential revisions (install + {n} upgrades) of one release, fresh operator:", flush=True
    )
    for v, (latency, line) in enumerate(zip(lat, lines, strict=False), start=1):
        fields = " ".join(re.findall(r"\b(\w+_ms=[\d.]+)", line))
        print(f"  r{v:<3} {latency * 1000:7.0f} ms   operator: {fields}", flush=True)
    print(
        f"  p50 {percentile(lat, 0.5) * 1000:.0f} ms, p99 {percentile(lat, 0.99) * 1000:.0f} ms", flush=True
    )


def startup(cluster: Cluster, namespace: str, workdir: Path, n: int, history: int) -> None:
    """An operator's start beside N x H Helm Secrets (no run due): listing time, CPU and memory, and the
    memory left once it settled (what it keeps for good)."""
    t0 = time.monotonic()
    write_history(cluster, namespace, [f"r{i:04d}" for i in range(n)], history)
    print(f"history: {n} releases x {history} revisions written in {time.monotonic() - t0:.1f} s", flush=True)
    with operator(cluster, namespace, workdir) as op:
        assert op.proc is not None
        listing = settle(op.proc.pid)
        rss = next(
            int(line.split()[1]) / 1024
            for line in Path(f"/proc/{op.proc.pid}/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
        print(
            f"operator start beside {n * history} Helm Secrets: listing settled after {listing:.1f} s, "
            f"CPU {tree_cpu_seconds(op.proc.pid):.1f} s, peak RSS {vm_hwm_mib(op.proc.pid):.0f} MiB, "
            f"RSS once settled {rss:.0f} MiB",
            flush=True,
        )


def main() -> None:
    cluster = start_cluster()
    cluster.apply_crds()
    namespace = f"scale-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", namespace)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            n, h = int(os.environ.get("BENCH_SCALE_N", "100")), int(os.environ.get("BENCH_SCALE_H", "3"))
            if sys.argv[1:] == ["sequential"]:
                sequential(cluster, namespace, Path(tmp), int(os.environ.get("BENCH_TRIGGER_N", "20")))
            elif sys.argv[1:] == ["startup"]:
                startup(cluster, namespace, Path(tmp), n, h)
            else:
                burst(cluster, namespace, Path(tmp), n, h)
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


if __name__ == "__main__":
    main()
