"""`make bench-hostile`: the operator against the local cluster, fed hostile inputs. Prints numbers; never
fails on them (tests/integration/test_hostile.py asserts the bounds).

For each input, in a fresh namespace with a fresh operator process (so its peak RSS belongs to that input):
a first release to know the operator is up, then the input, then a normal release. Printed: the time from
the input to its outcome (the Warning Event, the suite's Valid=False, or the run), the time from the normal
release's `helm install` to its E2ERun (one installed right after the input, while it is handled, and one
after its outcome), and the operator process's VmHWM (peak RSS) before and after.

`BENCH_QUICK=1`: one operator for every input (its VmHWM is then cumulative) and a smaller alias bomb.
Needs the local cluster (`make cluster-up`); the inputs are built here, not imported from the tests.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from harness import ROOT, Cluster, OperatorProcess, start_cluster

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
TINY = str(ROOT / "tests" / "data" / "charts" / "tiny")
MiB = 2**20
OUTCOME_TIMEOUT = 150.0


# --- inputs ------------------------------------------------------------------------------------------------


def _encode(raw: bytes) -> str:
    return base64.b64encode(base64.b64encode(gzip.compress(raw, compresslevel=9))).decode()


def _secret(namespace: str, name: str, data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": f"sh.helm.release.v1.{name}.v1",
            "namespace": namespace,
            "labels": {"owner": "helm", "status": "deployed", "name": name, "version": "1"},
        },
        "data": {"release": data},
    }


def _json_bomb(size: int) -> bytes:
    return b"[" + b"{}," * (size // 3 - 1) + b"{}]"


def _alias_release(namespace: str, name: str, levels: int) -> bytes:
    lines = ['a0: &a0 ["lol"]'] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels + 1)
    ]
    anchors = "\n".join(f"  {line}" for line in lines)
    manifest = (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: laughs\n  annotations:\n    helm.sh/hook: test\n"
        f"x-anchors:\n{anchors}\nspec:\n  containers:\n  - name: x\n    image: localhost/e2e:1\n"
        f"    args: *a{levels}\n"
    )
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    doc = {
        "name": name,
        "namespace": namespace,
        "version": 1,
        "info": {"status": "deployed", "description": "Install complete", "last_deployed": now},
        "chart": {"metadata": {"name": "tiny", "version": "0.1.0", "appVersion": "1.0.0"}, "values": {}},
        "config": {},
        "hooks": [
            {"name": "laughs", "kind": "Pod", "path": "t.yaml", "manifest": manifest, "events": ["test"]}
        ],
    }
    return json.dumps(doc).encode()


LOOPS = "{% for a in values.big %}{% for b in values.big %}{% for c in values.big %}BODY{% endfor %}{% endfor %}{% endfor %}"
TEMPLATES = {
    "template-ljust": "{{ 'a'.ljust(10**8) }}",
    "template-loops-output": LOOPS.replace("BODY", "x"),
    "template-loops-cpu": LOOPS.replace("BODY", ""),
}


def _suite(name: str, template: str, release: str) -> dict[str, Any]:
    return {
        "apiVersion": "helm-e2e.dev/v1alpha1",
        "kind": "E2ESuite",
        "metadata": {"name": name},
        "spec": {
            "releases": {"names": [release]},  # the normal releases beside it do not render the bomb
            "tests": [
                {
                    "name": "bomb",
                    "template": {"containers": [{"name": "t", "image": "x:1", "args": [template]}]},
                }
            ],
        },
    }


# --- probes ------------------------------------------------------------------------------------------------


def vmhwm_mib(op: OperatorProcess) -> float:
    assert op.proc is not None
    for line in Path(f"/proc/{op.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def poll(probe: Callable[[], str | None], timeout: float = OUTCOME_TIMEOUT) -> tuple[float, str]:
    """(seconds until `probe` returned something, what it returned); ('timeout') after `timeout`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        found = probe()
        if found:
            return time.monotonic() - t0, found
        time.sleep(0.1)
    return time.monotonic() - t0, "timeout"


def warning_on(cluster: Cluster, namespace: str, *objects: str) -> Callable[[], str | None]:
    def probe() -> str | None:
        items = cluster.get_json("events", "-n", namespace, "--field-selector", "type=Warning")["items"]
        hit = next((e for e in items if e["involvedObject"]["name"] in objects), None)
        return f"Event {hit['reason']}: {hit.get('message', '')[:90]}" if hit else None

    return probe


def run_exists(cluster: Cluster, namespace: str, name: str) -> Callable[[], str | None]:
    def probe() -> str | None:
        return f"E2ERun {name}" if cluster.try_get_json("e2erun", "-n", namespace, name) else None

    return probe


def suite_invalid(cluster: Cluster, namespace: str, name: str) -> Callable[[], str | None]:
    def probe() -> str | None:
        body = cluster.try_get_json("e2esuite", "-n", namespace, name) or {}
        conds = [c for c in body.get("status", {}).get("conditions", []) if c["status"] == "False"]
        return f"Valid=False: {conds[0]['message'][:90]}" if conds else None

    return probe


