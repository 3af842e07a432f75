"""Chart test hooks → hook set: Helm's order, delete policies, trust rules, bounded YAML, manifests."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from helm_e2e.core import names
from helm_e2e.core.hook_yaml import HookManifestInvalid, parse_hook_manifest
from helm_e2e.core.hooks import (
    HookResource,
    build_hook_set,
    build_resource_manifest,
    decide_hook_cleanup,
    helm_order_key,
    parse_delete_policies,
    parse_hook_weight,
)
from helm_e2e.core.models import (
    Hook,
    Release,
    ReleaseRef,
    Run,
    RunPhase,
    RunSpec,
    Trigger,
)


def manifest(kind: str, name: str, *, api: str = "v1", weight: str | None = None, policy: str | None = None,
             hook: str = "test", **fields: Any) -> str:  # fmt: skip
    annotations = {"helm.sh/hook": hook}
    if weight is not None:
        annotations["helm.sh/hook-weight"] = weight
    if policy is not None:
        annotations["helm.sh/hook-delete-policy"] = policy
    doc = {"apiVersion": api, "kind": kind, "metadata": {"name": name, "annotations": annotations}, **fields}
    return yaml.safe_dump(doc)


POD_SPEC = {"containers": [{"name": "t", "image": "busybox"}]}
RBAC = "rbac.authorization.k8s.io/v1"
ROLE_REF = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}


def release(*manifests: str, events: list[str] | None = None) -> Release:
    hooks = [
        Hook(name=f"h{i}", kind="?", manifest=m, events=events or ["test"]) for i, m in enumerate(manifests)
    ]
    return Release(name="web", namespace="shop", revision=2, status="deployed", chart_name="web-chart",
                   chart_version="1.0.0", hooks=hooks, trigger=Trigger.UPGRADE)  # fmt: skip


def hook_set(*manifests: str) -> Any:
    return build_hook_set(release(*manifests), default_timeout=300)


def grafana_shape() -> list[str]:
    return [
        manifest("Pod", "web-test", spec={"serviceAccountName": "web-test", **POD_SPEC}),
        manifest("ConfigMap", "web-test", data={"run.sh": "bats /tests"}),
        manifest("ServiceAccount", "web-test"),
    ]


# --- order and policies -------------------------------------------------------------------------------


def test_supporting_objects_come_first_in_helms_order_and_the_pod_becomes_the_test() -> None:
    hooks = hook_set(*grafana_shape())
    assert [(r.kind, r.name) for r in hooks.resources] == [
        ("ServiceAccount", "web-test"),
        ("ConfigMap", "web-test"),
    ]
    assert [(t.name, t.kind) for t in hooks.tests] == [("web-test", "Pod")]
    assert hooks.refused == []
    assert hooks.service_accounts == frozenset({"web-test"})


def test_weight_orders_before_name_and_name_before_kind_as_helm_3_19_does() -> None:
    hooks = hook_set(
        manifest("ConfigMap", "b", weight="-1"),
        manifest("ConfigMap", "a", weight="5"),
        manifest("Secret", "a", weight="5"),
        manifest("ServiceAccount", "z", weight="-1"),
    )
    assert [(r.kind, r.name, r.weight) for r in hooks.resources] == [
        ("ConfigMap", "b", -1),
        ("ServiceAccount", "z", -1),
        ("Secret", "a", 5),
        ("ConfigMap", "a", 5),
    ]


def test_unknown_kinds_sort_after_known_ones() -> None:
    assert helm_order_key(0, "a", "Widget") > helm_order_key(0, "a", "Pod")


@pytest.mark.parametrize(
    ("text", "weight"),
    [("", 0), ("5", 5), ("-3", -3), ("+4", 4), (" 5", 0), ("5_0", 0), ("1.5", 0), ("x", 0), ("9" * 20, 0)],
)
def test_hook_weight_is_read_like_go_strconv_atoi(text: str, weight: int) -> None:
    assert parse_hook_weight({names.HOOK_WEIGHT_ANNOTATION: text}) == weight


@pytest.mark.parametrize(
    ("annotations", "policies"),
    [
        ({}, {"before-hook-creation"}),
        ({names.HOOK_DELETE_POLICY_ANNOTATION: "hook-succeeded"}, {"hook-succeeded"}),
        ({names.HOOK_DELETE_POLICY_ANNOTATION: " Hook-Failed , before-hook-creation"},
         {"hook-failed", "before-hook-creation"}),
        ({names.HOOK_DELETE_POLICY_ANNOTATION: ""}, set()),
    ],
)  # fmt: skip
def test_delete_policies_default_to_before_hook_creation_only_when_absent(
    annotations: dict[str, str], policies: set[str]
) -> None:
    assert parse_delete_policies(annotations) == policies


def test_hooks_of_other_events_are_not_part_of_the_set() -> None:
    hooks = build_hook_set(release(manifest("ConfigMap", "cm", hook="pre-install"), events=["pre-install"]),
                           default_timeout=300)  # fmt: skip
    assert (hooks.resources, hooks.tests, hooks.refused) == ([], [], [])


def test_legacy_test_success_hooks_are_included() -> None:
    hooks = build_hook_set(release(manifest("Pod", "t", spec=POD_SPEC), events=["test-success"]),
                           default_timeout=300)  # fmt: skip
    assert [t.name for t in hooks.tests] == ["t"]


# --- bodies -------------------------------------------------------------------------------------------


def test_a_resource_body_gets_the_release_namespace_our_labels_and_only_its_kinds_fields() -> None:
    text = manifest("ConfigMap", "cm", data={"a": "1"}, status={"x": 1})
    text = text.replace("name: cm", "name: cm\n  namespace: elsewhere\n  ownerReferences: [{uid: x}]")
    body = hook_set(text).resources[0].body
    assert body["metadata"]["namespace"] == "shop"
    assert "ownerReferences" not in body["metadata"]
    assert body["metadata"]["labels"] == {
        names.MANAGED_BY_LABEL: "helm-e2e",
        names.RELEASE_LABEL: "web",
        names.REVISION_LABEL: "2",
    }
    assert body["metadata"]["annotations"] == {names.SOURCE_ANNOTATION: "hook"}
    assert body["data"] == {"a": "1"}
    assert "status" not in body


def make_run() -> Run:
    ref = ReleaseRef(name="web", namespace="shop", revision=2, chart="web-chart", chart_version="1.0.0",
                     trigger=Trigger.UPGRADE)  # fmt: skip
    return Run(name="web-2", namespace="shop", uid="uid-7", spec=RunSpec(release=ref))


def test_build_resource_manifest_adds_the_run_label_and_a_non_controller_owner_without_mutating() -> None:
    resource = hook_set(manifest("ServiceAccount", "sa")).resources[0]
    before = resource.model_copy(deep=True)
    body = build_resource_manifest(make_run(), resource)
    assert body["metadata"]["labels"][names.RUN_LABEL] == "web-2"
    assert body["metadata"]["ownerReferences"] == [
        {"apiVersion": "helm-e2e.dev/v1alpha1", "kind": "E2ERun", "name": "web-2", "uid": "uid-7",
         "controller": False, "blockOwnerDeletion": True}
    ]  # fmt: skip
    assert resource == before


def test_a_job_hook_keeps_its_job_fields_but_not_selector_ttl_suspend_or_managed_by() -> None:
    job = manifest("Job", "db-check", api="batch/v1", spec={
        "backoffLimit": 2, "activeDeadlineSeconds": 60, "podFailurePolicy": {"rules": []},
        "selector": {"matchLabels": {"a": "b"}}, "manualSelector": True, "ttlSecondsAfterFinished": 0,
        "suspend": True, "managedBy": "x",
        "template": {"metadata": {"annotations": {"sim.helm-e2e.dev/exit-code": "1"}}, "spec": POD_SPEC},
    })  # fmt: skip
    test = hook_set(job).tests[0]
    assert test.kind == "Job"
    assert test.job_spec == {
        "backoffLimit": 2,
        "activeDeadlineSeconds": 60,
        "podFailurePolicy": {"rules": []},
    }
    assert test.annotations == {"sim.helm-e2e.dev/exit-code": "1"}
    assert test.pod_spec == POD_SPEC


# --- trust rules ----------------------------------------------------------------------------------------


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


# --- bounded YAML -------------------------------------------------------------------------------------


BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_a_billion_laughs_manifest_is_refused_fast() -> None:
    assert len(BILLION_LAUGHS.encode()) < 1024
    started = time.monotonic()
    hooks = hook_set(BILLION_LAUGHS)
    assert time.monotonic() - started < 0.5
    assert "aliases" in hooks.refused[0]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("a: " + "x" * 1_048_577, "larger than"),
        ("[" * 100_000, "nested too deeply"),
        ("a: !!binary aGVsbG8=\n", "no JSON form"),
        ("a: .inf\n", "not finite"),
        ("{~: 1}\n", "not a scalar"),
        ("{[1]: 2}\n", "not valid YAML"),
        ("a: 1\n---\nb: 2\n", "single document"),
        ("- 1\n", "not a Kubernetes object"),
    ],
)
def test_unusable_yaml_is_refused_with_a_reason_that_quotes_nothing(text: str, why: str) -> None:
    with pytest.raises(HookManifestInvalid, match=why):
        parse_hook_manifest(text)


def test_timestamps_stay_strings_and_scalar_keys_become_strings_like_sigs_k8s_io_yaml() -> None:
    assert parse_hook_manifest("data:\n  when: 2020-01-02\n  80: http\n  true: yes\n") == {
        "data": {"when": "2020-01-02", "80": "http", "true": True}
    }


# --- cleanup ------------------------------------------------------------------------------------------


def resource(name: str, *policies: str) -> HookResource:
    return HookResource(kind="ConfigMap", api_version="v1", name=name, delete_policies=frozenset(policies),
                        body={})  # fmt: skip


@pytest.mark.parametrize(
    ("phase", "deleted"),
    [
        (RunPhase.RUNNING, []),
        (RunPhase.PENDING, []),
        (RunPhase.SUCCEEDED, [("ConfigMap", "c"), ("ConfigMap", "a")]),
        (RunPhase.FAILED, [("ConfigMap", "c"), ("ConfigMap", "a")]),
        (RunPhase.ERROR, [("ConfigMap", "c"), ("ConfigMap", "a")]),
    ],
)
def test_hook_succeeded_objects_go_once_the_run_has_ended_in_reverse_order(
    phase: RunPhase, deleted: list[tuple[str, str]]
) -> None:
    resources = [
        resource("a", "hook-succeeded"),
        resource("b", "hook-failed"),
        resource("c", "hook-succeeded", "before-hook-creation"),
        resource("d", "before-hook-creation"),
    ]
    assert decide_hook_cleanup(resources, phase) == deleted
