"""build_plan at the trust boundary: pod policy per test, ServiceAccount allow-list and API tokens,
report recipients limited to the allowed domains."""

from __future__ import annotations

import functools
from typing import Any

import runs
import yaml
from plans import make_plan, make_release

from helm_e2e.core.model.release import Hook
from helm_e2e.core.model.suite import Suite
from helm_e2e.core.plan.build import PlannedTest, build_pod_manifest
from helm_e2e.core.plan.recipients import check_recipients


def suite_with(template: dict[str, Any], name: str = "api", **spec: Any) -> Suite:
    return Suite(name=name, namespace="shop", spec={"tests": [{"name": "t", "template": template}], **spec})


run = functools.partial(runs.make_run, release={"revision": 3})  # web-3 in shop


PRIVILEGED_POD = {
    "hostNetwork": True,
    "containers": [{"name": "c", "image": "i", "securityContext": {"privileged": True}}],
}


def test_a_suite_pod_violating_baseline_is_planned_with_the_violation_named() -> None:
    plan = make_plan(suites=[suite_with(PRIVILEGED_POD)], run_chart_hooks=False)
    (test,) = plan.tests
    assert test.policy_violation == (
        "spec.hostNetwork: must be unset or false; spec.containers[0].securityContext.privileged: must be unset or false"
    )
    assert plan.problems == []


def test_the_privileged_level_lets_the_same_pod_through() -> None:
    plan = make_plan(suites=[suite_with(PRIVILEGED_POD)], run_chart_hooks=False, pod_security="privileged")
    assert plan.tests[0].policy_violation == ""


def test_chart_hook_pods_are_checked_too() -> None:
    plan = make_plan(pod_security="restricted")
    hooks = [t for t in plan.tests if t.source == "hook"]
    assert hooks
    assert all("allowPrivilegeEscalation" in t.policy_violation for t in hooks)
    assert all(t.policy_violation == "" for t in make_plan().tests)


def test_a_service_account_not_allowed_is_a_violation_and_gets_no_token() -> None:
    template = {"serviceAccountName": "deployer", "containers": [{"name": "c", "image": "i"}]}
    plan = make_plan(suites=[suite_with(template)], run_chart_hooks=False)
    (test,) = plan.tests
    assert test.policy_violation.startswith("spec.serviceAccountName: names a ServiceAccount not labelled")
    assert build_pod_manifest(run=run(), test=test)["spec"]["automountServiceAccountToken"] is False


def test_an_allowed_service_account_keeps_what_the_template_says_about_its_token() -> None:
    template = {"serviceAccountName": "e2e", "containers": [{"name": "c", "image": "i"}]}
    plan = make_plan(suites=[suite_with(template)], run_chart_hooks=False, test_accounts=frozenset({"e2e"}))
    (test,) = plan.tests
    assert (test.policy_violation, test.token_allowed) == ("", True)
    assert "automountServiceAccountToken" not in build_pod_manifest(run=run(), test=test)["spec"]


def test_without_an_allowed_account_the_token_is_off_even_if_the_template_asks() -> None:
    template = {"automountServiceAccountToken": True, "containers": [{"name": "c", "image": "i"}]}
    (test,) = make_plan(suites=[suite_with(template)], run_chart_hooks=False).tests
    assert build_pod_manifest(run=run(), test=test)["spec"]["automountServiceAccountToken"] is False
    bare = PlannedTest(
        name="t", source="hook", timeout_seconds=5, pod_spec={"automountServiceAccountToken": True}
    )
    assert build_pod_manifest(run=run(), test=bare)["spec"]["automountServiceAccountToken"] is False


