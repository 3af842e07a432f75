"""GitOps with the real helm against the local apiserver: Flux-managed releases (issue 28, docs/gitops.md).

Flux's helm-controller is not run here. Its releases are made by the real helm from a chart whose objects
carry the labels Flux's post-renderer puts on them (tests/data/charts/flux-tiny), and its HelmRelease is
written as Flux's API holds it: the spec as a user writes it, the status as the controller writes it
(tests/data/crds: a minimal stand-in CRD). kwok runs the test pods.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, Cluster, MailSink, assert_stays, wait_until
from test_operator import events, get_run, runs, wait_run
from test_rollback import history, wait_condition

FLUX_CHART = str(ROOT / "tests" / "data" / "charts" / "flux-tiny")
HELM_RELEASE_CRD = ROOT / "tests" / "data" / "crds" / "helmreleases.helm.toolkit.fluxcd.io.yaml"
SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"

SUITE = """
apiVersion: helm-e2e.dev/v1alpha1
kind: E2ESuite
metadata: {name: api}
spec:
  tests:
  - name: api
    metadata:
      annotations: {"sim.helm-e2e.dev/exit-code": "0", "sim.helm-e2e.dev/duration": "1s"}
    template:
      containers: [{name: t, image: busybox}]
"""


@pytest.fixture(autouse=True)
def flux_api(cluster: Cluster) -> None:
    """This branch's CRDs, and the HelmRelease API as Flux installs it (kept: other tests may use it)."""
    cluster.apply_crds()
    cluster.kubectl("apply", "-f", str(HELM_RELEASE_CRD))
    cluster.kubectl("wait", "--for=condition=Established", "crd/helmreleases.helm.toolkit.fluxcd.io")
    wait_until(
        lambda: cluster.kubectl("get", "helmreleases", "-A", check=False).returncode == 0,
        what="the helmreleases API served",
    )


