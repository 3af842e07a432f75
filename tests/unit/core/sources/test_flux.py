"""GitOps: a Flux-managed release is recognised, never rolled back behind Flux's back, its chart tests are
not run twice when Flux runs them, and the commit a deploy carries reaches the run, report, JUnit and
webhooks (core/sources/flux.py, docs/gitops.md)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import runs
from fake_kube import Clock, FakeKube
from flux_objects import FLUX, NOW, flux_manifest, flux_run, helm_release
from helm_encoding import helm_release_doc, helm_secret
from policies import MAILING  # mail on, the rollback tests' policy

from helm_e2e.core.lifecycle import decide
from helm_e2e.core.model import names
from helm_e2e.core.model.release import Hook, ManagedBy, OnFailure, Release, Trigger
from helm_e2e.core.model.run import ReleaseRef, Run, RunSpec
from helm_e2e.core.model.run_codec import run_from_body
from helm_e2e.core.model.run_status import RunPhase, RunStatus, TestPhase
from helm_e2e.core.outcomes import rollback as rb
from helm_e2e.core.outcomes.junit_report import build_junit_xml
from helm_e2e.core.outcomes.report import render_report
from helm_e2e.core.plan.build import build_plan, leave_chart_tests_to_flux
from helm_e2e.core.plan.run_spec import build_run_spec
from helm_e2e.core.results.run_tests import TestObjects, get_condition
from helm_e2e.core.sources import flux as gitops
from helm_e2e.reconcile.controller import Controller
from helm_e2e.settings import Settings

SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"


# --- recognising a Flux-managed release -----------------------------------------------------------------
def test_the_flux_labels_of_the_release_objects_name_its_helmrelease() -> None:
    assert gitops.find_flux_owner(flux_manifest()) == FLUX


@pytest.mark.parametrize(
    "manifest",
    [
        "",
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  labels: {app: web}\n",
        "---\nkind: ConfigMap\nmetadata:\n  labels:\n    helm.toolkit.fluxcd.io/name: web\n",  # one label only
        flux_manifest(name="Not_A_Name"),
        "---\nkind: [unclosed\n",  # not YAML: the readiness gate says why; not Flux's
        "---\na: &x 1\nb: *x\n",  # aliases are refused, never expanded
    ],
    ids=["empty", "no-labels", "one-label", "bad-name", "not-yaml", "alias"],
)
def test_a_release_without_both_valid_flux_labels_is_not_flux_managed(manifest: str) -> None:
    assert gitops.find_flux_owner(manifest) is None


@pytest.mark.parametrize(
    ("spec", "history", "manages"),
    [
        ({"targetNamespace": "shop", "storageNamespace": "shop"}, [], True),  # release `shop-web`
        ({"targetNamespace": "shop"}, [], False),  # stored in flux-system (Flux's default), not in shop
        ({"releaseName": "web", "storageNamespace": "shop"}, [], True),
        ({"releaseName": "web"}, [], False),  # stored in flux-system, not in shop
        ({}, [{"name": "web", "namespace": "shop", "version": 3}], True),  # its history names it
        ({}, [{"name": "web", "namespace": "other", "version": 3}], False),
        ({"targetNamespace": "other"}, [], False),
    ],
)
def test_a_helmrelease_is_believed_only_when_it_names_this_release(
    spec: dict[str, Any], history: list[dict[str, Any]], manages: bool
) -> None:
    hr = helm_release(**spec)
    hr["status"]["history"] = history
    release = "shop-web" if spec.get("targetNamespace") else "web"
    assert gitops.manages(hr, release=release, namespace="shop") is manages


def test_flux_runs_the_tests_only_with_test_enable_on_a_helmrelease_that_names_the_release() -> None:
    mine = helm_release(releaseName="web", storageNamespace="shop", test={"enable": True})
    assert gitops.flux_runs_tests(mine, release="web", namespace="shop", trigger=Trigger.UPGRADE)
    assert not gitops.flux_runs_tests(mine, release="web", namespace="other-tenant", trigger=Trigger.UPGRADE)
    off = helm_release(releaseName="web", storageNamespace="shop", test={"enable": False})
    assert not gitops.flux_runs_tests(off, release="web", namespace="shop", trigger=Trigger.INSTALL)
    assert not gitops.flux_runs_tests(
        None, release="web", namespace="shop", trigger=Trigger.INSTALL
    )  # no API


# --- the plan -----------------------------------------------------------------------------------------
HOOK = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-check\nspec:\n  containers: [{name: t, image: busybox}]\n"
SUITE_SPEC = {"tests": [{"name": "api", "template": {"containers": [{"name": "t", "image": "e2e:1"}]}}]}


def release(manifest: str, **kw: Any) -> Release:
    return Release(
        name="web",
        namespace="shop",
        revision=3,
        status="deployed",
        chart_name="web",
        chart_version="1.0.0",
        hooks=[Hook(name="web-check", kind="Pod", manifest=HOOK, events=["test"])],
        manifest=manifest,
        trigger=Trigger.UPGRADE,
        **kw,
    )


def plan_of(r: Release) -> Any:
    from helm_e2e.core.model.suite import Suite

    suite = Suite(name="e2e", namespace="shop", spec=SUITE_SPEC)
    return build_plan(
        r, suites=[suite], image_tag_values_path="image.tag", run_chart_hooks=True, default_timeout_seconds=60
    )


def test_a_plan_records_the_helmrelease_and_without_flux_tests_keeps_the_chart_hooks() -> None:
    plan = plan_of(release(flux_manifest()))
    assert plan.managed_by == FLUX
    assert [(t.name, t.source) for t in plan.tests] == [("web-check", "hook"), ("api", "suite/e2e")]


def test_when_flux_runs_the_chart_tests_they_are_flux_tests_and_only_the_suites_run_here() -> None:
    plan = leave_chart_tests_to_flux(plan_of(release(flux_manifest())))
    assert [(t.name, t.source) for t in plan.tests] == [("web-check", "flux"), ("api", "suite/e2e")]
    assert plan.resources == []
    spec = build_run_spec(release(flux_manifest()), plan, deadline_seconds=600, default_retries=2)
    assert spec.release.managed_by == FLUX.model_copy(update={"tests": True})
    assert [(t.name, t.source, t.retries) for t in spec.tests] == [
        ("web-check", "flux", None),
        ("api", "suite/e2e", 2),
    ]


def test_a_release_flux_does_not_manage_keeps_its_chart_tests_whatever_is_asked() -> None:
    plan = plan_of(release("---\n"))
    assert plan.managed_by is None
    assert leave_chart_tests_to_flux(plan) == plan


# --- never a helm rollback behind Flux's back -------------------------------------------------------------
def failed_run(revision: int, *, managed_by: ManagedBy | None, phase: RunPhase = RunPhase.FAILED) -> Run:
    return runs.make_run(
        release={"revision": revision, "chart": "web", "managed_by": managed_by},
        uid=f"u{revision}",
        on_failure=OnFailure.ROLLBACK,
        status=RunStatus(phase=phase, completed_at=NOW),
    )


def test_a_failing_flux_release_is_not_rolled_back_although_an_earlier_revision_passed() -> None:
    passed = failed_run(2, managed_by=FLUX, phase=RunPhase.SUCCEEDED)
    failing = failed_run(3, managed_by=FLUX)
    decision = rb.decide_rollback(failing, [passed, failing], deployed_revision=3, revisions={1, 2, 3})
    assert (decision.target, decision.reason) == (None, names.REASON_MANAGED_BY_FLUX)
    assert "flux suspend helmrelease web -n flux-system" in decision.message
    without = failed_run(3, managed_by=None)  # the same history without Flux: rolled back to 2
    assert (
        rb.decide_rollback(without, [passed, without], deployed_revision=3, revisions={1, 2, 3}).target == 2
    )


def test_the_flux_decision_is_recorded_with_a_warning_and_no_helm_call_then_the_report_goes() -> None:
    passed = failed_run(2, managed_by=FLUX, phase=RunPhase.SUCCEEDED)
    failing = failed_run(3, managed_by=FLUX)
    history = rb.History(deployed=3, revisions={1, 2, 3}, runs=[passed, failing])
    actions = decide.decide_run(
        failing, decide.Observed(now=NOW, objects=TestObjects(), history=history), MAILING
    )
    assert not any(isinstance(a, decide.Rollback) for a in actions)
    patch = next(a for a in actions if isinstance(a, decide.PatchStatus))
    cond = get_condition(patch.status, names.COND_ROLLED_BACK)
    assert cond is not None
    assert (cond.status, cond.reason) == ("False", names.REASON_MANAGED_BY_FLUX)
    event = next(a for a in actions if isinstance(a, decide.PostEvent))
    assert (event.type, event.reason) == ("Warning", names.EVENT_ROLLED_BACK)
    settled = failing.model_copy(update={"status": patch.status})
    report = render_report(settled, cluster="prod")
    assert "Flux HelmRelease flux-system/web" in report.text
    assert "spec.upgrade.remediation" in report.text
    assert "rolled back to" not in report.subject


# --- the commit ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("labels", "annotations", "commit"),
    [
        ({names.COMMIT_LABEL: SHA}, {}, SHA),
        ({}, {names.OCI_REVISION_ANNOTATION: "main@sha1:" + SHA}, "main@sha1:" + SHA),
        (
            {names.COMMIT_LABEL: SHA},
            {names.OCI_REVISION_ANNOTATION: "v1.2.3"},
            SHA,
        ),  # the deploy's label wins
        ({names.COMMIT_LABEL: "a b<script>"}, {names.OCI_REVISION_ANNOTATION: "v1.2.3"}, "v1.2.3"),
        ({}, {}, ""),
        ({names.COMMIT_LABEL: "x" * 200}, {}, ""),
    ],
)
def test_the_commit_comes_from_the_release_label_else_the_oci_chart_annotation(
    labels: dict[str, str], annotations: dict[str, str], commit: str
) -> None:
    assert gitops.find_commit(labels=labels, chart_annotations=annotations) == commit


def test_the_commit_is_in_the_report_and_the_junit_properties() -> None:
    ref = ReleaseRef(
        name="web",
        namespace="shop",
        revision=3,
        chart="web",
        chart_version="1",
        trigger=Trigger.UPGRADE,
        commit=SHA,
    )
    run = Run(
        name="web-3",
        namespace="shop",
        uid="u",
        spec=RunSpec(release=ref),
        status=RunStatus(phase=RunPhase.SUCCEEDED),
    )
    report = render_report(run, cluster="prod")
    assert f"Commit      {SHA}" in report.text
    assert SHA in report.html
    assert f'<property name="commit" value="{SHA}" />' in build_junit_xml(run)
    plain = run.model_copy(update={"spec": RunSpec(release=ref.model_copy(update={"commit": None}))})
    assert "Commit" not in render_report(plain, cluster="prod").text
    assert 'name="commit"' not in build_junit_xml(plain)


# --- the controller: one GET of the HelmRelease, the run's spec, the Event ---------------------------------
def flux_secret(*, labels: dict[str, str] | None = None) -> dict[str, Any]:
    doc = helm_release_doc(revision=1, manifest=flux_manifest())
    secret = helm_secret(doc, name="sh.helm.release.v1.web.v1")
    secret["metadata"]["labels"] = {
        "owner": "helm",
        "name": "web",
        "status": "deployed",
        "version": "1",
        **(labels or {}),
    }
    return secret


async def intake(kube: FakeKube, clock: Clock, secret: dict[str, Any]) -> Run:
    controller = Controller(settings=Settings(smtp_host="", resync_seconds=5), kube=kube, clock=clock)
    kube.secrets[("shop", secret["metadata"]["name"])] = secret
    await controller.on_release_secret("ADDED", secret)
    return run_from_body(kube.runs[("shop", "web-1")])


async def test_a_release_flux_tests_gets_a_run_without_the_chart_hooks_and_says_why(
    kube: FakeKube, clock: Clock
) -> None:
    kube.helm_releases[("flux-system", "web")] = helm_release(
        releaseName="web", storageNamespace="shop", test={"enable": True}
    )
    run = await intake(kube, clock, flux_secret(labels={names.COMMIT_LABEL: SHA}))
    assert [(t.name, t.source) for t in run.spec.tests] == [("web-smoke", "flux")]  # Flux's, read not run
    assert run.spec.release.managed_by == FLUX.model_copy(update={"tests": True})
    assert run.spec.release.commit == SHA
    assert names.EVENT_FLUX_TESTS in kube.reasons()


@pytest.mark.parametrize(
    "found",
    [None, helm_release(releaseName="web", storageNamespace="shop"), helm_release(test={"enable": True})],
    ids=["no-helmrelease", "tests-off", "names-another-release"],
)
async def test_a_flux_release_whose_helmrelease_does_not_run_its_tests_keeps_them(
    kube: FakeKube, clock: Clock, found: dict[str, Any] | None
) -> None:
    if found is not None:
        kube.helm_releases[("flux-system", "web")] = found
    run = await intake(kube, clock, flux_secret())
    assert [t.source for t in run.spec.tests] == ["hook"]
    assert run.spec.release.managed_by == FLUX
    assert run.spec.release.commit is None
    assert names.EVENT_FLUX_TESTS not in kube.reasons()


# --- Flux's own test outcome, next to the suites' results -----------------------------------------------------
def flux_tested(version: int, phase: str) -> dict[str, Any]:
    """The HelmRelease after Flux tested `version` (status as helm-controller writes it)."""
    hr = helm_release(releaseName="web", storageNamespace="shop", test={"enable": True})
    hook = {"lastStarted": "2026-12-05T11:59:00Z", "lastCompleted": "2026-12-05T11:59:30Z", "phase": phase}
    hr["status"]["history"] = [
        {"name": "web", "namespace": "shop", "version": version, "testHooks": {"shop/web-smoke": hook}}
    ]
    return hr


def test_flux_test_results_are_read_for_this_revision_of_this_release_only() -> None:
    found = gitops.flux_test_results(flux_tested(1, "Failed"), release="web", namespace="shop", revision=1)
    result = found["web-smoke"]
    assert (result.phase, result.reason) == (TestPhase.FAILED, "FluxFailed")
    assert result.completed_at == datetime(2026, 12, 5, 11, 59, 30, tzinfo=UTC)
    assert "Flux HelmRelease flux-system/web" in result.message
    assert (
        gitops.flux_test_results(flux_tested(1, "Succeeded"), release="web", namespace="shop", revision=2)
        == {}
    )
    assert (
        gitops.flux_test_results(flux_tested(1, "Failed"), release="web", namespace="other", revision=1) == {}
    )
    assert gitops.flux_test_results(None, release="web", namespace="shop", revision=1) == {}
    running = gitops.flux_test_results(flux_tested(1, "Running"), release="web", namespace="shop", revision=1)
    assert running["web-smoke"].phase == TestPhase.RUNNING


POLICY = decide.Policy(
    resync_seconds=5,
    pod_ttl_seconds=60,
    mail_to=(),
    report_cancelled=True,
    smtp_enabled=False,
    mail_retry_base_seconds=2,
)


def test_a_flux_test_is_never_created_and_its_outcome_is_asked_of_the_helmrelease() -> None:
    actions = decide.decide_run(flux_run(), decide.Observed(now=NOW, objects=TestObjects()), POLICY)
    assert actions == [decide.FetchFluxTests()]
    waiting = decide.decide_run(flux_run(), decide.Observed(now=NOW, objects=TestObjects(), flux={}), POLICY)
    assert not any(isinstance(a, decide.CreateTest | decide.FetchPlan) for a in waiting)
    patch = next(a for a in waiting if isinstance(a, decide.PatchStatus))
    assert (patch.status.phase, patch.status.tests[0].phase) == (RunPhase.RUNNING, TestPhase.PENDING)


@pytest.mark.parametrize(
    ("flux_phase", "phase"), [("Succeeded", RunPhase.SUCCEEDED), ("Failed", RunPhase.FAILED)]
)
def test_the_outcome_flux_recorded_is_the_tests_result_in_the_run(flux_phase: str, phase: RunPhase) -> None:
    flux = gitops.flux_test_results(flux_tested(1, flux_phase), release="web", namespace="shop", revision=1)
    observed = decide.Observed(
        now=NOW, objects=TestObjects(), flux=flux, history=rb.History(deployed=1, revisions={1})
    )
    actions = decide.decide_run(flux_run(), observed, POLICY)
    patch = next(a for a in actions if isinstance(a, decide.PatchStatus))
    assert patch.status.phase == phase
    assert [(t.name, t.reason) for t in patch.status.tests] == [
        ("web-smoke", "" if flux_phase == "Succeeded" else "FluxFailed")
    ]
    done = flux_run().model_copy(update={"status": patch.status})
    assert decide.FetchFluxTests() not in decide.decide_run(
        done, decide.Observed(now=NOW, objects=TestObjects()), POLICY
    )


def test_a_flux_test_flux_never_finishes_ends_at_its_timeout() -> None:
    later = NOW + timedelta(seconds=61)
    started = flux_run()
    first = decide.decide_run(started, decide.Observed(now=NOW, objects=TestObjects(), flux={}), POLICY)
    running = started.model_copy(
        update={"status": next(a for a in first if isinstance(a, decide.PatchStatus)).status}
    )
    observed = decide.Observed(
        now=later, objects=TestObjects(), flux={}, history=rb.History(deployed=1, revisions={1})
    )
    patch = next(a for a in decide.decide_run(running, observed, POLICY) if isinstance(a, decide.PatchStatus))
    assert (patch.status.tests[0].phase, patch.status.tests[0].reason) == (
        TestPhase.ERROR,
        names.REASON_TIMEOUT,
    )


def test_a_long_release_name_is_shortened_as_flux_shortens_it() -> None:
    """helm-controller's ShortenName: over 53 characters, the first 40, '-', 12 hex of the SHA-256."""
    long = "some-front-appended-namespace-release-with-a-very-long-name"
    hr = {"metadata": {"name": "release-with-a-very-long-name", "namespace": "flux-system"}}
    hr["spec"] = {"targetNamespace": "some-front-appended-namespace"}
    name, storage = gitops.flux_release_name(hr)
    assert len(long) > 53
    assert name == long[:40] + "-" + hashlib.sha256(long.encode()).hexdigest()[:12]
    assert len(name) == 53
    assert storage == "flux-system"
    assert gitops.shorten_release_name("web") == "web"
