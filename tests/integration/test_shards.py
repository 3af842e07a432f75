"""Sharding: two operators, each with a namespace label selector, split the releases of a cluster.

Each operator serves only the namespaces whose labels match its HELM_E2E_NAMESPACE_SELECTOR; a namespace
labelled later joins its shard without an operator restart (kopf is started again in-process).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import ROOT, Cluster, OperatorProcess, wait_until

TINY = str(ROOT / "tests" / "data" / "charts" / "tiny")
LABEL = "helm-e2e.dev/shard"


@pytest.fixture
def shard_namespaces(crds: Cluster) -> Iterator[dict[str, str]]:
    """Three fresh namespaces, a and b labelled for the shards of this test only; c unlabelled yet."""
    token = secrets.token_hex(3)
    names = {s: f"scale-shard-{s}-{token}" for s in ("a", "b", "c")}
    for shard, name in names.items():
        crds.kubectl("create", "namespace", name)
        if shard != "c":
            crds.kubectl("label", "namespace", name, f"{LABEL}={shard}-{token}")
    names["token"] = token
    yield names
    for shard in ("a", "b", "c"):
        crds.kubectl("delete", "namespace", names[shard], "--wait=false", check=False)


def shard_operator(cluster: Cluster, namespace: str, selector: str, workdir: Path) -> OperatorProcess:
    env = {"HELM_E2E_WATCH_NAMESPACES": "", "HELM_E2E_NAMESPACE_SELECTOR": selector}
    return OperatorProcess(cluster, namespace, workdir, env).start()


def created(op: OperatorProcess, run: str) -> bool:
    return any("run.created" in line and f"run={run} " in line for line in op.logs().splitlines())


def test_two_operators_on_disjoint_shards_each_create_runs_only_for_their_own_releases(
    crds: Cluster, shard_namespaces: dict[str, str], tmp_path: Path
) -> None:
    ns, token = shard_namespaces, shard_namespaces["token"]
    op_a = shard_operator(crds, ns["a"], f"{LABEL}=a-{token}", tmp_path)
    op_b = shard_operator(crds, ns["b"], f"{LABEL}=b-{token}", tmp_path)
    try:
        crds.helm("install", "ra", TINY, "-n", ns["a"])
        crds.helm("install", "rb", TINY, "-n", ns["b"])
        wait_until(lambda: created(op_a, "ra-1"), what="shard a's operator creates ra-1")
        wait_until(lambda: created(op_b, "rb-1"), what="shard b's operator creates rb-1")

        # a namespace labelled later joins shard a while both operators run
        crds.kubectl("label", "namespace", ns["c"], f"{LABEL}=a-{token}")
        wait_until(lambda: "shard.changed" in op_a.logs(), what="shard a sees its new namespace")
        crds.helm("install", "rc", TINY, "-n", ns["c"])
        wait_until(lambda: created(op_a, "rc-1"), what="shard a's operator creates rc-1")
        phase = wait_until(
            lambda: (
                (crds.try_get_json("e2erun", "rc-1", "-n", ns["c"]) or {}).get("status", {}).get("phase")
                in ("Succeeded",)
            ),
            what="rc-1 runs to the end",
        )
        assert phase
        op_a.assert_alive()
        op_b.assert_alive()
        assert op_a.starts == 1  # no process restart: kopf started again inside it
        for run in ("rb-1",):
            assert not created(op_a, run)
        for run in ("ra-1", "rc-1"):
            assert not created(op_b, run)
        assert "shard.changed" not in op_b.logs()
    finally:
        op_a.stop()
        op_b.stop()
