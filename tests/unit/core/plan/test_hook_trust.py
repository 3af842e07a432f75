"""Trust rules for chart test hooks: what helm-e2e refuses to create, and that a refusal blocks the tests."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hook_fixtures import POD_SPEC, RBAC, ROLE_REF, hook_set, manifest

from helm_e2e.core.plan.hook_trust import refuse_to_bind


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
        (role(rule(["secrets"], ["get"])), "grants secrets, which is not on the read-only allowlist"),
        (role(rule(["pods/exec"], ["get"])), "grants pods/exec"),
        (role(rule(["pods/exec"], ["create"])), "verb create"),
        (role(rule(["pods/attach"], ["get"])), "grants pods/attach"),
        (role(rule(["pods/portforward"], ["get"])), "grants pods/portforward"),
        (role(rule(["pods/eviction"], ["get"])), "grants pods/eviction"),
        (role(rule(["serviceaccounts/token"], ["get"])), "grants serviceaccounts/token"),
        (role(rule(["roles"], ["get"], ["rbac.authorization.k8s.io"])), "grants rbac.authorization.k8s.io/roles"),
        (role(rule(["rolebindings"], ["list"], ["rbac.authorization.k8s.io"])), "rbac.authorization.k8s.io/rolebindings"),
        (role(rule(["roles"], ["escalate"], ["rbac.authorization.k8s.io"])), "verb escalate"),
        (role(rule(["serviceaccounts"], ["impersonate"])), "verb impersonate"),
        (role(rule(["configmaps"], ["bind"])), "verb bind"),
        (role(rule(["pods"], ["create"])), "verb create (hook Roles may only get, list and watch)"),
        (role(rule(["pods"], ["delete"])), "verb delete"),
        (role(rule(["persistentvolumeclaims"], ["deletecollection"])), "verb deletecollection"),
        # the denylist's gaps (issue 24): each is a write, or a kind outside the allowlist
        (role(rule(["serviceaccounts"], ["patch"])), "verb patch"),
        (role(rule(["deployments/scale"], ["get"], ["apps"])), "grants apps/deployments/scale"),
        (role(rule(["deployments/scale"], ["update"], ["apps"])), "verb update"),
        (role(rule(["workflows"], ["get"], ["argoproj.io"])), "grants argoproj.io/workflows"),
        (role(rule(["taskruns"], ["list"], ["tekton.dev"])), "grants tekton.dev/taskruns"),
        (role(rule(["deployments"], ["get"], [""])), "grants deployments"),  # not in the core group
        (role(rule(["pods"], ["get"], ["apps"])), "grants apps/pods"),
        (role(rule(["pods"], ["get"], [])), "resources but no apiGroups"),
        (role(rule(["podsecuritypolicies"], ["use"], ["policy"])), "verb use"),  # no resourceNames: refused
        (role({**rule(["podsecuritypolicies"], ["use", "get"], ["policy"]), "resourceNames": ["x"]}), "verb use"),
        (role(rule(["e2eruns/status"], ["patch"], ["helm-e2e.dev"])), "verb patch"),
        (role(rule(["e2eruns"], ["get"], ["helm-e2e.dev"])), "grants helm-e2e.dev/e2eruns"),
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
        (binding(ROLE_REF, {"kind": "ServiceAccount", "name": "default"}), "not a ServiceAccount of the same hook set"),
        (binding(ROLE_REF, SA, {"kind": "ServiceAccount", "name": "deployer"}), "of the same hook set"),
    ],
)  # fmt: skip
def test_a_role_binding_may_only_bind_the_sets_role_to_this_namespaces_service_accounts(
    text: str, why: str
) -> None:
    hooks = hook_set(role(rule(["pods"], ["get"])), manifest("ServiceAccount", "web-test"), text)
    assert [r.kind for r in hooks.resources] == ["Role", "ServiceAccount"]
    assert why in hooks.refused[0]


def test_a_role_binding_to_the_sets_role_and_its_own_service_account_is_created_after_every_role() -> None:
    hooks = hook_set(role(rule(["pods"], ["get"])), manifest("ServiceAccount", "web-test"),
                     binding(ROLE_REF, {**SA, "namespace": "shop"}, SA))  # fmt: skip
    # Helm's order is by name (bind < reader < web-test); a binding goes after every Role whatever its name
    assert [r.kind for r in hooks.resources] == ["Role", "ServiceAccount", "RoleBinding"]


def test_a_binding_weighted_before_its_role_is_still_created_after_it() -> None:
    text = manifest("RoleBinding", "reader", api=RBAC, weight="-5", roleRef=ROLE_REF, subjects=[SA])
    hooks = hook_set(text, manifest("ServiceAccount", "web-test", weight="-1"), role(rule(["pods"], ["get"])))
    assert [(r.kind, r.weight) for r in hooks.resources] == [
        ("ServiceAccount", -1), ("Role", 0), ("RoleBinding", -5)
    ]  # fmt: skip
    assert hooks.refused == []


def test_a_binding_to_a_service_account_the_set_refused_or_never_had_is_refused() -> None:
    hooks = hook_set(role(rule(["pods"], ["get"])), binding(ROLE_REF, SA))
    assert "not a ServiceAccount of the same hook set" in hooks.refused[0]


def test_the_read_only_allowlist_covers_what_tests_look_at() -> None:
    rules = [
        rule(["pods", "pods/log", "pods/status", "services", "endpoints", "configmaps", "events",
              "serviceaccounts", "persistentvolumeclaims"], ["get", "list", "watch"]),
        rule(["deployments", "statefulsets", "daemonsets", "replicasets"], ["get", "list"], ["apps"]),
        rule(["jobs", "cronjobs"], ["get", "list", "watch"], ["batch"]),
        rule(["ingresses"], ["get"], ["networking.k8s.io"]),
        rule(["endpointslices"], ["list"], ["discovery.k8s.io"]),
        rule(["leases"], ["get"], ["coordination.k8s.io"]),
        {**rule(["pods"], ["get"]), "resourceNames": ["web-0"]},
    ]  # fmt: skip
    hooks = hook_set(role(*rules))
    assert (hooks.refused, [r.kind for r in hooks.resources]) == ([], ["Role"])


def test_grafanas_test_role_use_of_its_named_pod_security_policy_is_allowed() -> None:
    psp = {"apiGroups": ["policy"], "resources": ["podsecuritypolicies"], "verbs": ["use"],
           "resourceNames": ["rel-grafana-test"]}  # fmt: skip
    hooks = hook_set(role(psp), manifest("ServiceAccount", "web-test"), binding(ROLE_REF, SA))
    assert hooks.refused == []
    assert [r.kind for r in hooks.resources] == ["Role", "ServiceAccount", "RoleBinding"]


def test_a_hook_object_keeps_no_label_or_annotation_of_helm_e2e_but_ours() -> None:
    labels = {"helm-e2e.dev/test-account": "true", "helm-e2e.dev/run": "other-run", "app": "web",
              "sim.helm-e2e.dev/exit-code": "0"}  # fmt: skip
    text = manifest("ServiceAccount", "web-test")
    text = text.replace("metadata:\n", "metadata:\n  labels: " + json.dumps(labels) + "\n", 1)
    text = text.replace("annotations:\n", "annotations:\n    helm-e2e.dev/source: chart\n    note: kept\n", 1)
    meta = hook_set(text).resources[0].body["metadata"]
    assert "helm-e2e.dev/test-account" not in meta["labels"]
    assert "helm-e2e.dev/run" not in meta["labels"]
    assert (meta["labels"]["app"], meta["labels"]["sim.helm-e2e.dev/exit-code"]) == ("web", "0")
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "helm-e2e"
    assert meta["annotations"] == {"note": "kept", "helm-e2e.dev/source": "hook"}


RB_BODY = {"kind": "RoleBinding", "metadata": {"name": "bind"}, "roleRef": ROLE_REF, "subjects": [SA]}


@pytest.mark.parametrize(
    ("created", "refused"),
    [
        ({"reader": "uid-1"}, False),
        ({}, True),  # the Role's create did not happen (or failed) in this pass
        ({"other": "uid-1"}, True),
        ({"reader": ""}, True),  # no uid: not what we created
    ],
)
def test_a_binding_is_created_only_to_a_role_this_pass_created_with_its_uid(
    created: dict[str, str], refused: bool
) -> None:
    why = refuse_to_bind(RB_BODY, created_roles=created)
    assert (why is not None) is refused
    if why:
        assert "Role reader was not created by this hook set" in why


def test_only_role_bindings_depend_on_what_was_created() -> None:
    assert refuse_to_bind({"kind": "ConfigMap", "metadata": {"name": "x"}}, created_roles={}) is None


def test_a_binding_to_a_refused_role_is_refused_too() -> None:
    hooks = hook_set(role(rule(["secrets"], ["get"])), binding(ROLE_REF, SA))
    assert len(hooks.refused) == 2


def test_two_supporting_objects_with_the_same_kind_and_name_are_refused_but_same_named_pods_run() -> None:
    hooks = hook_set(manifest("ConfigMap", "cm"), manifest("ConfigMap", "cm"),
                     manifest("Pod", "t", spec=POD_SPEC), manifest("Pod", "t", spec=POD_SPEC))  # fmt: skip
    assert len(hooks.resources) == 1
    assert "two objects" in hooks.refused[0]
    assert len(hooks.tests) == 2
