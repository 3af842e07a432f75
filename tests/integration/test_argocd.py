"""Argo CD Applications as a source of deploys, against the real apiserver (kwok runs the test pods): runs of
a sync, and its re-runs on demand and on a schedule.

Argo CD's controller is not run here: the Application is written as it writes one (the spec as a user does,
`status.history[]`, `operationState`, `health`, `summary`, `resources` as the controller does), on a
minimal stand-in CRD (tests/data/crds). The Application lives in the test's namespace (Argo CD's "apps in any
namespace") and deploys into it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from harness import ROOT, Cluster, MailSink, assert_stays, wait_until
from test_operator import get_run, runs, wait_run
from test_reruns import helm_e2e
from test_rollback import condition

APPLICATION_CRD = ROOT / "tests" / "data" / "crds" / "applications.argoproj.io.yaml"
SHA = "0b1e5d3c0a6f4e2b9c8d7e6f5a4b3c2d1e0f9a8b"
SUITE = """
apiVersion: helm-e2e.dev/v1alpha1
kind: E2ESuite
metadata: {name: api}
spec:
  applications: {names: [web]}
  tests:
  - name: api
    metadata:
      annotations: {"sim.helm-e2e.dev/exit-code": "EXIT", "sim.helm-e2e.dev/duration": "1s"}
    template:
      containers: [{name: t, image: "registry.example.com/shop/web-e2e:{{ image_tag }}"}]
"""


@pytest.fixture(autouse=True)
def argo_api(cluster: Cluster) -> None:
    """This branch's CRDs, and the Application API as Argo CD installs it (kept: it costs nothing)."""
    cluster.apply_crds()
    cluster.kubectl("apply", "-f", str(APPLICATION_CRD))
    cluster.kubectl("wait", "--for=condition=Established", "crd/applications.argoproj.io")
    wait_until(
        lambda: cluster.kubectl("get", "applications", "-A", check=False).returncode == 0,
        what="the applications API served",
    )


