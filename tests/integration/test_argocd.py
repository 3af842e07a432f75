"""Argo CD Applications as a source of deploys, against the real apiserver (kwok runs the test pods).

Argo CD's controller is not run here: the Application is written as it writes one (the spec as a user does,
`status.history[]`, `operationState`, `health`, `summary`, `resources` as the controller does), on a
minimal stand-in CRD (tests/data/crds). The Application lives in the test's namespace (Argo CD's "apps in any
namespace") and deploys into it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from harness import ROOT, Cluster, MailSink, assert_stays, wait_until
from test_operator import get_run, runs, wait_run
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
