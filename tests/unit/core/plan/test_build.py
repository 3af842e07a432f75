"""Planning: chart test hooks, suite matching, name collisions, reports, run spec and pod manifests.

Template rendering (image tag, errors, the sandbox) is in test_suite_render.py.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from plans import JOB_HOOK, POD_HOOK, make_plan, make_release, make_suite

from helm_e2e.core.model.release import Hook, Release
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.suite import Suite
from helm_e2e.core.plan.build import (
    Plan,
    PlannedTest,
    build_pod_manifest,
    suite_matches,
    validate_suite,
)
from helm_e2e.core.plan.run_spec import build_run_spec
from helm_e2e.errors import SuiteInvalid


def make_run(release: Release, plan: Plan) -> Run:
    return Run(
        name="web-3", namespace="shop", uid="uid-1", spec=build_run_spec(release, plan, deadline_seconds=900)
    )


# --- chart test hooks -----------------------------------------------------------------------------


def test_test_hooks_are_planned_including_legacy_test_success_with_their_fixture_annotations() -> None:
    plan = make_plan()  # Helm's order: weight, then name
    assert [(t.name, t.source) for t in plan.tests] == [("web-legacy", "hook"), ("web-smoke", "hook")]
    smoke = plan.tests[1]
    assert smoke.timeout_seconds == 42
    assert smoke.annotations == {"sim.helm-e2e.dev/exit-code": "1", "helm-e2e.dev/timeout-seconds": "42"}
    assert smoke.labels == {"team": "shop", "app.kubernetes.io/managed-by": "Helm"}
    assert smoke.pod_spec == {"containers": [{"name": "t", "image": "busybox"}]}
    assert plan.refused_hooks == []


def test_hooks_for_other_events_are_ignored_without_a_note() -> None:
    plan = make_plan()
    assert "web-migrate" not in [t.name for t in plan.tests]
    assert plan.refused_hooks == []


def test_a_job_test_hook_is_planned_as_a_job_with_its_pod_template() -> None:
    plan = make_plan(
        make_release(hooks=[Hook(name="web-job", kind="Job", manifest=JOB_HOOK, events=["test"])])
    )
    assert [(t.name, t.kind) for t in plan.tests] == [("web-job", "Job")]
    assert plan.tests[0].pod_spec == {"containers": [{"name": "c", "image": "job-image"}]}
    assert plan.tests[0].job_spec == {"backoffLimit": 3}
    assert plan.tests[0].timeout_seconds == 600
    assert plan.refused_hooks == []


@pytest.mark.parametrize(
    ("manifest", "note"),
    [
        ("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: bad}\n", "kind is not created"),
        (": [", "not valid YAML"),
        ("- a list\n", "not a Kubernetes object"),
        ("", "not a Kubernetes object"),
        ("apiVersion: v1\nkind: Pod\nmetadata: [1]\nspec: 7\n", "metadata.name is missing"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec: 7\n", "no pod spec"),
        ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: bad}\nspec: {template: [1]}\n", "no pod"),
    ],
)
def test_an_unusable_test_hook_is_refused_not_an_exception(manifest: str, note: str) -> None:
    hooks = [Hook(name="bad", kind="Pod", manifest=manifest, events=["test"])]
    plan = make_plan(make_release(hooks=hooks))
    assert note in plan.refused_hooks[-1]
    # the refused test hook still ends (Error/HookRefused), so a broken chart is never "no tests"
    assert [(t.name, note in t.blocked, t.pod_spec) for t in plan.tests] == [("bad", True, {})]


def test_hook_names_are_sanitized_and_bad_timeouts_fall_back_to_the_default() -> None:
    manifest = POD_HOOK.replace("name: web-smoke", "name: Web.Smoke").replace('"42"', '"soon"')
    plan = make_plan(make_release(hooks=[Hook(name="x", kind="Pod", manifest=manifest, events=["test"])]))
    assert plan.tests[0].name == "web-smoke"  # the pod's name, sanitized
    assert plan.tests[0].timeout_seconds == 600


def test_chart_hooks_are_skipped_when_run_chart_hooks_is_off() -> None:
    plan = make_plan(run_chart_hooks=False, suites=[make_suite()])
    assert [t.source for t in plan.tests] == ["suite/api"]
    assert plan.refused_hooks == []


# --- suite selection --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "triggers", "matches"),
    [
        ({}, None, True),
        ({"names": [], "charts": []}, ["upgrade"], True),
        ({"names": ["web"]}, ["upgrade"], True),
        ({"charts": ["web-chart"]}, ["upgrade"], True),
        ({"names": ["other"], "charts": ["web-chart"]}, ["upgrade"], True),
        ({"names": ["web"], "charts": ["other-chart"]}, ["upgrade"], True),
        ({"names": ["other"], "charts": ["other-chart"]}, ["upgrade"], False),
        ({"names": ["web-chart"]}, ["upgrade"], False),
        ({"names": ["web"]}, ["install", "rollback"], False),
        ({}, ["install"], False),
        ({}, [], False),
    ],
)
def test_a_suite_matches_by_release_name_or_chart_and_by_trigger(
    selector: dict[str, Any], triggers: list[str] | None, matches: bool
) -> None:
    spec: dict[str, Any] = {"releases": selector}
    if triggers is not None:
        spec["triggers"] = triggers
    parsed = validate_suite(Suite(name="s", namespace="shop", spec=spec))
    assert suite_matches(parsed, make_release()) is matches


def test_a_suite_for_another_chart_is_neither_used_nor_a_problem() -> None:
    plan = make_plan(suites=[make_suite(releases={"charts": ["other-chart"]})])
    assert plan.used_suites == []
    assert plan.problems == []
    assert all(t.source == "hook" for t in plan.tests)


def test_a_schema_error_names_the_field_in_one_line_and_other_suites_still_plan() -> None:
    bad = Suite(name="bad", namespace="shop", spec={"tests": [{"name": "Bad Name", "template": {}}]})
    plan = make_plan(suites=[bad, make_suite("good")])
    assert [(p.suite, p.message.split(":")[0]) for p in plan.problems] == [("bad", "spec.tests[0].name")]
    assert "\n" not in plan.problems[0].message
    assert plan.used_suites == ["good"]


def test_validate_suite_raises_suite_invalid_with_a_count_of_further_errors() -> None:
    with pytest.raises(
        SuiteInvalid, match=r"^E2ESuite s: spec\.triggers\[0\]: Input should be .* \(and 1 more\)$"
    ):
        validate_suite(
            Suite(name="s", namespace="n", spec={"tests": [{"name": "a"}], "triggers": ["deploy"]})
        )


def test_suites_are_planned_in_name_order_after_the_hooks() -> None:
    plan = make_plan(suites=[make_suite("zeta", tests=["z"]), make_suite("alpha", tests=["a"])])
    assert [t.source for t in plan.tests] == ["hook", "hook", "suite/alpha", "suite/zeta"]
    assert plan.used_suites == ["alpha", "zeta"]


def test_a_suite_tests_own_timeout_wins_over_the_default() -> None:
    suite = make_suite()
    suite.spec["tests"][0]["timeoutSeconds"] = 77
    assert make_plan(suites=[suite]).tests[-1].timeout_seconds == 77


# --- names, reports, run spec ---------------------------------------------------------------------------


def test_colliding_test_names_are_numbered_in_order() -> None:
    plan = make_plan(suites=[make_suite("a", tests=["web-smoke", "api"]), make_suite("b", tests=["api"])])
    assert [t.name for t in plan.tests] == ["web-legacy", "web-smoke", "web-smoke-2", "api", "api-2"]


def test_a_numbered_63_character_name_stays_a_dns_label() -> None:
    long = "t" * 63
    manifest = POD_HOOK.replace("name: web-smoke", f"name: {long}")
    hooks = [Hook(name=f"h{i}", kind="Pod", manifest=manifest, events=["test"]) for i in range(3)]
    names = [t.name for t in make_plan(make_release(hooks=hooks)).tests]
    assert names == [long, "t" * 61 + "-2", "t" * 61 + "-3"]


def test_report_recipients_are_merged_case_insensitively_across_used_suites() -> None:
    a = make_suite("a", report={"to": ["Team@x.io"], "onlyOnFailure": True})
    b = make_suite("b", report={"to": ["team@x.io", "ops@x.io"], "onlyOnFailure": True})
    c = make_suite("c", tests=["other"])  # sets no report: does not veto onlyOnFailure
    plan = make_plan(suites=[a, b, c])
    assert plan.report.to == ["Team@x.io", "ops@x.io"]
    assert plan.report.only_on_failure is True


def test_webhook_targets_are_merged_by_name_across_used_suites() -> None:
    a = make_suite("a", report={"webhooks": ["chat", "ops"]})
    b = make_suite("b", tests=["b"], report={"webhooks": ["ops", "teams"]})
    assert make_plan(suites=[a, b]).report.webhooks == ["chat", "ops", "teams"]


@pytest.mark.parametrize("target", ["https://evil.example/hook", "Ops", "a" * 64, ""])
def test_a_suite_names_a_webhook_target_never_a_url(target: str) -> None:
    suite = make_suite("s", report={"webhooks": [target]})
    with pytest.raises(SuiteInvalid, match=r"spec\.report\.webhooks\[0\]"):
        validate_suite(suite)


def test_only_on_failure_is_off_when_one_suite_wants_every_report() -> None:
    a = make_suite("a", report={"to": ["a@x.io"], "onlyOnFailure": True})
    b = make_suite("b", tests=["b"], report={"to": ["b@x.io"]})
    assert make_plan(suites=[a, b]).report.only_on_failure is False
    assert make_plan().report.only_on_failure is False


def test_the_run_spec_carries_the_release_image_tag_and_tests() -> None:
    release = make_release()
    plan = make_plan(release, suites=[make_suite(report={"to": ["t@x.io"]})])
    spec = build_run_spec(release, plan, deadline_seconds=900)
    body = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert body["release"] == {
        "name": "web",
        "namespace": "shop",
        "revision": 3,
        "chart": "web-chart",
        "chartVersion": "1.2.3",
        "appVersion": "2.0.0",
        "imageTag": "2.0.1",
        "trigger": "upgrade",
        "deployedAt": "2026-01-02T03:04:05Z",
        "secretUid": "",
    }
    assert body["tests"][-1] == {
        "name": "api-smoke",
        "source": "suite/api",
        "timeoutSeconds": 600,
        "kind": "Pod",
    }
    assert (body["deadlineSeconds"], body["report"]["to"]) == (900, ["t@x.io"])


def test_a_hook_asking_for_its_output_on_success_is_marked_in_the_run_spec_and_others_are_not() -> None:
    loud = POD_HOOK.replace(
        "    helm.sh/hook: test\n",
        "    helm.sh/hook: test\n    helm.sh/hook-output-log-policy: hook-succeeded\n",
    )
    release = make_release(hooks=[Hook(name="web-smoke", kind="Pod", manifest=loud, events=["test"])])
    plan = make_plan(release, suites=[make_suite()])
    body = build_run_spec(release, plan, deadline_seconds=900).model_dump(by_alias=True, exclude_none=True)
    assert {t["name"]: t.get("logOnSuccess") for t in body["tests"]} == {"web-smoke": True, "api-smoke": None}


# --- pod manifests ---------------------------------------------------------------------------------------

RICH_TEST = PlannedTest(
    name="api-smoke",
    source="suite/api",
    timeout_seconds=300,
    pod_spec={
        "activeDeadlineSeconds": 100,
        "initContainers": [
            {
                "name": "jwt",
                "image": "jwt-setup:1",
                "volumeMounts": [{"name": "tokens", "mountPath": "/access_tokens"}],
            }
        ],
        "containers": [
            {
                "name": "pytest",
                "image": "e2e:2.0.1",
                "env": [{"name": "HELM_E2E_RELEASE", "value": "custom"}, {"name": "OTHER", "value": "1"}],
                "volumeMounts": [{"name": "tokens", "mountPath": "/access_tokens", "readOnly": True}],
            },
            {"name": "sidecar", "image": "proxy:1"},
        ],
        "volumes": [{"name": "tokens", "emptyDir": {}}],
        "restartPolicy": "Always",
    },
    labels={"team": "shop", "app.kubernetes.io/managed-by": "Helm"},
    annotations={"sim.helm-e2e.dev/exit-code": "1"},
)


def pod_for(test: PlannedTest = RICH_TEST) -> dict[str, Any]:
    release = make_release()
    return build_pod_manifest(run=make_run(release, make_plan(release)), test=test)


def test_the_pod_is_named_for_run_and_test_and_owned_by_the_run() -> None:
    pod = pod_for()
    assert (pod["apiVersion"], pod["kind"]) == ("v1", "Pod")
    meta = pod["metadata"]
    assert (meta["name"], meta["namespace"]) == ("web-3-api-smoke", "shop")
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "helm-e2e.dev/v1alpha1",
            "kind": "E2ERun",
            "name": "web-3",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert meta["labels"] == {
        "team": "shop",
        "app.kubernetes.io/managed-by": "helm-e2e",
        "helm-e2e.dev/run": "web-3",
        "helm-e2e.dev/release": "web",
        "helm-e2e.dev/revision": "3",
        "helm-e2e.dev/test": "api-smoke",
    }
    assert meta["annotations"] == {"sim.helm-e2e.dev/exit-code": "1", "helm-e2e.dev/source": "suite/api"}


def test_every_container_and_init_container_gets_the_run_env_and_an_existing_value_wins() -> None:
    spec = pod_for()["spec"]
    expected = {
        "HELM_E2E_RELEASE": "web",
        "HELM_E2E_NAMESPACE": "shop",
        "HELM_E2E_REVISION": "3",
        "HELM_E2E_IMAGE_TAG": "2.0.1",
        "HELM_E2E_CHART_VERSION": "1.2.3",
        "HELM_E2E_RUN": "web-3",
    }
    for container in spec["initContainers"] + spec["containers"]:
        names = [e["name"] for e in container["env"]]
        assert len(names) == len(set(names)), container["name"]
        env = {e["name"]: e["value"] for e in container["env"]}
        want = expected | (
            {"HELM_E2E_RELEASE": "custom", "OTHER": "1"} if container["name"] == "pytest" else {}
        )
        assert env == want


def test_the_pod_never_restarts_and_keeps_volumes_mounts_and_a_smaller_deadline() -> None:
    spec = pod_for()["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] == 100
    assert spec["volumes"] == [{"name": "tokens", "emptyDir": {}}]
    assert spec["initContainers"][0]["volumeMounts"] == [{"name": "tokens", "mountPath": "/access_tokens"}]
    assert spec["containers"][0]["volumeMounts"][0]["readOnly"] is True
    assert spec["automountServiceAccountToken"] is False


@pytest.mark.parametrize(("existing", "expected"), [(None, 300), (900, 300), (0, 300), (True, 300), (60, 60)])
def test_the_active_deadline_is_the_timeout_unless_the_template_sets_a_smaller_one(
    existing: Any, expected: int
) -> None:
    pod_spec: dict[str, Any] = {"containers": [{"name": "c", "image": "i"}]}
    if existing is not None:
        pod_spec["activeDeadlineSeconds"] = existing
    test = RICH_TEST.model_copy(update={"pod_spec": pod_spec})
    assert pod_for(test)["spec"]["activeDeadlineSeconds"] == expected


def test_building_a_pod_never_mutates_the_planned_test_or_the_run() -> None:
    release = make_release()
    run = make_run(release, make_plan(release))
    test, run_before = copy.deepcopy(RICH_TEST), run.model_copy(deep=True)
    before = test.model_dump()
    first = build_pod_manifest(run=run, test=test)
    first["spec"]["containers"][0]["env"].append({"name": "X", "value": "y"})
    first["metadata"]["labels"]["x"] = "y"
    assert test.model_dump() == before
    assert run == run_before
    assert build_pod_manifest(run=run, test=test) != first


def test_long_run_and_test_names_give_valid_pod_names_and_label_values() -> None:
    release = make_release(name="r" * 53)
    run = Run(
        name="r" * 53 + "-3",
        namespace="shop",
        spec=build_run_spec(release, make_plan(release), deadline_seconds=1),
    )
    test = RICH_TEST.model_copy(update={"name": "t" * 63})
    meta = build_pod_manifest(run=run, test=test)["metadata"]
    assert len(meta["name"]) <= 63
    assert all(len(v) <= 63 for v in meta["labels"].values())
