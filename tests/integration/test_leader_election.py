"""Two operators, one Lease, on the real apiserver: exactly one works; SIGKILL it and the standby takes over
within 15 s and handles the next upgrade, with no duplicate run or pod."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, Cluster, OperatorProcess, assert_stays, wait_until
from kubernetes import client, config

from helm_e2e.runtime.leader import LeaseElector, LeaseTimings

TINY = str(ROOT / "tests" / "data" / "charts" / "tiny")
LEASE = "helm-e2e-leader"
TAKEOVER_BUDGET_SECONDS = 15.0  # the goal; the shipped timings bound it at lease 10 + 2 x retry 2 = 14 s
KOPF_LOGGED_IN = "Initial authentication has finished"
KOPF_STARTED = "startup' succeeded"  # kopf's log line once its startup handler ran
FINAL = ("Succeeded", "Failed", "Error", "Cancelled", "Superseded")


@pytest.fixture
def ha_namespaces(crds: Cluster) -> Iterator[tuple[str, str]]:
    """A namespace for the Lease (the operators' own) and one whose releases they watch."""
    suffix = secrets.token_hex(3)
    lease_ns, watched = f"ha-lease-{suffix}", f"ha-watch-{suffix}"
    for ns in (lease_ns, watched):
        crds.kubectl("create", "namespace", ns)
    yield lease_ns, watched
    for ns in (lease_ns, watched):
        crds.kubectl("delete", "namespace", ns, "--wait=false", check=False)


class Pair:
    """Two `helm-e2e run` processes on this machine, told apart by their pid in the shared identity."""

    def __init__(self, cluster: Cluster, lease_ns: str, watched: str, tmp_path: Path) -> None:
        self.cluster, self.lease_ns, self.watched = cluster, lease_ns, watched
        env = {"HELM_E2E_LEADER_ELECTION": "true", "HELM_E2E_LEADER_ELECTION_NAMESPACE": lease_ns}
        self.operators: list[OperatorProcess] = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            self.operators.append(OperatorProcess(cluster, watched, tmp_path / name, env))

    @staticmethod
    def identity(op: OperatorProcess) -> str:
        assert op.proc is not None
        return f"helm-e2e@{socket.gethostname()}/{op.proc.pid}"

    def holder(self) -> str | None:
        lease = self.cluster.try_get_json("lease", "-n", self.lease_ns, LEASE)
        return lease["spec"].get("holderIdentity") if lease else None

    def by_identity(self, identity: str | None) -> OperatorProcess | None:
        return next((op for op in self.operators if identity and self.identity(op) == identity), None)

    def stop(self) -> None:
        for op in self.operators:
            op.stop()


@pytest.fixture
def pair(crds: Cluster, ha_namespaces: tuple[str, str], tmp_path: Path) -> Iterator[Pair]:
    p = Pair(crds, *ha_namespaces, tmp_path)
    yield p
    p.stop()


def wait_run(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        run = cluster.try_get_json("e2erun", "-n", namespace, name)
        return run if run and run.get("status", {}).get("phase") in FINAL else None

    return wait_until(final, timeout=90, what=f"E2ERun {name} to finish")


def runs(cluster: Cluster, namespace: str) -> list[str]:
    return sorted(r["metadata"]["name"] for r in cluster.get_json("e2eruns", "-n", namespace)["items"])


def pods_of_run(cluster: Cluster, namespace: str, run: str) -> list[str]:
    items = cluster.get_json("pods", "-n", namespace, "-l", f"helm-e2e.dev/run={run}")["items"]
    return sorted(p["metadata"]["name"] for p in items)


def created(op: OperatorProcess, run: str) -> bool:
    """The operator logged that it created the E2ERun (the line names the run: `run.created ... run=web-1`)."""
    return any("run.created" in line and f"run={run} " in line for line in op.logs().splitlines())


def elect(pair: Pair) -> tuple[OperatorProcess, OperatorProcess]:
    for op in pair.operators:
        op.start()
    holder = wait_until(pair.holder, timeout=30, what="a holder of the Lease")
    leader = pair.by_identity(holder)
    assert leader is not None, f"the Lease is held by {holder}, neither operator"
    (standby,) = [op for op in pair.operators if op is not leader]
    wait_until(lambda: KOPF_STARTED in leader.logs(), timeout=30, what="kopf to start in the leader")
    # both started at once, but on a busy machine the standby may still be importing when the leader's kopf
    # is up (seen in CI: its log still empty): wait for it to be waiting, as the tests assume
    wait_until(lambda: "leader.waiting" in standby.logs(), timeout=30, what="the standby waiting")
    return leader, standby


def test_one_of_two_operators_works_and_the_standby_takes_over_within_15s_of_a_sigkill(pair: Pair) -> None:
    cluster, ns = pair.cluster, pair.watched
    leader, standby = elect(pair)
    assert "leader.waiting" in standby.logs()
    assert_stays(
        lambda: pair.holder() == pair.identity(leader) and KOPF_STARTED not in standby.logs(),
        seconds=3,
        what="the leader keeps the Lease; the standby does not start kopf",
    )
    standby.assert_alive()

    cluster.helm("install", "web", TINY, "-n", ns)
    assert wait_run(cluster, ns, "web-1")["status"]["phase"] == "Succeeded"
    first_uid = cluster.get_json("e2erun", "-n", ns, "web-1")["metadata"]["uid"]
    assert runs(cluster, ns) == ["web-1"]
    assert pods_of_run(cluster, ns, "web-1") == ["web-1-web-smoke"]
    assert created(leader, "web-1")
    assert not created(standby, "web-1")

    leader.kill()
    killed = time.monotonic()
    wait_until(
        lambda: pair.holder() == pair.identity(standby),
        timeout=TAKEOVER_BUDGET_SECONDS,
        interval=0.1,
        what="the standby to hold the Lease",
    )
    takeover = time.monotonic() - killed
    wait_until(lambda: KOPF_STARTED in standby.logs(), timeout=30, what="kopf to start in the new leader")
    working = time.monotonic() - killed
    print(f"\ntake-over after SIGKILL: Lease {takeover:.1f}s, kopf started {working:.1f}s")

    cluster.helm("upgrade", "web", TINY, "-n", ns, "--set", "message=v2")
    assert wait_run(cluster, ns, "web-2")["status"]["phase"] == "Succeeded"
    assert runs(cluster, ns) == ["web-1", "web-2"]
    assert pods_of_run(cluster, ns, "web-2") == ["web-2-web-smoke"]
    # the new leader adopted the first run as it was: no second web-1, no second pod for it
    assert cluster.get_json("e2erun", "-n", ns, "web-1")["metadata"]["uid"] == first_uid
    assert pods_of_run(cluster, ns, "web-1") == ["web-1-web-smoke"]
    assert created(standby, "web-2")
    assert not created(standby, "web-1")
    standby.assert_alive()


def test_a_clean_stop_hands_the_lease_over_at_once(pair: Pair) -> None:
    leader, standby = elect(pair)
    assert leader.proc is not None
    # kopf handles SIGTERM only once its tasks run (a SIGTERM before that kills it outright, Lease kept)
    wait_until(lambda: KOPF_LOGGED_IN in leader.logs(), timeout=30, what="kopf to log in")
    stopped = time.monotonic()
    leader.stop()  # SIGTERM, as in a rolling update
    assert leader.proc.returncode == 0
    wait_until(
        lambda: pair.holder() == pair.identity(standby),
        timeout=5,
        interval=0.1,
        what="the standby to hold the released Lease",
    )
    print(f"\nhand-over after SIGTERM: {time.monotonic() - stopped:.1f}s")
    assert "leader.released" in leader.logs()


def test_a_leader_whose_lease_is_taken_exits_nonzero_within_the_renew_deadline(pair: Pair) -> None:
    leader, standby = elect(pair)
    assert leader.proc is not None
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    pair.cluster.kubectl(
        "patch", "lease", LEASE, "-n", pair.lease_ns, "--type=merge",
        "-p", f'{{"spec": {{"holderIdentity": "intruder", "renewTime": "{now}"}}}}',
    )  # fmt: skip
    taken = time.monotonic()
    # renew deadline 7 s + the watchdog's tick, then the kubelet would restart it as a standby
    proc = leader.proc
    wait_until(lambda: proc.poll() is not None, timeout=10, what="the leader to exit")
    print(f"\nleader exited {time.monotonic() - taken:.1f}s after losing its Lease")
    assert proc.returncode == 1
    assert "leader.lost" in leader.logs()
    # the intruder never renews: the standby takes the Lease over once it expires
    wait_until(lambda: pair.holder() == pair.identity(standby), timeout=15, what="the standby to take over")


def test_the_charts_lease_role_is_all_the_election_needs(
    crds: Cluster, ha_namespaces: tuple[str, str]
) -> None:
    """The election and the hand-over, authenticated as the chart's ServiceAccount with only its lease Role."""
    lease_ns, _ = ha_namespaces
    rendered = crds.helm(
        "template", "ops", str(ROOT / "charts" / "helm-e2e"), "-n", lease_ns,
        "-s", "templates/rbac-leader-election.yaml", "-s", "templates/serviceaccount.yaml",
    ).stdout  # fmt: skip
    crds.kubectl("apply", "-n", lease_ns, "-f", "-", input=rendered)
    token = crds.kubectl("create", "token", "ops-helm-e2e", "-n", lease_ns).stdout.strip()

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(crds.kubeconfig), client_configuration=configuration)
    configuration.cert_file = configuration.key_file = None  # only the token: the ServiceAccount's rights
    configuration.api_key = {"authorization": f"Bearer {token}"}
    exits: list[int] = []
    elector = LeaseElector(
        api=client.CoordinationV1Api(client.ApiClient(configuration)),
        name="ops-helm-e2e-leader",
        namespace=lease_ns,
        identity="helm-e2e@sa-test/1",
        timings=LeaseTimings(lease_seconds=3, renew_deadline_seconds=2, retry_period_seconds=1),
        exit_process=exits.append,
    )
    try:
        elected = threading.Event()
        threading.Thread(target=lambda: elector.hold() and elected.set(), daemon=True).start()
        assert elected.wait(timeout=10), "never won the Lease: create (or get) refused?"
        lease = crds.get_json("lease", "-n", lease_ns, "ops-helm-e2e-leader")
        wait_until(
            lambda: (
                crds.get_json("lease", "-n", lease_ns, "ops-helm-e2e-leader")["spec"]["renewTime"]
                != lease["spec"]["renewTime"]
            ),
            timeout=5,
            what="a renewal (get + update)",
        )
        elector.release()  # get + update
        assert "holderIdentity" not in crds.get_json("lease", "-n", lease_ns, "ops-helm-e2e-leader")["spec"]
    finally:
        elector.release()  # ends the election thread, also when the test fails
    assert exits == []
