"""The operator core against the real local cluster with the real helm CLI."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from harness import ROOT, Cluster, assert_stays, wait_until

TINY = str(ROOT / "tests" / "data" / "charts" / "tiny")
FINAL = ("Succeeded", "Failed", "Error", "Cancelled", "Superseded")


def get_run(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    return cluster.try_get_json("e2erun", "-n", namespace, name)


def wait_run(
    cluster: Cluster, namespace: str, name: str, *, phases: tuple[str, ...] = FINAL, timeout: float = 90
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        run = get_run(cluster, namespace, name)
        return run if run and run.get("status", {}).get("phase") in phases else None

    return wait_until(probe, timeout=timeout, what=f"E2ERun {name} in {phases}")


def runs(cluster: Cluster, namespace: str) -> list[str]:
    return sorted(r["metadata"]["name"] for r in cluster.get_json("e2eruns", "-n", namespace)["items"])


def events(cluster: Cluster, namespace: str, name: str) -> list[tuple[str, str]]:
    items = cluster.get_json("events", "-n", namespace, "--field-selector", f"involvedObject.name={name}")[
        "items"
    ]
    return [(e["type"], e["reason"]) for e in items]


def test_install_runs_the_charts_test_hook_and_succeeds(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    start_operator()
    cluster.helm("install", "web", TINY, "-n", namespace, "--set", "image.tag=1.4.2")
    run = wait_run(cluster, namespace, "web-1")

    assert run["status"]["phase"] == "Succeeded"
    release = run["spec"]["release"]
    assert (release["revision"], release["trigger"], release["imageTag"]) == (1, "install", "1.4.2")
    assert run["spec"]["tests"] == [
        {"name": "web-smoke", "source": "hook", "timeoutSeconds": 600, "kind": "Pod"}
    ]
    test = run["status"]["tests"][0]
    assert (test["phase"], test["exitCode"], test["pod"]) == ("Succeeded", 0, "web-1-web-smoke")
    assert test["durationSeconds"] >= 0
    conditions = {c["type"]: c["status"] for c in run["status"]["conditions"]}
    assert conditions["Complete"] == "True"
    assert conditions["Succeeded"] == "True"

    pod = cluster.get_json("pod", "-n", namespace, "web-1-web-smoke")
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "E2ERun"
    assert pod["metadata"]["labels"]["helm-e2e.dev/run"] == "web-1"
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env["HELM_E2E_IMAGE_TAG"] == "1.4.2"
    assert env["HELM_E2E_REVISION"] == "1"
    # one Normal Event for a run that went well, at its end (planned, rolled out, started: spec and status)
    reasons = lambda: [reason for _, reason in events(cluster, namespace, "web-1")]  # noqa: E731
    wait_until(lambda: "Completed" in reasons(), what="web-1's Completed Event")
    assert reasons() == ["Completed"]

    table = cluster.kubectl("get", "e2eruns", "-n", namespace).stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "RELEASE",
        "REVISION",
        "IMAGE",
        "TAG",
        "PHASE",
        "PASSED",
        "FAILED",
        "ROLLOUT",
        "AGE",
    ]
    assert table[1].split()[:8] == ["web-1", "web", "1", "1.4.2", "Succeeded", "1", "0", "RolledOut"]


def test_upgrade_with_a_failing_test_records_exit_code_and_log_tail_and_helm_test_adds_nothing(
    cluster: Cluster, namespace: str, start_operator: Any, logdir: Path
) -> None:
    start_operator()
    cluster.helm("install", "api", TINY, "-n", namespace)
    wait_run(cluster, namespace, "api-1")

    cluster.serve_log(
        namespace=namespace,
        pod="api-2-api-smoke",
        workdir=logdir,
        lines=["GET /healthz", "AssertionError: expected 200, got 503"],
    )
    cluster.helm(
        "upgrade",
        "api",
        TINY,
        "-n",
        namespace,
        "--set",
        "test.exitCode=1",
        "--set",
        "test.terminationMessage=health check failed",
    )
    run = wait_run(cluster, namespace, "api-2")

    assert run["status"]["phase"] == "Failed"
    assert run["spec"]["release"]["trigger"] == "upgrade"
    test = run["status"]["tests"][0]
    assert (test["phase"], test["exitCode"], test["reason"]) == ("Failed", 1, "Error")
    assert test["message"] == "health check failed"
    assert "AssertionError: expected 200, got 503" in test["logTail"]
    assert ("Warning", "TestFailed") in events(cluster, namespace, "api-2")

    cluster.helm("test", "api", "-n", namespace, "--timeout", "60s", check=False)  # the hook fails: fine
    # helm test re-saves the deployed secret; the operator must not start another run for it
    assert_stays(
        lambda: runs(cluster, namespace) == ["api-1", "api-2"], seconds=4, what="no run for helm test"
    )

    cluster.helm("rollback", "api", "1", "-n", namespace)
    rolled = wait_run(cluster, namespace, "api-3")
    assert rolled["spec"]["release"]["trigger"] == "rollback"
    assert rolled["status"]["phase"] == "Succeeded"


def test_a_newer_revision_supersedes_the_active_run_and_deletes_its_pods(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    start_operator()
    cluster.helm("install", "q", TINY, "-n", namespace, "--set", "test.duration=60s")
    wait_run(cluster, namespace, "q-1", phases=("Running",))
    cluster.helm("upgrade", "q", TINY, "-n", namespace, "--set", "test.duration=1s")

    first = wait_run(cluster, namespace, "q-1")
    assert first["status"]["phase"] == "Superseded"
    assert first["status"]["tests"][0]["phase"] == "Cancelled"
    assert wait_run(cluster, namespace, "q-2")["status"]["phase"] == "Succeeded"
    wait_until(
        lambda: cluster.try_get_json("pod", "-n", namespace, "q-1-q-smoke") is None,
        what="the superseded run's pod to be deleted",
    )


def test_uninstall_mid_run_cancels_the_run(cluster: Cluster, namespace: str, start_operator: Any) -> None:
    start_operator()
    cluster.helm("install", "gone", TINY, "-n", namespace, "--set", "test.duration=60s")
    wait_run(cluster, namespace, "gone-1", phases=("Running",))
    cluster.helm("uninstall", "gone", "-n", namespace)
    run = wait_run(cluster, namespace, "gone-1")
    assert run["status"]["phase"] == "Cancelled"
    assert ("Normal", "Uninstalled") in events(cluster, namespace, "gone-1")


def test_operator_killed_mid_run_finishes_the_run_after_restart_with_one_pod_per_test(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    op = start_operator()
    cluster.helm("install", "crash", TINY, "-n", namespace, "--set", "test.duration=6s")
    wait_run(cluster, namespace, "crash-1", phases=("Running",))
    op.kill()
    op.start()

    run = wait_run(cluster, namespace, "crash-1")
    assert run["status"]["phase"] == "Succeeded"
    pods = cluster.get_json("pods", "-n", namespace, "-l", "helm-e2e.dev/run=crash-1")["items"]
    assert [p["metadata"]["name"] for p in pods] == ["crash-1-crash-smoke"]
    assert runs(cluster, namespace) == ["crash-1"]
    op.assert_alive()


def _corrupt_secret(namespace: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "helm.sh/release.v1",
            "metadata": {
                "name": "sh.helm.release.v1.broken.v1",
                "namespace": namespace,
                "labels": {"owner": "helm", "name": "broken", "status": "deployed", "version": "1"},
            },
            "data": {"release": base64.b64encode(b"H4sIAAAA-not-gzip!!").decode()},
        }
    )


def test_corrupt_release_secret_gets_a_warning_event_and_the_next_release_still_runs(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    op = start_operator()
    cluster.apply(_corrupt_secret(namespace), namespace)
    wait_until(
        lambda: (
            ("Warning", "ReleaseDecodeFailed") in events(cluster, namespace, "sh.helm.release.v1.broken.v1")
        ),
        what="a Warning Event on the corrupt secret",
    )
    cluster.helm("install", "fine", TINY, "-n", namespace)
    assert wait_run(cluster, namespace, "fine-1")["status"]["phase"] == "Succeeded"
    assert "broken" not in " ".join(runs(cluster, namespace))
    op.assert_alive()