def write_application(
    cluster: Cluster,
    namespace: str,
    *,
    history: int,
    health: str = "Healthy",
    tag: str = "1.0.0",
    synced_at: datetime | None = None,
) -> None:
    """The Application `web` after its sync number `history` (ids 1..history, all of revision SHA, synced
    at `synced_at`, default now), refreshed now (`reconciledAt`, as Argo CD writes at every refresh)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    at = (synced_at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    source = {
        "repoURL": "https://git.example.com/shop.git",
        "path": "charts/web",
        "targetRevision": "main",
        "helm": {"parameters": [{"name": "image.tag", "value": tag}]},
    }
    body = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": namespace, "labels": {"team": "shop"}},
        "spec": {
            "project": "default",
            "source": source,
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
        "status": {
            "reconciledAt": now,
            "sync": {"status": "Synced", "revision": SHA, "comparedTo": {"source": source}},
            "health": {"status": health, "lastTransitionTime": at},
            "history": [
                {"id": i, "revision": SHA, "deployedAt": at, "deployStartedAt": at, "source": source}
                for i in range(1, history + 1)
            ],
            "operationState": {
                "operation": {"sync": {"revision": SHA}, "initiatedBy": {"automated": True}},
                "phase": "Succeeded",
                "message": "successfully synced (all tasks run)",
                "startedAt": at,
                "finishedAt": at,
                "syncResult": {"revision": SHA, "source": source, "resources": []},
            },
            "summary": {"images": [f"registry.example.com/shop/web:{tag}"]},
            "resources": [
                {
                    "group": "apps",
                    "version": "v1",
                    "kind": "Deployment",
                    "namespace": namespace,
                    "name": "web",
                    "status": "Synced",
                    "health": {
                        "status": health,
                        **({} if health == "Healthy" else {"message": "rolling out"}),
                    },
                }
            ],
            "sourceType": "Helm",
        },
    }
    cluster.apply(json.dumps(body), namespace)


def suite(cluster: Cluster, namespace: str, *, exit_code: int = 0) -> None:
    cluster.apply(SUITE.replace("EXIT", str(exit_code)), namespace)


def test_a_healthy_sync_is_a_run_and_a_sync_of_the_same_revision_with_new_parameters_another(
    cluster: Cluster, namespace: str, start_operator: Callable[..., Any]
) -> None:
    suite(cluster, namespace)
    start_operator()
    write_application(cluster, namespace, history=1)
    run = wait_run(cluster, namespace, "web-a1")
    assert run["status"]["phase"] == "Succeeded"
    release = run["spec"]["release"]
    assert (release["trigger"], release["revision"], release["imageTag"], release["commit"]) == (
        "sync", 1, "1.0.0", SHA,
    )  # fmt: skip
    assert release["managedBy"] == {
        "kind": "Application",
        "name": "web",
        "namespace": namespace,
        "tests": False,
    }
    assert [t["source"] for t in run["spec"]["tests"]] == ["suite/api"]
    pod = cluster.get_json("pod", "-n", namespace, "web-a1-api")
    assert pod["spec"]["containers"][0]["image"] == "registry.example.com/shop/web-e2e:1.0.0"

    write_application(cluster, namespace, history=2, tag="1.1.0")  # the same revision, new parameters
    run2 = wait_run(cluster, namespace, "web-a2")
    assert (run2["status"]["phase"], run2["spec"]["release"]["imageTag"]) == ("Succeeded", "1.1.0")
    assert runs(cluster, namespace) == ["web-a1", "web-a2"]


def test_a_sync_is_tested_only_once_the_application_is_healthy(
    cluster: Cluster, namespace: str, start_operator: Callable[..., Any]
) -> None:
    suite(cluster, namespace)
    start_operator()
    write_application(cluster, namespace, history=1, health="Progressing")
    assert_stays(lambda: runs(cluster, namespace) == [], seconds=3, what="no run while Progressing")
    write_application(cluster, namespace, history=1)
    assert wait_run(cluster, namespace, "web-a1")["status"]["phase"] == "Succeeded"


def test_an_application_not_healthy_in_time_gets_a_run_that_ends_naming_what(
    cluster: Cluster, namespace: str, start_operator: Callable[..., Any]
) -> None:
    suite(cluster, namespace)
    start_operator(ready_timeout_seconds="2")
    synced = datetime.now(UTC)
    write_application(cluster, namespace, history=1, health="Degraded", synced_at=synced)
    assert_stays(lambda: runs(cluster, namespace) == [], seconds=1.5, what="no run within the timeout")

    def refreshed() -> dict[str, Any] | None:  # Argo CD rewrites status.reconciledAt at every refresh
        write_application(cluster, namespace, history=1, health="Degraded", synced_at=synced)
        return get_run(cluster, namespace, "web-a1")

    wait_until(refreshed, timeout=30, interval=1, what="the not-ready run")
    run = wait_run(cluster, namespace, "web-a1")
    assert run["status"]["phase"] == "Error"
    assert [t["reason"] for t in run["status"]["tests"]] == ["ReleaseNotReady"]
    assert run["status"]["message"] == (
        "application not Healthy within 2s: Degraded; deployment/web Degraded (rolling out)"
    )


def test_a_failing_sync_is_not_rolled_back_and_the_mail_says_how_to_with_argo(
    cluster: Cluster, namespace: str, start_operator: Callable[..., Any], sink: tuple[MailSink, int]
) -> None:
    mails, port = sink
    suite(cluster, namespace, exit_code=1)
    start_operator(
        rollback="on-failure", smtp_host="127.0.0.1", smtp_port=str(port), mail_to="dev@example.com"
    )
    write_application(cluster, namespace, history=2)
    run = wait_run(cluster, namespace, "web-a2")
    assert run["status"]["phase"] == "Failed"
    assert run["spec"].get("onFailure") in (None, "none")
    wait_until(lambda: len(mails.messages) == 1, what="the report")
    assert condition(get_run(cluster, namespace, "web-a2")) is None  # no rollback asked, none decided
    text = mails.messages[0].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert f"Managed by  Argo CD Application {namespace}/web (sync 2)" in text
    assert "argocd app rollback web 1" in text
    assert f"Commit      {SHA}" in text


def test_a_rerun_of_an_application_run_retests_its_sync_once_as_a_new_attempt(
    cluster: Cluster, namespace: str, start_operator: Callable[..., Any]
) -> None:
    suite(cluster, namespace)
    op = start_operator()
    write_application(cluster, namespace, history=1, tag="1.2.0")
    wait_run(cluster, namespace, "web-a1")

    requested = helm_e2e(cluster, "rerun", "web", "-n", namespace, "--wait", "--timeout", "60")
    assert requested.returncode == 0, requested.stdout + requested.stderr
    assert f"waiting for E2ERun {namespace}/web-a1 " in requested.stdout
    assert f"following E2ERun {namespace}/web-a1-r2 (attempt 2)" in requested.stdout
    again = wait_run(cluster, namespace, "web-a1-r2")
    assert again["status"]["phase"] == "Succeeded"
    assert (again["spec"]["attempt"], again["spec"]["request"]["trigger"]) == (2, "rerun")
    release = again["spec"]["release"]
    assert (release["revision"], release["imageTag"], release["commit"], release["managedBy"]["kind"]) == (
        1, "1.2.0", SHA, "Application",
    )  # fmt: skip
    pod = cluster.get_json("pod", "-n", namespace, "web-a1-r2-api")
    assert pod["spec"]["containers"][0]["image"] == "registry.example.com/shop/web-e2e:1.2.0"

    op.kill()  # the annotation is still on web-a1: a restarted operator must not run it again
    op.start()
    assert_stays(
        lambda: runs(cluster, namespace) == ["web-a1", "web-a1-r2"], seconds=5, what="one attempt per token"
    )
    # by hand, on the re-run itself: the next attempt of the same sync
    cluster.kubectl("annotate", "e2erun", "web-a1-r2", "-n", namespace, "helm-e2e.dev/rerun=by-hand")
    third = wait_run(cluster, namespace, "web-a1-r3")
    assert (third["spec"]["attempt"], third["spec"]["release"]["revision"]) == (3, 1)
    op.assert_alive()


def test_a_rerun_asked_in_another_namespace_than_the_applications_is_refused(
    cluster: Cluster, namespace: str, start_operator: Callable[..., Any]
) -> None:
    tenant = f"{namespace}-t"
    cluster.kubectl("create", "namespace", tenant)
    try:
        suite(cluster, namespace)
        start_operator(watch_namespaces=f"{namespace},{tenant}")
        write_application(cluster, namespace, history=1)
        wait_run(cluster, namespace, "web-a1")
        # a tenant's copy of the run, naming this Application (and its uid), annotated in its own namespace
        forged = cluster.get_json("e2erun", "-n", namespace, "web-a1")
        forged["metadata"] = {"name": "web-a1", "namespace": tenant, "labels": forged["metadata"]["labels"]}
        forged["spec"]["release"]["namespace"] = tenant
        forged.pop("status", None)
        cluster.apply(json.dumps(forged), tenant)
        cluster.kubectl("annotate", "e2erun", "web-a1", "-n", tenant, "helm-e2e.dev/rerun=forged")
        assert_stays(
            lambda: runs(cluster, namespace) == ["web-a1"] and runs(cluster, tenant) == ["web-a1"],
            seconds=5,
            what="no re-run asked from another namespace",
        )
        cluster.kubectl("annotate", "e2erun", "web-a1", "-n", namespace, "helm-e2e.dev/rerun=here")
        assert wait_run(cluster, namespace, "web-a1-r2")["spec"]["request"]["token"] == "here"
        assert runs(cluster, tenant) == ["web-a1"]
    finally:
        cluster.kubectl("delete", "namespace", tenant, "--wait=false", check=False)


def test_a_scheduled_suite_reverifies_the_applications_latest_tested_sync_once(
    cluster: Cluster, namespace: str, start_operator: Callable[..., Any]
) -> None:
    suite(cluster, namespace)
    start_operator()
    write_application(cluster, namespace, history=2)
    wait_run(cluster, namespace, "web-a2")
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    last = (midnight - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")  # three missed nightly slots
    nightly = SUITE.replace("name: api", "name: nightly").replace("EXIT", "0")
    nightly = nightly.replace("spec:\n", 'spec:\n  schedule: {cron: "0 0 * * *", timeZone: UTC}\n', 1)

    def scheduled_run() -> dict[str, Any] | None:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=nightly, check=False)  # (idem)
        body = cluster.get_json("e2esuite", "-n", namespace, "nightly")
        if not (body.get("status") or {}).get("lastScheduleTime"):
            patch = json.dumps({"status": {"lastScheduleTime": last}})
            cluster.kubectl(
                "patch", "e2esuite", "nightly", "-n", namespace, "--subresource=status", "--type=merge", "-p", patch
            )  # fmt: skip
        return get_run(cluster, namespace, "web-a2-r2")

    wait_until(scheduled_run, timeout=60, what="the scheduled run")
    run = wait_run(cluster, namespace, "web-a2-r2")
    assert run["status"]["phase"] == "Succeeded"
    assert (run["spec"]["request"]["trigger"], run["spec"]["request"]["suite"]) == ("schedule", "nightly")
    assert run["spec"]["release"]["revision"] == 2  # the latest sync, its history id
    assert [t["name"] for t in run["spec"]["tests"]] == ["nightly"]  # the suite's own tests only
    assert_stays(
        lambda: runs(cluster, namespace) == ["web-a2", "web-a2-r2"], seconds=5, what="one run for the slots"
    )
