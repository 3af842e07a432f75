"""Issue 24 against the real apiserver, real helm and the real operator: a chart's test hooks bind only what
their own hook set created, and no test pod gets a service-account token the pod policy would not give it.

Each attack is installed with `helm install` of a tiny chart (tests/data/charts/trust-*); the operator plans
the release from Helm's own Secret and the test asserts what the cluster holds afterwards, not what the
operator says it did.
"""

from __future__ import annotations

import json
from typing import Any

from harness import ROOT, Cluster, assert_stays
from test_operator import wait_run

CHARTS = ROOT / "tests" / "data" / "charts"
BINDING_CHART = str(CHARTS / "trust-role-binding")
TOKEN_CHART = str(CHARTS / "trust-projected-token")
OURS = "app.kubernetes.io/managed-by=helm-e2e"


def admin_role(namespace: str) -> dict[str, Any]:
    """What a namespace admin made for their own use: read every Secret of the namespace."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "secret-reader", "namespace": namespace},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}],
    }


def names_of(cluster: Cluster, namespace: str, kind: str, *selector: str) -> list[str]:
    items = cluster.get_json(kind, "-n", namespace, *selector)["items"]
    return sorted(i["metadata"]["name"] for i in items)


def run_pods(cluster: Cluster, namespace: str, run: str) -> list[str]:
    return names_of(cluster, namespace, "pods", "-l", f"helm-e2e.dev/run={run}")


def only_test(run: dict[str, Any]) -> dict[str, Any]:
    (test,) = run["status"]["tests"]
    return dict(test)


def test_a_hook_binding_that_names_a_role_the_namespace_already_had_binds_nothing_and_leaves_nothing(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    cluster.apply(json.dumps(admin_role(namespace)), namespace)
    before = cluster.get_json("role", "-n", namespace, "secret-reader")
    start_operator()
    cluster.helm("install", "att", BINDING_CHART, "-n", namespace)

    run = wait_run(cluster, namespace, "att-1")
    test = only_test(run)
    assert (run["status"]["phase"], test["phase"], test["reason"]) == ("Error", "Error", "NameTaken")
    assert f"Role {namespace}/secret-reader" in test["message"]
    assert "helm-e2e did not create" in test["message"]

    def nothing_bound_or_left() -> bool:
        return (
            names_of(cluster, namespace, "rolebindings") == []
            and names_of(cluster, namespace, "serviceaccounts", "-l", OURS) == []
            and names_of(cluster, namespace, "roles") == ["secret-reader"]
        )

    assert_stays(nothing_bound_or_left, seconds=3, what="no binding, no half-created hook set")
    after = cluster.get_json("role", "-n", namespace, "secret-reader")
    assert (after["metadata"]["uid"], after["rules"]) == (before["metadata"]["uid"], before["rules"])
    assert run_pods(cluster, namespace, "att-1") == []


def test_a_hook_binding_to_the_namespaces_default_account_is_refused_before_anything_is_created(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    start_operator()
    cluster.helm("install", "att", BINDING_CHART, "-n", namespace, "--set", "subject=default")

    run = wait_run(cluster, namespace, "att-1")
    test = only_test(run)
    assert (run["status"]["phase"], test["phase"], test["reason"]) == ("Error", "Error", "HookRefused")
    assert "RoleBinding att-test: a subject is not a ServiceAccount of the same hook set" in test["message"]
    for kind in ("rolebindings", "roles"):
        assert names_of(cluster, namespace, kind) == [], kind
    assert names_of(cluster, namespace, "serviceaccounts", "-l", OURS) == []
    assert run_pods(cluster, namespace, "att-1") == []


def test_the_same_chart_alone_in_its_namespace_binds_its_own_role_to_its_own_unlabelled_account(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    start_operator()
    cluster.helm("install", "att", BINDING_CHART, "-n", namespace)

    run = wait_run(cluster, namespace, "att-1")
    assert (run["status"]["phase"], only_test(run)["phase"]) == ("Succeeded", "Succeeded")
    binding = cluster.get_json("rolebinding", "-n", namespace, "att-test")
    assert binding["roleRef"]["name"] == "secret-reader"
    role = cluster.get_json("role", "-n", namespace, "secret-reader")
    assert role["metadata"]["labels"]["helm-e2e.dev/run"] == "att-1"
    account = cluster.get_json("serviceaccount", "-n", namespace, "att-test")
    assert "helm-e2e.dev/test-account" not in account["metadata"].get("labels", {})  # the chart's, dropped
    assert account["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "helm-e2e"


def token_suite(release: str) -> str:
    volume = {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}
    template = {
        "automountServiceAccountToken": False,
        "containers": [{"name": "t", "image": "busybox", "command": ["true"]}],
        "volumes": [volume],
    }
    return json.dumps(
        {
            "apiVersion": "helm-e2e.dev/v1alpha1",
            "kind": "E2ESuite",
            "metadata": {"name": "token-suite"},
            "spec": {
                "releases": {"names": [release]},
                "tests": [{"name": "suite-token", "template": template}],
            },
        }
    )


def test_hook_and_suite_pods_with_a_projected_token_but_no_allowed_account_are_refused_and_never_created(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    start_operator()
    cluster.apply(token_suite("bare"), namespace)
    cluster.helm("install", "bare", TOKEN_CHART, "-n", namespace)

    run = wait_run(cluster, namespace, "bare-1")
    assert run["status"]["phase"] == "Error"
    results = {t["name"]: t for t in run["status"]["tests"]}
    assert sorted(results) == ["bare-token", "suite-token"]
    for test in results.values():
        assert (test["phase"], test["reason"]) == ("Error", "PolicyViolation")
        assert (
            "projected.sources[0].serviceAccountToken: a token needs a named ServiceAccount"
            in test["message"]
        )
    assert run_pods(cluster, namespace, "bare-1") == []


def test_a_projected_token_of_an_account_the_admin_allowed_for_tests_runs(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "e2e", "labels": {"helm-e2e.dev/test-account": "true"}},
    }
    cluster.apply(json.dumps(account), namespace)
    start_operator()
    cluster.helm("install", "ok", TOKEN_CHART, "-n", namespace, "--set", "serviceAccountName=e2e")

    run = wait_run(cluster, namespace, "ok-1")
    assert (run["status"]["phase"], only_test(run)["phase"]) == ("Succeeded", "Succeeded")
    pod = cluster.get_json("pod", "-n", namespace, "ok-1-ok-token")
    assert pod["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]["path"] == "token"