def test_recipients_outside_the_allowed_domains_make_the_suite_invalid() -> None:
    suites = [
        suite_with({"containers": []}, "a-ok", report={"to": ["team@example.com"]}),
        suite_with({"containers": []}, "b-foreign", report={"to": ["team@example.com", "x@evil.test"]}),
        suite_with({"containers": []}, "c-malformed", report={"to": ["a@example.com\r\nBcc: x@evil.test"]}),
    ]
    plan = make_plan(suites=suites, run_chart_hooks=False, mail_allowed_domains=frozenset({"example.com"}))
    assert plan.used_suites == ["a-ok"]
    assert [(p.suite, p.message) for p in plan.problems] == [
        ("b-foreign", "spec.report.to[1]: domain is not allowed (HELM_E2E_MAIL_ALLOWED_DOMAINS)"),
        ("c-malformed", "spec.report.to[0]: not a plain e-mail address"),
    ]
    assert plan.report.to == ["team@example.com"]


def test_recipients_are_not_checked_when_mail_is_off() -> None:
    suite = suite_with({"containers": []}, report={"to": ["x@evil.test"]})
    assert make_plan(suites=[suite], run_chart_hooks=False).problems == []


def test_recipient_check_is_case_insensitive_on_domains_and_strict_on_shape() -> None:
    allowed = frozenset({"Example.COM"})
    assert check_recipients(["a.b+c@EXAMPLE.com"], allowed_domains=allowed) is None
    for bad in ("A <a@example.com>", "a@example.com, b@example.com", "@example.com", "a@", "a b@example.com"):
        assert check_recipients([bad], allowed_domains=allowed) == "report.to[0]: not a plain e-mail address"
    assert check_recipients(["a@sub.example.com"], allowed_domains=allowed) is not None


def test_a_release_value_rendered_into_a_refused_field_is_not_echoed() -> None:
    release = make_release(values={"image": {"tag": "1"}, "secret": "hunter2-Pa55"})
    template = {"nodeName": "{{ values.secret }}", "containers": [{"name": "c", "image": "i"}]}
    (test,) = make_plan(release, suites=[suite_with(template)], run_chart_hooks=False).tests
    assert test.policy_violation.startswith("spec.nodeName:")
    assert "hunter2" not in test.policy_violation


def test_chart_hooks_may_use_the_service_account_their_own_test_hooks_create() -> None:
    pod = POD_WITH_ACCOUNT.replace("ACCOUNT", "web-test-sa")
    hooks = [
        Hook(
            name="web-test-sa",
            kind="ServiceAccount",
            manifest="apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web-test-sa\n",
            events=["test"],
        ),
        Hook(name="web-smoke", kind="Pod", manifest=pod, events=["test"]),
        Hook(
            name="web-other",
            kind="Pod",
            manifest=pod.replace("web-smoke", "web-other").replace("web-test-sa", "x"),
            events=["test"],
        ),
    ]
    plan = make_plan(make_release(hooks=hooks))
    assert sorted((t.name, t.policy_violation[:23], t.token_allowed) for t in plan.tests) == [
        ("web-other", "spec.serviceAccountName", False),
        ("web-smoke", "", True),
    ]
    suite = suite_with({"serviceAccountName": "web-test-sa", "containers": []})
    (suite_test,) = make_plan(make_release(hooks=hooks), suites=[suite], run_chart_hooks=False).tests
    assert suite_test.policy_violation.startswith(
        "spec.serviceAccountName"
    )  # suites do not get hook accounts


POD_WITH_ACCOUNT = """apiVersion: v1
kind: Pod
metadata: {name: web-smoke}
spec:
  serviceAccountName: ACCOUNT
  containers: [{name: t, image: busybox}]
"""


def test_a_suite_or_hook_pod_with_a_projected_token_but_no_allowed_account_is_a_policy_violation() -> None:
    volumes = [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]
    pod = {"containers": [{"name": "c", "image": "i"}], "volumes": volumes}
    hook = Hook(name="h", kind="Pod", events=["test"],
                manifest=yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "h"}, "spec": pod}))  # fmt: skip
    plan = make_plan(release=make_release(hooks=[hook]), suites=[suite_with(pod)])
    assert (
        sorted(t.policy_violation for t in plan.tests)
        == [
            "spec.volumes[0].projected.sources[0].serviceAccountToken: a token needs a named ServiceAccount "
            "labelled helm-e2e.dev/test-account=true"
        ]
        * 2
    )
    assert [t.token_allowed for t in plan.tests] == [False, False]
