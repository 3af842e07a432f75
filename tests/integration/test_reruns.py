"""Retries, re-runs and schedules against the real apiserver (kwok finishes the pods, the real helm deploys).

A flaky test is simulated honestly through the operator's per-attempt annotations: the suite annotates
`sim.helm-e2e.dev/exit-code.attempt-1: "1"`, which only attempt 1's pod gets (as `.../exit-code`).
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from harness import ROOT, Cluster, assert_stays, wait_until
from test_operator import TINY, runs, wait_run


@pytest.fixture(autouse=True)
def current_crds(crds: Cluster) -> Iterator[None]:
    """The dev cluster is shared by several checkouts whose test sessions apply their own, older CRDs, and an
    older schema prunes the new fields (spec.attempt, tests[].retries) on write. Keep ours applied while
    these tests run (a no-op when unchanged; CI's cluster has only this checkout's CRDs)."""
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(1.0):
            crds.kubectl("apply", "-f", str(ROOT / "crds"), check=False)

    crds.apply_crds()
    keeper = threading.Thread(target=keep, daemon=True)
    keeper.start()
    yield
    stop.set()
    keeper.join(timeout=10)


def suite(
    name: str, *, retries: int | None = None, annotations: dict[str, str] | None = None, **spec: Any
) -> str:
    test: dict[str, Any] = {
        "name": name,
        "metadata": {"annotations": annotations or {}},
        "template": {"containers": [{"name": "t", "image": "localhost/e2e:{{ image_tag }}"}]},
    }
    if retries is not None:
        test["retries"] = retries
    return json.dumps(
        {
            "apiVersion": "helm-e2e.dev/v1alpha1",
            "kind": "E2ESuite",
            "metadata": {"name": name},
            "spec": {"releases": {"charts": ["tiny"]}, "tests": [test], **spec},
        }
    )


def helm_e2e(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "helm-e2e"), *args],
        capture_output=True,
        text=True,
        env=cluster.env,
        timeout=120,
        check=False,
    )


def test_a_test_that_fails_once_passes_on_its_retry_and_is_reported_flaky(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    start_operator()
    cluster.apply(
        suite("api", retries=2, annotations={"sim.helm-e2e.dev/exit-code.attempt-1": "1"}), namespace
    )
    cluster.helm("install", "fl", TINY, "-n", namespace, "--set", "test.enabled=false")
    run = wait_run(cluster, namespace, "fl-1")

    assert run["status"]["phase"] == "Succeeded"
    assert run["spec"]["tests"][0]["retries"] == 2
    test = run["status"]["tests"][0]
    assert (test["phase"], test["flaky"], test["attempt"], test["pod"]) == (
        "Succeeded",
        True,
        2,
        "fl-1-api-a2",
    )
    assert [(a["attempt"], a["phase"], a["exitCode"]) for a in test["attempts"]] == [
        (1, "Failed", 1),
        (2, "Succeeded", 0),
    ]
    assert run["status"]["summary"]["flaky"] == 1
    pods = cluster.get_json("pods", "-n", namespace, "-l", "helm-e2e.dev/run=fl-1")["items"]
    attempts = {p["metadata"]["name"]: p["metadata"]["labels"]["helm-e2e.dev/attempt"] for p in pods}
    assert attempts == {"fl-1-api": "1", "fl-1-api-a2": "2"}

    waited = helm_e2e(cluster, "wait", "fl", "-n", namespace, "--timeout", "30")
    assert waited.returncode == 0, waited.stderr
    assert "[flaky: passed on attempt 2]" in waited.stdout
    assert "1 flaky" in waited.stdout


def test_a_rerun_request_makes_exactly_one_new_attempt_across_operator_kills(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    op = start_operator()
    cluster.helm("install", "rr", TINY, "-n", namespace)
    wait_run(cluster, namespace, "rr-1")
    op.kill()  # the request arrives while the operator is down

    requested = helm_e2e(cluster, "rerun", "rr", "-n", namespace)
    assert requested.returncode == 0, requested.stderr
    op.start()
    again = wait_run(cluster, namespace, "rr-1-r2", timeout=60)
    assert again["status"]["phase"] == "Succeeded"
    assert (again["spec"]["attempt"], again["spec"]["request"]["trigger"]) == (2, "rerun")
    assert again["spec"]["release"]["revision"] == 1

    op.kill()  # the annotation is still on rr-1: a restarted operator must not run it again
    op.start()
    assert_stays(
        lambda: runs(cluster, namespace) == ["rr-1", "rr-1-r2"], seconds=6, what="one attempt per token"
    )
    op.assert_alive()

    waited = helm_e2e(cluster, "wait", "rr", "-n", namespace, "--timeout", "30")
    assert waited.returncode == 0, waited.stderr
    assert "rr-1-r2" in waited.stdout


def test_a_schedule_with_missed_slots_makes_exactly_one_new_attempt(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    start_operator()
    cluster.helm("install", "sc", TINY, "-n", namespace)
    wait_run(cluster, namespace, "sc-1")

    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    last = (midnight - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")  # three missed nightly slots

    def scheduled_run() -> dict[str, Any] | None:
        nightly = suite("nightly", schedule={"cron": "0 0 * * *", "timeZone": "UTC"})
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=nightly, check=False)  # (idem)
        body = cluster.get_json("e2esuite", "-n", namespace, "nightly")
        if not (body.get("status") or {}).get("lastScheduleTime"):  # (again, should an older CRD prune it)
            patch = json.dumps({"status": {"lastScheduleTime": last}})
            cluster.kubectl(
                "patch", "e2esuite", "nightly", "-n", namespace, "--subresource=status", "--type=merge", "-p", patch
            )  # fmt: skip
        return (
            wait_run(cluster, namespace, "sc-1-r2", timeout=2)
            if "sc-1-r2" in runs(cluster, namespace)
            else None
        )

    run = wait_until(scheduled_run, timeout=60, what="the scheduled run")
    assert run["spec"]["request"]["trigger"] == "schedule"
    assert run["spec"]["request"]["suite"] == "nightly"
    assert [t["name"] for t in run["spec"]["tests"]] == ["nightly"]  # the suite's tests, not the hook
    assert run["status"]["phase"] == "Succeeded"
    status = wait_until(
        lambda: (cluster.get_json("e2esuite", "-n", namespace, "nightly").get("status") or {}).get(
            "lastScheduleTime"
        ),
        what="lastScheduleTime",
    )
    assert datetime.fromisoformat(status.replace("Z", "+00:00")) == midnight
    assert_stays(
        lambda: runs(cluster, namespace) == ["sc-1", "sc-1-r2"], seconds=5, what="one run for the slots"
    )