# --- feeding -----------------------------------------------------------------------------------------------


def feed(kind: str, cluster: Cluster, namespace: str, workdir: Path, n: int) -> Callable[[], str | None]:
    """Give the operator one hostile input; the probe of its outcome."""
    if kind in ("gzip-31MiB", "json-12MiB", "alias"):
        if kind == "alias":
            data = _encode(_alias_release(namespace, f"bomb{n}", 5 if QUICK else 7))
        else:
            data = _encode(_json_bomb((31 if kind == "gzip-31MiB" else 12) * MiB))
        release = f"bomb{n}"
        cluster.kubectl("create", "-f", "-", input=json.dumps(_secret(namespace, release, data)))
        return warning_on(cluster, namespace, f"sh.helm.release.v1.{release}.v1", f"{release}-1")
    cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=json.dumps(_suite(kind, TEMPLATES[kind], f"victim{n}"))
    )
    values = workdir / "big.json"
    values.write_text(json.dumps({"big": list(range(1000))}))
    cluster.helm("install", f"victim{n}", TINY, "-n", namespace, "-f", str(values))
    return suite_invalid(cluster, namespace, kind)


@contextmanager
def fresh_namespace(cluster: Cluster, kind: str) -> Iterator[str]:
    name = f"bench-hostile-{kind.replace('_', '-').lower()}-{secrets.token_hex(3)}"[:63]
    cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def start(cluster: Cluster, namespace: str, workdir: Path) -> OperatorProcess:
    op = OperatorProcess(cluster, namespace, workdir).start()
    cluster.helm("install", "warmup", TINY, "-n", namespace, "--set", "test.enabled=false")
    _, found = poll(run_exists(cluster, namespace, "warmup-1"), timeout=60)
    if found == "timeout":
        raise SystemExit(f"the operator did not start:\n{op.logs()[-2000:]}")
    return op


def normal_release(cluster: Cluster, namespace: str, name: str) -> float:
    """Seconds from `helm install` of a normal release to its E2ERun."""
    t0 = time.monotonic()
    cluster.helm("install", name, TINY, "-n", namespace)
    _, found = poll(run_exists(cluster, namespace, f"{name}-1"), timeout=90)
    return time.monotonic() - t0 if found != "timeout" else float("inf")


def measure(kind: str, cluster: Cluster, namespace: str, op: OperatorProcess, workdir: Path, n: int) -> None:
    """The input; a normal release at once (while the input is handled); the outcome; another normal one."""
    before = vmhwm_mib(op)
    t0 = time.monotonic()
    probe = feed(kind, cluster, namespace, workdir, n)
    during = normal_release(cluster, namespace, f"during{n}")
    _, outcome = poll(probe)
    outcome_seconds = time.monotonic() - t0
    after = normal_release(cluster, namespace, f"after{n}")
    alive = "alive" if op.proc and op.proc.poll() is None else "DEAD"
    if kind in TEMPLATES:  # one operator for all (quick): later releases must not render this bomb too
        cluster.kubectl("delete", "e2esuite", "-n", namespace, kind, check=False)
    print(
        f"{kind:<22} outcome {outcome_seconds:6.2f}s  normal run: during {during:5.2f}s, after {after:5.2f}s  "
        f"VmHWM {before:4.0f} -> {vmhwm_mib(op):4.0f} MiB  {alive}  {outcome}",
        flush=True,
    )


def main() -> None:
    cluster = start_cluster()
    cluster.apply_crds()
    kinds = ["baseline", "gzip-31MiB", "json-12MiB", "alias", *TEMPLATES]
    print(f"bench-hostile ({'quick: one operator' if QUICK else 'one operator per input'})", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        workdir = Path(tmp)
        if QUICK:
            with fresh_namespace(cluster, "quick") as ns:
                op = start(cluster, ns, workdir)
                try:
                    for n, kind in enumerate(kinds):
                        if kind != "baseline":
                            measure(kind, cluster, ns, op, workdir, n)
                finally:
                    op.stop()
            return
        for n, kind in enumerate(kinds):
            with fresh_namespace(cluster, kind) as ns:
                op = start(cluster, ns, workdir)
                try:
                    if kind == "baseline":  # no hostile input: a normal release alone
                        before = vmhwm_mib(op)
                        seconds = normal_release(cluster, ns, "normal")
                        print(
                            f"{kind:<22} outcome     -   normal run: {seconds:5.2f}s                 "
                            f"VmHWM {before:4.0f} -> {vmhwm_mib(op):4.0f} MiB",
                            flush=True,
                        )
                    else:
                        measure(kind, cluster, ns, op, workdir, n)
                finally:
                    op.stop()


if __name__ == "__main__":
    main()
