"""Lifecycle settings: startup grace, pod TTL and the history limit, against the real cluster."""

from __future__ import annotations

from typing import Any

from harness import ROOT, Cluster, assert_stays, wait_until
from test_operator import runs, wait_run

TINY = str(ROOT / "tests" / "data" / "charts" / "tiny")


def test_on_start_only_recently_deployed_revisions_get_a_run(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    cluster.helm("install", "old", TINY, "-n", namespace)  # deployed while no operator runs
    op = start_operator(startup_grace_seconds="0")
    assert_stays(lambda: runs(cluster, namespace) == [], seconds=4, what="no run for an old revision")
    op.stop()
    start_operator(startup_grace_seconds="600")
    assert wait_run(cluster, namespace, "old-1")["status"]["phase"] == "Succeeded"


def test_finished_pods_are_deleted_after_the_ttl_and_only_the_history_limit_of_runs_is_kept(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    start_operator(pod_ttl_seconds="0", history_limit="2")
    cluster.helm("install", "h", TINY, "-n", namespace)
    first = wait_run(cluster, namespace, "h-1")
    wait_until(
        lambda: not cluster.get_json("pods", "-n", namespace, "-l", "helm-e2e.dev/run=h-1")["items"],
        what="pods of h-1 deleted after the TTL",
    )
    wait_until(
        lambda: (
            (cluster.try_get_json("e2erun", "-n", namespace, "h-1") or {})
            .get("status", {})
            .get("podsDeletedAt")
        ),
        what="podsDeletedAt recorded",
    )
    assert first["status"]["tests"][0]["phase"] == "Succeeded"  # results outlive the pods

    for revision in (2, 3):
        cluster.helm("upgrade", "h", TINY, "-n", namespace)
        wait_run(cluster, namespace, f"h-{revision}")
    wait_until(lambda: runs(cluster, namespace) == ["h-2", "h-3"], what="only the newest 2 runs kept")
