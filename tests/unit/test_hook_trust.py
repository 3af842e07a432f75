"""Trust rules for chart test hooks: what helm-e2e refuses to create, and that a refusal blocks the tests."""

from __future__ import annotations

from typing import Any

import pytest
from hook_fixtures import POD_SPEC, RBAC, ROLE_REF, hook_set, manifest


def role(*rules: dict[str, Any]) -> str:
    return manifest("Role", "reader", api=RBAC, rules=list(rules))


def rule(resources: list[str], verbs: list[str], groups: list[str] | None = None) -> dict[str, Any]:
    return {"apiGroups": groups if groups is not None else [""], "resources": resources, "verbs": verbs}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (manifest("ClusterRole", "cr", api=RBAC), "cluster-scoped kinds are not created"),
        (manifest("ClusterRoleBinding", "crb", api=RBAC), "cluster-scoped"),
        (manifest("Widget", "w", api="example.com/v1"), "kind is not created"),
        (manifest("Deployment", "d", api="apps/v1"), "kind is not created"),
        (manifest("ConfigMap", "cm", api="example.com/v1"), "apiVersion is not v1"),
        (manifest("Secret", "tok", type="kubernetes.io/service-account-token"), "service-account-token"),
        (manifest("Service", "s", spec={"externalIPs": ["1.2.3.4"]}), "externalIPs"),
        (manifest("Service", "s", spec={"type": "LoadBalancer"}), "NodePort or LoadBalancer"),
        (manifest("PersistentVolumeClaim", "c", spec={"dataSource": {"kind": "PersistentVolumeClaim"}}),
         "spec.dataSource"),
        (manifest("PersistentVolumeClaim", "c", spec={"volumeName": "pv-1"}), "spec.volumeName"),
        (role(rule(["*"], ["get"])), "wildcard"),
        (role(rule(["pods"], ["get"], ["*"])), "wildcard"),
        (role(rule(["pods/*"], ["get"])), "wildcard"),
        (role(rule(["pods"], ["*"])), "wildcard"),
        (role(rule(["secrets"], ["get"])), "grants secrets"),
        (role(rule(["pods/exec"], ["create"])), "grants pods/exec"),
        (role(rule(["pods/attach"], ["create"])), "grants pods/attach"),
        (role(rule(["serviceaccounts/token"], ["create"])), "grants serviceaccounts/token"),
        (role(rule(["roles"], ["get"], ["rbac.authorization.k8s.io"])), "grants roles"),
        (role(rule(["rolebindings"], ["list"], ["rbac.authorization.k8s.io"])), "grants rolebindings"),
        (role(rule(["roles"], ["escalate"], ["rbac.authorization.k8s.io"])), "grants roles"),
        (role(rule(["serviceaccounts"], ["impersonate"])), "verb impersonate"),
        (role(rule(["configmaps"], ["bind"])), "verb bind"),
        (role(rule(["pods"], ["create"])), "create or change pods"),
        (role(rule(["deployments"], ["patch"], ["apps"])), "create or change deployments"),
        (role(rule(["services"], ["create"])), "create or change services"),
        (role(rule(["endpointslices"], ["update"], ["discovery.k8s.io"])), "create or change endpointslices"),
        (role(rule(["persistentvolumeclaims"], ["create"])), "create or change persistentvolumeclaims"),
        (role(rule(["e2eruns/status"], ["patch"], ["helm-e2e.dev"])), "helm-e2e's own API group"),
        (role({"nonResourceURLs": ["/metrics"], "verbs": ["get"]}), "nonResourceURLs"),
        (role("not a rule"), "not an object"),  # type: ignore[arg-type]
    ],
)  # fmt: skip
def test_a_refused_hook_is_listed_without_values_and_blocks_every_test(text: str, why: str) -> None:
    hooks = hook_set(text, manifest("Pod", "t", spec=POD_SPEC))
    assert len(hooks.refused) == 1
    assert why in hooks.refused[0]
    assert hooks.resources == []
    assert [t.name for t in hooks.tests] == ["t"]
    assert hooks.tests[0].blocked.endswith(hooks.refused[0])


def test_a_role_that_only_reads_harmless_things_is_created() -> None:
    text = role(rule(["pods", "pods/log", "configmaps", "services"], ["get", "list", "watch"]))
    assert [r.kind for r in hook_set(text).resources] == ["Role"]


def binding(role_ref: dict[str, Any], *subjects: dict[str, Any]) -> str:
    return manifest("RoleBinding", "bind", api=RBAC, roleRef=role_ref, subjects=list(subjects))


SA = {"kind": "ServiceAccount", "name": "web-test"}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (binding({**ROLE_REF, "kind": "ClusterRole"}, SA), "roleRef is not a Role"),
        (binding({**ROLE_REF, "name": "admin"}, SA), "no Role of the same hook set"),
        (binding(ROLE_REF, {"kind": "User", "name": "alice"}), "not a ServiceAccount"),
        (binding(ROLE_REF, {**SA, "namespace": "kube-system"}), "another namespace"),
        (binding(ROLE_REF, {**SA, "apiGroup": "x"}), "apiGroup"),
    ],
)
def test_a_role_binding_may_only_bind_the_sets_role_to_this_namespaces_service_accounts(
    text: str, why: str
) -> None:
    hooks = hook_set(role(rule(["pods"], ["get"])), text)
    assert [r.kind for r in hooks.resources] == ["Role"]
    assert why in hooks.refused[0]


def test_a_role_binding_to_the_sets_role_and_a_local_service_account_is_created() -> None:
    hooks = hook_set(role(rule(["pods"], ["get"])), binding(ROLE_REF, {**SA, "namespace": "shop"}, SA))
    assert [r.kind for r in hooks.resources] == ["RoleBinding", "Role"]  # by name, as Helm: bind < reader


def test_a_binding_to_a_refused_role_is_refused_too() -> None:
    hooks = hook_set(role(rule(["secrets"], ["get"])), binding(ROLE_REF, SA))
    assert len(hooks.refused) == 2


def test_two_supporting_objects_with_the_same_kind_and_name_are_refused_but_same_named_pods_run() -> None:
    hooks = hook_set(manifest("ConfigMap", "cm"), manifest("ConfigMap", "cm"),
                     manifest("Pod", "t", spec=POD_SPEC), manifest("Pod", "t", spec=POD_SPEC))  # fmt: skip
    assert len(hooks.resources) == 1
    assert "two objects" in hooks.refused[0]
    assert len(hooks.tests) == 2
