"""Planning: chart test hooks, suite matching, sandboxed rendering, names, and pod manifests."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helm_e2e.core.models import Hook, Release, Run, Suite, Trigger
from helm_e2e.core.naming import build_pod_name, build_run_name
from helm_e2e.core.plan import build_plan, build_pod_manifest, build_run_spec, suite_matches, validate_suite

POD_HOOK = """apiVersion: v1
kind: Pod
metadata:
  name: web-smoke
  labels: {team: shop}
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation
    sim.helm-e2e.dev/exit-code: "1"
    helm-e2e.dev/timeout-seconds: "42"
spec:
  containers:
  - name: t
    image: busybox
"""


def release(**kw: Any) -> Release:
    base: dict[str, Any] = {
        "name": "web",
        "namespace": "shop",
        "revision": 3,
        "status": "deployed",
        "chart_name": "web-chart",
        "chart_version": "1.2.3",
        "app_version": "2.0.0",
        "values": {"image": {"tag": "2.0.1"}, "host": "web"},
        "hooks": [
            Hook(name="web-smoke", kind="Pod", manifest=POD_HOOK, events=["test"]),
            Hook(
                name="web-legacy",
                kind="Pod",
                manifest=POD_HOOK.replace("web-smoke", "web-legacy"),
                events=["test-success"],
            ),
            Hook(name="web-migrate", kind="Job", manifest="kind: Job\n", events=["pre-upgrade"]),
        ],
        "trigger": Trigger.UPGRADE,
    }
    base.update(kw)
    return Release(**base)


def suite(name: str = "api", **spec: Any) -> Suite:
    body = {
        "tests": [
            {
                "name": "api-smoke",
                "template": {
                    "initContainers": [
                        {
                            "name": "jwt",
                            "image": "localhost/jwt-setup:1",
                            "volumeMounts": [{"name": "tokens", "mountPath": "/access_tokens"}],
                        }
                    ],
                    "containers": [
                        {
                            "name": "pytest",
                            "image": "localhost/e2e:{{ image_tag }}",
                            "args": [
                                "--base-url",
                                "http://{{ release.name }}.{{ release.namespace }}:{{ values.host }}",
                            ],
                        }
                    ],
                    "volumes": [{"name": "tokens", "emptyDir": {}}],
                },
            }
        ]
    }
    body.update(spec)
    return Suite(name=name, namespace="shop", spec=body)


def plan(rel: Release | None = None, suites: list[Suite] | None = None, **kw: Any) -> Any:
    args = {"image_tag_values_path": "image.tag", "run_chart_hooks": True, "default_timeout_seconds": 600}
    args.update(kw)
    return build_plan(rel or release(), suites=suites or [], **args)


def test_chart_test_hooks_are_planned_including_legacy_test_success() -> None:
    p = plan()
    assert [(t.name, t.source) for t in p.tests] == [("web-smoke", "hook"), ("web-legacy", "hook")]
    smoke = p.tests[0]
    assert smoke.timeout_seconds == 42
    assert smoke.annotations["sim.helm-e2e.dev/exit-code"] == "1"
    assert not any(k.startswith("helm.sh/hook") for k in smoke.annotations)
    assert smoke.labels == {"team": "shop"}


def test_hooks_are_skipped_when_chart_hooks_are_off() -> None:
    assert plan(run_chart_hooks=False).tests == []


def test_job_hooks_run_their_pod_template_and_other_kinds_are_noted() -> None:
    job = "kind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: i}]\n"
    rel = release(
        hooks=[
            Hook(name="j", kind="Job", manifest=job, events=["test"]),
            Hook(name="cm", kind="ConfigMap", manifest="kind: ConfigMap\n", events=["test"]),
            Hook(name="bad", kind="Pod", manifest=": [", events=["test"]),
        ]
    )
    p = plan(rel)
    assert [t.name for t in p.tests] == ["j"]
    assert p.tests[0].pod_spec["containers"][0]["image"] == "i"
    assert len(p.hook_notes) == 3


def test_suite_templates_render_with_release_image_tag_and_values() -> None:
    p = plan(suites=[suite()])
    test = p.tests[-1]
    assert (test.name, test.source) == ("api-smoke", "suite/api")
    container = test.pod_spec["containers"][0]
    assert container["image"] == "localhost/e2e:2.0.1"
    assert container["args"][1] == "http://web.shop:web"
    assert test.pod_spec["initContainers"][0]["volumeMounts"][0]["mountPath"] == "/access_tokens"
    assert p.used_suites == ["api"]


def test_suite_values_path_overrides_the_operator_default() -> None:
    rel = release(values={"image": {"tag": "1"}, "api": {"image": {"tag": "7.7.7"}}, "host": "h"})
    p = plan(rel, suites=[suite(imageTag={"valuesPath": "api.image.tag"})])
    assert p.tests[-1].pod_spec["containers"][0]["image"] == "localhost/e2e:7.7.7"
    assert p.image_tag == "7.7.7"


def test_missing_image_tag_makes_the_suite_invalid_with_the_values_path_named() -> None:
    rel = release(values={}, app_version="")
    p = plan(rel, suites=[suite()])
    assert [t.source for t in p.tests] == ["hook", "hook"]
    assert "image.tag" in p.problems[0].message
    assert "image_tag" in p.problems[0].message


@pytest.mark.parametrize(
    "template",
    [
        "{{ nope }}",
        "{{ unclosed",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ values.missing.deeper }}",
    ],
)
def test_broken_or_hostile_templates_invalidate_only_their_suite(template: str) -> None:
    bad = suite("bad", tests=[{"name": "x", "template": {"containers": [{"name": "c", "image": template}]}}])
    p = plan(suites=[bad, suite("good")])
    assert [p_.suite for p_ in p.problems] == ["bad"]
    assert "tests[0].template.containers[0].image" in p.problems[0].message
    assert [t.source for t in p.tests] == ["hook", "hook", "suite/good"]


def test_schema_errors_name_the_field() -> None:
    bad = Suite(name="s", namespace="shop", spec={"tests": [{"name": "Bad Name", "template": {}}]})
    p = plan(suites=[bad])
    assert p.problems[0].message.startswith("spec.tests.0.name")


@pytest.mark.parametrize(
    ("selector", "triggers", "matches"),
    [
        ({}, ["install", "upgrade", "rollback"], True),
        ({"names": ["web"]}, ["upgrade"], True),
        ({"charts": ["web-chart"]}, ["upgrade"], True),
        ({"names": ["other"], "charts": ["other-chart"]}, ["upgrade"], False),
        ({"names": ["web"]}, ["install"], False),
    ],
)
def test_suite_matching_by_name_chart_and_trigger(
    selector: dict[str, Any], triggers: list[str], matches: bool
) -> None:
    spec = validate_suite(
        Suite(name="s", namespace="shop", spec={"releases": selector, "triggers": triggers})
    )
    assert suite_matches(spec, release()) is matches


def test_a_suite_for_another_chart_is_not_used() -> None:
    p = plan(suites=[suite(releases={"charts": ["other-chart"]})])
    assert p.used_suites == []
    assert all(t.source == "hook" for t in p.tests)


def test_colliding_test_names_get_numbered() -> None:
    p = plan(suites=[suite("a"), suite("b")])
    assert [t.name for t in p.tests] == ["web-smoke", "web-legacy", "api-smoke", "api-smoke-2"]


def test_report_recipients_are_merged_across_suites() -> None:
    s1 = suite("a", report={"to": ["Team@x.io"], "onlyOnFailure": True})
    s2 = suite("b", report={"to": ["team@x.io", "ops@x.io"], "onlyOnFailure": True})
    p = plan(suites=[s1, s2])
    assert p.report.to == ["Team@x.io", "ops@x.io"]
    assert p.report.only_on_failure is True


def test_pod_manifest_has_owner_labels_env_and_never_restarts() -> None:
    rel = release()
    p = plan(suites=[suite()])
    run = Run(name="web-3", namespace="shop", uid="uid-1", spec=build_run_spec(rel, p, deadline_seconds=900))
    test = p.tests[-1]
    original = copy.deepcopy(test.pod_spec)
    pod = build_pod_manifest(run=run, test=test)
    assert test.pod_spec == original  # input not mutated
    assert pod["metadata"]["name"] == "web-3-api-smoke"
    assert pod["metadata"]["ownerReferences"][0] == {
        "apiVersion": "helm-e2e.dev/v1alpha1",
        "kind": "E2ERun",
        "name": "web-3",
        "uid": "uid-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    labels = pod["metadata"]["labels"]
    assert labels["helm-e2e.dev/run"] == "web-3"
    assert labels["helm-e2e.dev/test"] == "api-smoke"
    assert labels["app.kubernetes.io/managed-by"] == "helm-e2e"
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] == 600
    for container in spec["initContainers"] + spec["containers"]:
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["HELM_E2E_IMAGE_TAG"] == "2.0.1"
        assert env["HELM_E2E_RUN"] == "web-3"
    assert spec["volumes"] == [{"name": "tokens", "emptyDir": {}}]


def test_a_templates_own_env_value_wins() -> None:
    rel = release()
    p = plan(
        suites=[
            suite(
                tests=[
                    {
                        "name": "t",
                        "template": {
                            "containers": [
                                {
                                    "name": "c",
                                    "image": "i",
                                    "env": [{"name": "HELM_E2E_RELEASE", "value": "custom"}],
                                }
                            ]
                        },
                    }
                ]
            )
        ]
    )
    run = Run(name="web-3", namespace="shop", spec=build_run_spec(rel, p, deadline_seconds=900))
    env = build_pod_manifest(run=run, test=p.tests[-1])["spec"]["containers"][0]["env"]
    assert [e["value"] for e in env if e["name"] == "HELM_E2E_RELEASE"] == ["custom"]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_rendering_arbitrary_template_text_only_ever_yields_a_problem(text: str) -> None:
    s = suite(tests=[{"name": "t", "template": {"containers": [{"name": "c", "image": text}]}}])
    p = plan(suites=[s])  # must not raise
    assert len(p.problems) + len(p.used_suites) == 1


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=120), st.integers(min_value=1, max_value=10**6), st.text(max_size=60))
def test_run_and_pod_names_are_always_dns_labels(release_name: str, revision: int, test_name: str) -> None:
    run = build_run_name(release_name, revision)
    pod = build_pod_name(run, test_name)
    for name in (run, pod):
        assert 0 < len(name) <= 63
        assert name[0].isalnum()
        assert name[-1].isalnum()
        assert all(c.isdigit() or ("a" <= c <= "z") or c == "-" for c in name)
    assert build_pod_name(run, test_name) == pod


def test_long_names_that_share_a_prefix_stay_distinct() -> None:
    a = build_pod_name("r" * 60, "test-a")
    b = build_pod_name("r" * 60, "test-b")
    assert a != b
