"""Chart test hooks → hook set: Helm's order, delete policies, bodies and manifests, cleanup."""

from __future__ import annotations

import functools

import pytest
import runs
import yaml
from hook_fixtures import POD_SPEC, grafana_shape, hook_set, manifest, release

from helm_e2e.core.model import names
from helm_e2e.core.model.run_status import RunPhase
from helm_e2e.core.plan.chart_hooks import (
    HookResource,
    build_hook_set,
    build_resource_manifest,
    decide_hook_cleanup,
    helm_order_key,
    parse_delete_policies,
    parse_hook_weight,
    parse_output_log_policies,
)

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


@pytest.mark.parametrize(
    ("text", "policies"),
    [
        ("hook-succeeded", {"hook-succeeded"}),
        (" Hook-Failed , hook-succeeded,", {"hook-failed", "hook-succeeded"}),  # as Helm 4 splits and folds
        ("", set()),
    ],
)
def test_output_log_policies_are_read_like_helm_4(text: str, policies: set[str]) -> None:
    assert parse_output_log_policies({"helm.sh/hook-output-log-policy": text}) == policies
    assert parse_output_log_policies({}) == frozenset()


def test_a_test_hook_asking_for_its_output_on_success_is_planned_to_show_its_log_when_it_passes() -> None:
    def with_policy(kind: str, name: str, policy: str, **fields: object) -> str:
        doc = yaml.safe_load(manifest(kind, name, **fields))
        doc["metadata"]["annotations"]["helm.sh/hook-output-log-policy"] = policy
        return str(yaml.safe_dump(doc))

    job = {"spec": {"template": {"spec": {"restartPolicy": "Never", **POD_SPEC}}}}
    hooks = hook_set(
        with_policy("Pod", "loud", "hook-succeeded,hook-failed", spec=POD_SPEC),
        with_policy("Pod", "quiet", "hook-failed", spec=POD_SPEC),
        with_policy("Job", "batch", "hook-succeeded", api="batch/v1", **job),
        manifest("Pod", "plain", spec=POD_SPEC),
    )
    assert {t.name: t.log_on_success for t in hooks.tests} == {
        "loud": True,
        "quiet": False,  # a failed test's log is always in the report
        "batch": True,
        "plain": False,
    }
    assert all("helm.sh/hook-output-log-policy" not in t.annotations for t in hooks.tests)


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


# web r2 (chart web-chart 1.0.0), the run the hook objects are owned by
make_run = functools.partial(
    runs.make_run, release={"chart": "web-chart", "chart_version": "1.0.0"}, uid="uid-7"
)


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
