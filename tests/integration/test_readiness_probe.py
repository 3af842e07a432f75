"""The readiness gate against the real apiserver: a release installed without --wait, read from its real
Helm secret, its objects fetched by targeted GETs and judged by the helm --wait / kstatus rules.

kwok makes a Deployment's pods Ready within a second: too fast to observe "pending" reliably after
`helm install` returns. So a rollout is held not-ready without any kwok stage: its pods select a node
label no node has and are never scheduled (a real scheduler outcome, the same on a real node); patching
the selector away is a real rollout (a new ReplicaSet replacing the old). The PVC asks for a storage
class no provisioner serves, so it stays Pending.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import statistics
from collections.abc import Iterator

import kubernetes.config as k8s_config
import pytest
from harness import BIN, KUBECONFIG, ROOT, Cluster, assert_stays, start_cluster, wait_until

from helm_e2e.clients.rollout import CheckTiming, RolloutReader, measure_check
from helm_e2e.core.plan.readiness import ObjectKey, Readiness, check_object, list_rollout_objects, summarize
from helm_e2e.core.sources.helm_secret import decode_release_secret

pytestmark = pytest.mark.integration
CHART = str(ROOT / "tests" / "data" / "charts" / "rollout")
UNHOLD = '[{"op": "remove", "path": "/spec/template/spec/nodeSelector"}]'


@pytest.fixture(scope="module")
def live() -> Cluster:
    """The running local cluster as is; started only if it is not running (never restarted)."""
    cluster = Cluster(kubeconfig=KUBECONFIG, bin=BIN)
    if KUBECONFIG.exists() and cluster.kubectl("get", "--raw", "/readyz", check=False).returncode == 0:
        return cluster
    return start_cluster()


@pytest.fixture
def ns(live: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:30].strip("-")
    name = f"ready-{slug}-{secrets.token_hex(3)}"
    live.kubectl("create", "namespace", name)
    yield name
    live.kubectl("delete", "namespace", name, "--wait=false", check=False)


def install(cluster: Cluster, namespace: str, *sets: str) -> list[ObjectKey]:
    """`helm install` without --wait; the gate's objects, from the real release secret."""
    args = [a for s in sets for a in ("--set", s)]
    cluster.helm("install", "r", CHART, "-n", namespace, *args)
    secret = cluster.get_json("secret", "-n", namespace, "sh.helm.release.v1.r.v1")
    release = decode_release_secret(secret)
    return list_rollout_objects(release.manifest, namespace=namespace)


def check(keys: list[ObjectKey]) -> dict[str, Readiness]:
    async def read() -> dict[ObjectKey, dict[str, object] | None]:
        api = k8s_config.new_client_from_config(config_file=str(KUBECONFIG))
        with api:
            return await RolloutReader(api, timeout_seconds=10).read(keys)

    bodies = asyncio.run(read())
    return {k.ref: check_object(k, bodies[k]) for k in keys}


def test_a_held_deployment_is_pending_after_install_and_ready_once_rolled_out(live: Cluster, ns: str) -> None:
    keys = install(live, ns, "web.unschedulable=true")
    assert [k.ref for k in keys] == ["deployment/web"]  # the ConfigMap and ClusterIP Service never block
    wait_until(
        lambda: check(keys)["deployment/web"].pending == "deployment/web 0/2 ready",
        timeout=30,
        what="the deployment controller to create 2 unschedulable pods",
    )
    assert not check(keys)["deployment/web"].failed
    # release the hold: a new pod template, so a new ReplicaSet replaces the old one
    live.kubectl("patch", "deployment", "web", "-n", ns, "--type=json", "-p", UNHOLD)
    seen: set[str] = set()

    def rolled_out() -> bool:
        result = check(keys)["deployment/web"]
        seen.add(result.pending)
        return result.ready

    wait_until(rolled_out, timeout=60, what="deployment/web rolled out")
    print(f"\nwhile rolling out: {sorted(seen - {''})}")
    status = live.get_json("deployment", "-n", ns, "web")["status"]
    assert status["replicas"] == status["updatedReplicas"] == status["availableReplicas"] == 2
    old = [rs for rs in live.get_json("replicaset", "-n", ns)["items"] if rs["status"].get("replicas")]
    assert len(old) == 1, "only the new ReplicaSet has pods once the gate says ready"


def test_an_unbound_claim_and_a_held_rollout_keep_the_gate_pending(live: Cluster, ns: str) -> None:
    keys = install(live, ns, "pvc.enabled=true", "held.enabled=true")
    assert sorted(k.ref for k in keys) == ["deployment/held", "deployment/web", "pvc/data"]
    wait_until(lambda: check(keys)["deployment/web"].ready, timeout=60, what="deployment/web rolled out")

    def still_pending() -> bool:
        results = check(keys)
        held, claim = results["deployment/held"], results["pvc/data"]
        return (
            held.pending == "deployment/held 0/2 ready"
            and claim.pending == "pvc/data Pending"
            and not (held.failed or claim.failed)
        )

    assert_stays(still_pending, seconds=4, what="held deployment and unbound claim stay pending")
    ready, failed, pending = summarize(check(keys).values())
    assert (ready, failed) == (False, "")
    assert "deployment/held 0/2 ready" in pending
    assert "pvc/data Pending" in pending
    assert "deployment/web" not in pending


def test_an_object_not_created_yet_is_pending_and_a_missing_kind_is_none(live: Cluster, ns: str) -> None:
    keys = [ObjectKey("Deployment", "apps/v1", ns, "nope"), ObjectKey("Job", "batch/v1", ns, "nope")]
    results = check(keys)
    assert results["deployment/nope"].pending == "deployment/nope not found yet"
    assert results["job/nope"].pending == "job/nope not found yet"


def test_benchmark_one_check_of_ten_objects_costs_ten_gets(live: Cluster, ns: str) -> None:
    """Prints API calls and wall time per check (never fails on timing)."""
    keys = install(live, ns, "pvc.enabled=true", "held.enabled=true", "extra=7")
    assert len(keys) == 10

    async def run(rounds: int) -> list[CheckTiming]:
        api = k8s_config.new_client_from_config(config_file=str(KUBECONFIG))
        with api:
            reader = RolloutReader(api, timeout_seconds=10)
            await measure_check(reader, keys)  # warm the connection pool
            return [await measure_check(reader, keys) for _ in range(rounds)]

    timings = asyncio.run(run(20))
    assert {t.api_calls for t in timings} == {10}
    ms = sorted(t.seconds * 1000 for t in timings)
    print(  # the benchmark's output
        f"\nreadiness check: {len(keys)} objects, {timings[0].api_calls} GETs per check, "
        f"median {statistics.median(ms):.1f} ms, p90 {ms[int(len(ms) * 0.9) - 1]:.1f} ms, "
        f"max {ms[-1]:.1f} ms over {len(ms)} checks"
    )
