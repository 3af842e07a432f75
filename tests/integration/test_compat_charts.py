"""Compatibility with `helm test`: the fixture chart corpus (tests/data/charts/hooks-*), run both ways.

For each case the chart is installed into a fresh namespace; the real release Secret's hooks are planned
(core.hooks, no operator needed), the operator's E2ERun is awaited, then `helm test` runs on the same
release and is the oracle: every test hook Helm ran must have the same pass/fail in the E2ERun. Where
helm-e2e deviates on purpose (a cluster-scoped hook is refused) the case says so and what we report.

`helm test` runs hooks one after another and stops at the first failure (Helm v3.19 pkg/action/hooks.go
`execHook`), so only hooks with a `last_run` phase in `helm status -o json` are compared. The oracle is the
helm under test: v3.19.5, or Helm 4.3.1 with HELM_E2E_TEST_HELM=helm4 (make integration-helm4).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from harness import ROOT, Cluster, wait_until

from helm_e2e.core.plan.chart_hooks import build_hook_set
from helm_e2e.core.sources.helm_secret import decode_release_secret

CHARTS = ROOT / "tests" / "data" / "charts"
RELEASE = "rel"
FINAL = ("Succeeded", "Failed", "Error", "Cancelled", "Superseded")
PASSED, FAILED = "Succeeded", "Failed"


@dataclass(frozen=True)
class Case:
    chart: str
    helm: dict[str, str]  # test hook name → phase `helm test` records (the oracle, on kwok)
    values: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()  # "Kind/name" of the supporting objects helm-e2e creates, in order
    refused: int = 0  # hooks helm-e2e refuses (then every test of the set ends Error, reason HookRefused)
    ours: dict[str, str] = field(default_factory=dict)  # where we deviate from helm on purpose

    @property
    def id(self) -> str:
        return "-".join([self.chart, *(v.replace("=", "-").replace(".", "-") for v in self.values)])


CASES = [
    Case("hooks-bats", {"rel-test": PASSED}, resources=("ServiceAccount/rel-test", "ConfigMap/rel-test")),
    Case("hooks-bats", {"rel-test": FAILED}, values=("test.exitCode=1",),
         resources=("ServiceAccount/rel-test", "ConfigMap/rel-test")),
    Case("hooks-secret", {"rel-login": PASSED}, resources=("Secret/rel-test-credentials",)),
    Case("hooks-job", {"rel-checker": PASSED},
         resources=("ServiceAccount/rel-checker", "ConfigMap/rel-checker-debug", "ConfigMap/rel-checker-script")),
    Case("hooks-job", {"rel-checker": FAILED}, values=("test.exitCode=1",),
         resources=("ServiceAccount/rel-checker", "ConfigMap/rel-checker-debug", "ConfigMap/rel-checker-script")),
    Case("hooks-legacy", {"rel-legacy-test": PASSED}),
    Case("hooks-clusterrole", {"rel-nodes": PASSED}, refused=1, ours={"rel-nodes": "Error"}),
    Case("hooks-parent", {"rel-child-test": PASSED, "rel-parent-test": PASSED}),
    Case("hooks-parent", {"rel-child-test": FAILED}, values=("child.test.exitCode=1",)),
    # on kwok nothing mounts volumes, so the missing ConfigMap does not stop the pod (a real kubelet would
    # keep it in ContainerCreating until the timeout, and both would fail it)
    Case("hooks-missing-configmap", {"rel-uses-missing": PASSED}),
]  # fmt: skip


def install(cluster: Cluster, namespace: str, case: Case) -> None:
    sets = [arg for value in case.values for arg in ("--set", value)]
    cluster.helm("install", RELEASE, str(CHARTS / case.chart), "-n", namespace, *sets)


def planned_hook_set(cluster: Cluster, namespace: str) -> Any:
    secret = cluster.get_json("secret", "-n", namespace, f"sh.helm.release.v1.{RELEASE}.v1")
    return build_hook_set(decode_release_secret(secret), default_timeout=300)


def helm_test(cluster: Cluster, namespace: str) -> dict[str, str]:
    """Run `helm test`; the phase of every test Pod/Job hook it ran (from the release it rewrote).

    Objects our run kept (a `hook-failed`-only policy keeps them, as Helm's own would after a `helm test`)
    would make Helm's create fail with AlreadyExists: the oracle runs on a namespace without them."""
    kinds = "configmaps,secrets,serviceaccounts,services,persistentvolumeclaims,roles,rolebindings,jobs"
    selector = "app.kubernetes.io/managed-by=helm-e2e"
    cluster.kubectl("delete", kinds, "-n", namespace, "-l", selector, "--wait=true", "--timeout=60s")
    cluster.helm("test", RELEASE, "-n", namespace, "--timeout", "3m", check=False, timeout=240)
    status = json.loads(cluster.helm("status", RELEASE, "-n", namespace, "-o", "json").stdout)
    return {
        hook["name"]: hook["last_run"]["phase"]
        for hook in status.get("hooks") or []
        if hook["kind"] in ("Pod", "Job") and (hook.get("last_run") or {}).get("phase") in (PASSED, FAILED)
    }


def clean_cluster_scoped(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("delete", "clusterrole", f"{namespace}-{RELEASE}-test-reader", "--ignore-not-found")


def wait_run(cluster: Cluster, namespace: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        run = cluster.try_get_json("e2erun", "-n", namespace, f"{RELEASE}-1")
        return run if run and (run.get("status") or {}).get("phase") in FINAL else None

    run: dict[str, Any] = wait_until(probe, timeout=180, what=f"E2ERun {RELEASE}-1 to end")
    return run


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_hook_set_planned_from_the_real_release_secret_matches_the_chart(
    cluster: Cluster, namespace: str, case: Case
) -> None:
    install(cluster, namespace, case)
    hooks = planned_hook_set(cluster, namespace)
    assert [f"{r.kind}/{r.name}" for r in hooks.resources] == list(case.resources)
    assert len(hooks.refused) == case.refused, hooks.refused
    expected_tests = set(case.helm) | ({"rel-parent-test"} if case.chart == "hooks-parent" else set())
    assert {t.name for t in hooks.tests} == expected_tests
    assert all(bool(t.blocked) == bool(case.refused) for t in hooks.tests)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_helm_test_on_the_corpus_gives_the_outcomes_the_chart_is_built_for(
    cluster: Cluster, namespace: str, case: Case
) -> None:
    install(cluster, namespace, case)
    try:
        assert helm_test(cluster, namespace) == case.helm
    finally:
        clean_cluster_scoped(cluster, namespace)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_operator_agrees_with_helm_test(
    cluster: Cluster, namespace: str, start_operator: Any, case: Case
) -> None:
    start_operator()
    install(cluster, namespace, case)
    run = wait_run(cluster, namespace)
    ours = {t["name"]: t for t in run["status"]["tests"]}
    try:
        oracle = helm_test(cluster, namespace)
    finally:
        clean_cluster_scoped(cluster, namespace)
    assert oracle == case.helm
    for name, phase in oracle.items():
        expected = case.ours.get(name, phase)
        got = ours[name]["phase"]
        assert got == expected or (expected == FAILED and got == "Error"), (name, ours[name])
    # helm.sh/hook-output-log-policy (Helm 4): hook-succeeded puts a passing test's log in the report
    logged = {t["name"] for t in run["spec"]["tests"] if t.get("logOnSuccess")}
    assert logged == ({"rel-test"} if case.chart == "hooks-bats" else set())
    if case.refused:
        assert all(t["reason"] == "HookRefused" for t in ours.values())
        warnings = cluster.get_json("events", "-n", namespace, "--field-selector", "reason=HookRefused")
        assert warnings["items"], "a refused hook is a Warning Event"


def test_refused_hook_messages_never_carry_secret_values(cluster: Cluster, namespace: str) -> None:
    """The hook Secret's password never appears in what we plan to report (refusals, test fields)."""
    install(cluster, namespace, Case("hooks-secret", {}))
    hooks = planned_hook_set(cluster, namespace)
    secret_body = next(r.body for r in hooks.resources if r.kind == "Secret")
    assert secret_body["stringData"]["password"] == "not-a-real-password"  # kept for creation only
    text = json.dumps([hooks.refused, [t.model_dump() for t in hooks.tests]])
    assert "not-a-real-password" not in text
    assert base64.b64encode(b"not-a-real-password").decode() not in text
