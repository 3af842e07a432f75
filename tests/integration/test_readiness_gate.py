"""The readiness gate end to end: the operator holds a run's tests until the release is rolled out.

kwok marks scheduled pods Ready within a second; a rollout is held back by giving the Deployment's pods a
node label no node has (`web.unschedulable=true`), and released by patching that selector away.
"""

from __future__ import annotations

import json
import time
from typing import Any

from harness import ROOT, Cluster, assert_stays, wait_until
from test_operator import get_run, wait_run

CHART = str(ROOT / "tests" / "data" / "charts" / "rollout")
HELD = ("--set", "web.unschedulable=true")


def ready_condition(run: dict[str, Any] | None) -> dict[str, Any]:
    conditions = ((run or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "ReleaseReady"), {})


def operator_pods(cluster: Cluster, namespace: str) -> list[str]:
    pods = cluster.get_json("pods", "-n", namespace, "-l", "app.kubernetes.io/managed-by=helm-e2e")["items"]
    return [p["metadata"]["name"] for p in pods]


def release_the_rollout(cluster: Cluster, namespace: str) -> None:
    patch = [{"op": "remove", "path": "/spec/template/spec/nodeSelector"}]
    cluster.kubectl("patch", "deployment", "web", "-n", namespace, "--type=json", "-p", json.dumps(patch))


def test_tests_wait_for_a_held_rollout_and_start_once_it_completes(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    start_operator()
    cluster.helm("install", "r", CHART, "-n", namespace, *HELD)  # no --wait: deployed before any pod is ready

    waiting = wait_until(
        lambda: (run := get_run(cluster, namespace, "r-1")) and ready_condition(run).get("reason") and run,
        what="the run to wait for the rollout",
    )
    condition = ready_condition(waiting)
    assert (condition["status"], condition["reason"]) == ("False", "WaitingForRollout")
    assert "deployment/web" in condition["message"]
    assert waiting["status"].get("phase", "Pending") == "Pending"
    assert_stays(
        lambda: operator_pods(cluster, namespace) == [], seconds=3, what="no test pod while it waits"
    )
    table = cluster.kubectl("get", "e2eruns", "-n", namespace).stdout
    assert "WaitingForRollout" in table

    release_the_rollout(cluster, namespace)
    run = wait_run(cluster, namespace, "r-1")
    assert run["status"]["phase"] == "Succeeded"
    assert ready_condition(run)["reason"] == "RolledOut"
    web = cluster.get_json("deployment", "web", "-n", namespace)
    assert web["status"].get("availableReplicas") == 2
    started = run["status"]["startedAt"]
    assert started >= condition["lastTransitionTime"]  # the tests' clock starts after the wait


def test_a_rollout_that_never_finishes_ends_the_run_release_not_ready_naming_the_deployment(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    start_operator(ready_timeout_seconds="4")
    cluster.helm("install", "r", CHART, "-n", namespace, *HELD)
    run = wait_run(cluster, namespace, "r-1", timeout=60)
    assert run["status"]["phase"] == "Error"
    test = run["status"]["tests"][0]
    assert test["reason"] == "ReleaseNotReady"
    assert "deployment/web" in test["message"]
    assert ready_condition(run)["reason"] == "ReleaseNotReady"
    assert operator_pods(cluster, namespace) == []


def test_the_wait_for_a_rollout_ends_with_the_runs_deadline_whatever_the_readiness_timeout(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    """A gate that asks for 10 minutes still ends at the run's 8 s deadline (it waited on for good)."""
    start_operator(ready_timeout_seconds="600", run_deadline_seconds="8")
    started = time.monotonic()
    cluster.helm("install", "r", CHART, "-n", namespace, *HELD)
    run = wait_run(cluster, namespace, "r-1", timeout=45)
    assert time.monotonic() - started < 40
    assert run["spec"]["readiness"]["timeoutSeconds"] == 8  # capped when planned
    assert run["status"]["phase"] == "Error"
    assert ready_condition(run)["reason"] == "ReleaseNotReady"
    assert "not rolled out within 8s" in ready_condition(run)["message"]
    assert operator_pods(cluster, namespace) == []


def test_a_newer_revision_supersedes_a_waiting_run(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    start_operator()
    cluster.helm("install", "r", CHART, "-n", namespace, *HELD)
    wait_until(
        lambda: ready_condition(get_run(cluster, namespace, "r-1")).get("reason") == "WaitingForRollout",
        what="revision 1 waiting",
    )
    cluster.helm("upgrade", "r", CHART, "-n", namespace, "--set", "web.unschedulable=false")
    assert wait_run(cluster, namespace, "r-1")["status"]["phase"] == "Superseded"
    assert wait_run(cluster, namespace, "r-2")["status"]["phase"] == "Succeeded"


def test_readiness_none_starts_the_tests_at_once(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    start_operator(readiness="none")
    cluster.helm("install", "r", CHART, "-n", namespace, *HELD)
    run = wait_run(cluster, namespace, "r-1")
    assert run["status"]["phase"] == "Succeeded"
    assert ready_condition(run) == {}