def write_helm_release(cluster: Cluster, namespace: str, *, test_enable: bool) -> None:
    """A HelmRelease `web` for release `web` in `namespace` (Flux's defaults: release name = its name,
    storage and target namespace = its own), as a user writes it."""
    spec: dict[str, Any] = {
        "interval": "30s",
        "chart": {"spec": {"chart": "flux-tiny", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
        "upgrade": {"remediation": {"retries": 1, "strategy": "rollback"}},
    }
    if test_enable:
        spec["test"] = {"enable": True}
    body = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": spec,
    }
    cluster.apply(json.dumps(body), namespace)


def flux_snapshot(
    namespace: str, version: int, *, test_phase: str | None, action: str = "install", key: str = "web-smoke"
) -> dict[str, Any]:
    """One `status.history` snapshot as helm-controller v1.6.3 writes it: with `test_phase`, Flux tested the
    revision (`testHooks`, keyed by the bare hook name; older Flux: `<namespace>/<hook>`, see `key`). The
    chart version of a chartRef source carries `+<first 12 hex of the artifact digest>`."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    snapshot: dict[str, Any] = {
        "apiVersion": "v2",
        "name": "web",
        "namespace": namespace,
        "version": version,
        "action": action,
        "status": "deployed",
        "chartName": "flux-tiny",
        "chartVersion": "0.1.0+865aba88eb13",
        "appVersion": "1.0.0",
        "configDigest": "sha256:0000",
        "digest": "sha256:1111",
        "firstDeployed": now,
        "lastDeployed": now,
    }
    if test_phase:
        snapshot["testHooks"] = {key: {"lastStarted": now, "lastCompleted": now, "phase": test_phase}}
    return snapshot


def write_flux_status(
    cluster: Cluster, namespace: str, *, version: int, test_phase: str | None, key: str = "web-smoke"
) -> None:
    """The status helm-controller writes once it released `version` (and, with `test_phase`, tested it)."""
    write_flux_history(
        cluster, namespace, [flux_snapshot(namespace, version, test_phase=test_phase, key=key)]
    )


def write_flux_history(cluster: Cluster, namespace: str, history: list[dict[str, Any]]) -> None:
    """`status.history` (newest snapshot first) and the Ready condition as helm-controller writes them."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    hooks: dict[str, dict[str, Any]] = history[0].get("testHooks") or {}
    phase = next((hook.get("phase") for hook in hooks.values()), None)
    ready = "True" if phase in (None, "Succeeded") else "False"
    status = {
        "observedGeneration": 1,
        "storageNamespace": namespace,
        "lastAttemptedRevision": "0.1.0+865aba88eb13",
        "history": history,
        "conditions": [
            {
                "type": "Ready",
                "status": ready,
                "reason": "InstallSucceeded" if ready == "True" else "TestFailed",
                "message": f"Helm release web/web.v{history[0]['version']} with chart flux-tiny@0.1.0",
                "lastTransitionTime": now,
                "observedGeneration": 1,
            }
        ],
    }
    cluster.kubectl(
        "patch", "helmrelease", "web", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip


def test_when_flux_runs_the_chart_tests_the_run_has_only_the_suites_tests(
    cluster: Cluster, namespace: str, start_operator: Callable[..., Any]
) -> None:
    write_helm_release(cluster, namespace, test_enable=True)
    cluster.apply(SUITE, namespace)
    start_operator()
    cluster.helm("install", "web", FLUX_CHART, "-n", namespace, "--labels", f"helm-e2e.dev/revision={SHA}")
    wait_until(
        lambda: (
            [
                t["phase"]
                for t in (get_run(cluster, namespace, "web-1") or {}).get("status", {}).get("tests", [])
            ]
            == ["Pending", "Succeeded"]
        ),
        what="the suite's test done, Flux's waiting",
    )  # the suite's test passed; Flux has not tested revision 1 yet: the run waits for it
    write_flux_status(cluster, namespace, version=1, test_phase="Succeeded")
    run = wait_run(cluster, namespace, "web-1")
    assert run["status"]["phase"] == "Succeeded"
    assert [(t["name"], t["source"]) for t in run["spec"]["tests"]] == [
        ("web-smoke", "flux"),
        ("api", "suite/api"),
    ]
    flux = run["status"]["tests"][0]
    assert (flux["name"], flux["phase"], flux.get("pod", "")) == ("web-smoke", "Succeeded", "")
    assert flux["message"] == f"run by Flux HelmRelease {namespace}/web: Succeeded"
    release = run["spec"]["release"]
    assert release["managedBy"] == {
        "kind": "HelmRelease",
        "name": "web",
        "namespace": namespace,
        "tests": True,
    }
    assert release["commit"] == SHA
    assert ("Normal", "FluxTests") in events(cluster, namespace, "web-1")
    pods = cluster.get_json("pods", "-n", namespace, "-l", "helm-e2e.dev/run=web-1")["items"]
    assert [p["metadata"]["name"] for p in pods] == ["web-1-api"]  # no second copy of the chart's test


def test_a_chart_test_that_failed_under_flux_fails_the_run(
    cluster: Cluster, namespace: str, start_operator: Callable[..., Any]
) -> None:
    write_helm_release(cluster, namespace, test_enable=True)
    # Flux tested before we looked (keyed `<namespace>/<hook>` as older Flux versions wrote it)
    write_flux_status(cluster, namespace, version=1, test_phase="Failed", key=f"{namespace}/web-smoke")
    start_operator()
    cluster.helm("install", "web", FLUX_CHART, "-n", namespace)
    run = wait_run(cluster, namespace, "web-1")
    assert run["status"]["phase"] == "Failed"
    assert [(t["name"], t["phase"], t["reason"]) for t in run["status"]["tests"]] == [
        ("web-smoke", "Failed", "FluxFailed")
    ]
    assert cluster.get_json("pods", "-n", namespace, "-l", "helm-e2e.dev/run=web-1")["items"] == []


def test_without_flux_tests_the_chart_tests_run_here_and_the_run_names_the_helmrelease(
    cluster: Cluster, namespace: str, start_operator: Callable[..., Any]
) -> None:
    write_helm_release(cluster, namespace, test_enable=False)
    start_operator()
    cluster.helm("install", "web", FLUX_CHART, "-n", namespace)
    run = wait_run(cluster, namespace, "web-1")
    assert run["status"]["phase"] == "Succeeded"
    assert [(t["name"], t["source"]) for t in run["spec"]["tests"]] == [("web-smoke", "hook")]
    assert run["spec"]["release"]["managedBy"] == {
        "kind": "HelmRelease",
        "name": "web",
        "namespace": namespace,
        "tests": False,
    }
    assert "commit" not in run["spec"]["release"]
    assert ("Normal", "FluxTests") not in events(cluster, namespace, "web-1")


def test_a_failing_flux_release_is_never_rolled_back_and_the_mail_says_how_to_with_flux(
    cluster: Cluster,
    namespace: str,
    start_operator: Callable[..., Any],
    sink: tuple[MailSink, int],
) -> None:
    """HELM_E2E_ROLLBACK=on-failure: a release of any other origin would go back to revision 1 (see
    test_rollback.py); Flux's would be upgraded back by Flux, and rolled back again, forever."""
    mails, port = sink
    write_helm_release(cluster, namespace, test_enable=False)
    start_operator(
        rollback="on-failure", smtp_host="127.0.0.1", smtp_port=str(port), mail_to="dev@example.com"
    )
    cluster.helm("install", "web", FLUX_CHART, "-n", namespace)
    assert wait_run(cluster, namespace, "web-1")["status"]["phase"] == "Succeeded"
    cluster.helm(
        "upgrade", "web", FLUX_CHART, "-n", namespace, "--set", "test.exitCode=1",
        "--labels", f"helm-e2e.dev/revision={SHA}",
    )  # fmt: skip

    assert wait_run(cluster, namespace, "web-2")["status"]["phase"] == "Failed"
    decided = wait_condition(cluster, namespace, "web-2", "False")
    assert decided["reason"] == "ManagedByFlux"
    assert f"HelmRelease {namespace}/web" in decided["message"]
    assert ("Warning", "RolledBack") in events(cluster, namespace, "web-2")
    wait_until(lambda: len(mails.messages) == 2, what="the two reports")
    report = mails.messages[1]
    text = report.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "rolled back" not in str(report["Subject"])
    assert f"Commit      {SHA}" in text
    assert f"Managed by  Flux HelmRelease {namespace}/web" in text
    assert "spec.upgrade.remediation" in text
    assert f"flux suspend helmrelease web -n {namespace}" in text
    # no loop: no rollback revision appears, no third run
    assert_stays(
        lambda: (
            len(history(cluster, namespace, "web")) == 2 and runs(cluster, namespace) == ["web-1", "web-2"]
        ),
        seconds=5,
        what="no helm rollback of a Flux release",
    )
    run = get_run(cluster, namespace, "web-2")
    assert run is not None
    assert run["spec"]["release"]["commit"] == SHA
    assert "rollback" not in run["status"]


def test_labels_naming_another_namespaces_helmrelease_never_drop_the_chart_tests(
    cluster: Cluster, namespace: str, start_operator: Callable[..., Any], tmp_path: Path
) -> None:
    """A tenant's chart labelled with another team's HelmRelease (which runs its own tests): that
    HelmRelease does not name this release, so it is not believed; the chart's tests still run here."""
    other = f"{namespace}-o"[:63]
    cluster.kubectl("create", "namespace", other)
    try:
        write_helm_release(cluster, other, test_enable=True)
        start_operator()
        cluster.helm(
            "install", "web", FLUX_CHART, "-n", namespace,
            "--set", "flux.name=web", "--set", f"flux.namespace={other}",
        )  # fmt: skip
        run = wait_run(cluster, namespace, "web-1")
        assert [t["source"] for t in run["spec"]["tests"]] == ["hook"]
        assert run["spec"]["release"]["managedBy"]["tests"] is False
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_flux_remediation_the_failed_revision_fails_its_run_and_the_rollbacks_are_tested_here(
    cluster: Cluster, namespace: str, start_operator: Callable[..., Any]
) -> None:
    """What helm-controller v1.6.3 did in the hand check (docs/gitops.md) with `test.enable` and
    `upgrade.remediation: {retries: 1, strategy: rollback}`: upgrade v2, test failed, rollback v3, upgrade
    v4, test failed, rollback v5 within seconds; history then [v5 rollback, v4 tested Failed (its action
    rewritten to rollback), v3 rollback] (v1, v2 trimmed). Flux never tests a rollback: their chart tests
    run here; v4's run ends Failed with Flux's outcome read from history[1], not Superseded by v5."""
    write_helm_release(cluster, namespace, test_enable=True)
    v4 = flux_snapshot(namespace, 4, test_phase="Failed", action="rollback")
    v3 = flux_snapshot(namespace, 3, test_phase=None, action="rollback")
    # v4 not tested yet when its run starts; then, as Flux writes them within a second (faster than the
    # operator's next look, as in the hand check), its failed test and the rollback v5 at once
    write_flux_history(cluster, namespace, [v3])
    start_operator()
    failing = ("--set", "test.exitCode=1")
    steps = [
        ("install", "web", FLUX_CHART),
        ("upgrade", "web", FLUX_CHART, *failing),
        ("rollback", "web", "1"),
        ("upgrade", "web", FLUX_CHART, *failing),
    ]
    for revision, step in enumerate(steps, start=1):  # Flux takes seconds per step: each revision is seen
        cluster.helm(*step, "-n", namespace)
        run = f"web-{revision}"
        wait_until(functools.partial(get_run, cluster, namespace, run), what=f"the run {run}")
    write_flux_history(
        cluster, namespace, [flux_snapshot(namespace, 5, test_phase=None, action="rollback"), v4, v3]
    )
    cluster.helm("rollback", "web", "3", "-n", namespace)

    failed = wait_run(cluster, namespace, "web-4")
    assert failed["status"]["phase"] == "Failed"
    assert [(t["name"], t["phase"], t["reason"]) for t in failed["status"]["tests"]] == [
        ("web-smoke", "Failed", "FluxFailed")
    ]
    rollback = wait_run(cluster, namespace, "web-5")
    assert rollback["spec"]["release"]["trigger"] == "rollback"
    assert [(t["name"], t["source"]) for t in rollback["spec"]["tests"]] == [("web-smoke", "hook")]
    assert rollback["status"]["phase"] == "Succeeded"  # the remediated release, tested here: not Timeout
    assert rollback["status"]["tests"][0]["pod"] == "web-5-web-smoke"
    for name in ("web-1", "web-2", "web-3"):  # nothing recorded by Flux any more (trimmed) or not Flux's
        assert wait_run(cluster, namespace, name)["status"]["phase"] in ("Superseded", "Succeeded")
