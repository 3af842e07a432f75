"""Argo CD Applications as a source of deploys (core/sources/argocd.py): which sync is tested and when, what it
deployed, which suites select it, and the intake through the controller with an in-memory Kube port."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fake_kube import NOW, Clock, FakeKube

from helm_e2e.core.model import names
from helm_e2e.core.model.release import ManagedBy, Trigger
from helm_e2e.core.model.run import ReleaseRef, RequestTrigger, Run, RunRequest, RunSpec
from helm_e2e.core.model.run_codec import run_from_body
from helm_e2e.core.model.run_status import RunPhase, RunStatus
from helm_e2e.core.model.suite import ApplicationSelector, SuiteSpec
from helm_e2e.core.outcomes.report import render_report
from helm_e2e.core.plan.build import suite_matches
from helm_e2e.core.sources import argocd
from helm_e2e.reconcile.controller import Controller
from helm_e2e.runtime.scheduler import Scheduler
from helm_e2e.settings import Settings

SHA = "0b1e5d3c0a6f4e2b9c8d7e6f5a4b3c2d1e0f9a8b"


def application(
    *, history: int = 1, health: str = "Healthy", phase: str = "Succeeded", tag: str = "1.0.0", **dest: str
) -> dict[str, Any]:
    """An Application as Argo CD's controller writes it (argoproj.io/v1alpha1)."""
    deployed = (NOW - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": "argocd", "uid": "app-uid", "labels": {"team": "shop"}},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": "https://git.example.com/shop.git",
                "path": "charts/web",
                "targetRevision": "main",
                "helm": {
                    "parameters": [{"name": "image.tag", "value": tag}],
                    "valuesObject": {"replicas": 2},
                },
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop", **dest},
        },
        "status": {
            "sync": {"status": "Synced", "revision": SHA},
            "health": {"status": health},
            "history": [
                {"id": i, "revision": SHA, "deployedAt": deployed, "deployStartedAt": deployed}
                for i in range(1, history + 1)
            ],
            "operationState": {"phase": phase, "finishedAt": deployed, "syncResult": {"revision": SHA}},
            "summary": {"images": ["registry.example.com/shop/web:0.9.0"]},
            "resources": [
                {"kind": "Deployment", "name": "web", "namespace": "shop", "health": {"status": health}}
            ],
        },
    }


def decide(app: dict[str, Any], now: datetime = NOW) -> argocd.Decision:
    return argocd.decide_sync(app, now=now, ready_timeout_seconds=600)


def test_a_new_successful_healthy_sync_is_tested_as_its_own_run() -> None:
    decision = decide(application(history=3))
    assert decision.verdict == argocd.Verdict.TEST
    assert decision.sync is not None
    assert (decision.sync.history_id, decision.sync.namespace, decision.sync.revision) == (3, "shop", SHA)
    assert argocd.build_run_name("web", 3) == "web-a3"  # never a Helm release's `web-3`


@pytest.mark.parametrize("app", ["web", "web-2", "w" * 253, "web-a1", "a.b-c"])
@pytest.mark.parametrize(("history", "attempt"), [(1, 2), (12, 3), (999999, 99)])
def test_a_syncs_rerun_name_is_a_name_no_helm_run_and_no_first_run_of_a_sync_can_have(
    app: str, history: int, attempt: int
) -> None:
    name = argocd.build_attempt_run_name(app, history, attempt)
    assert len(name) <= 63
    assert name.endswith(f"-a{history}-r{attempt}")
    assert not re.search(r"-\d+(-r\d+)?$", name)  # a Helm run: `<release>-<rev>[-r<n>]`
    assert not re.search(r"-a\d+$", name)  # a sync's first run: `<app>-a<id>`
    assert argocd.build_attempt_run_name(app, history, 1) == argocd.build_run_name(app, history)


@pytest.mark.parametrize(
    ("app", "verdict"),
    [
        (application(phase="Failed"), argocd.Verdict.NONE),
        (application(phase="Running"), argocd.Verdict.NONE),
        (application(history=0), argocd.Verdict.NONE),
        (application(namespace=""), argocd.Verdict.NONE),  # no destination namespace: nowhere to run
        (application(server="https://other-cluster:6443"), argocd.Verdict.NONE),  # another cluster
        (application(health="Progressing"), argocd.Verdict.WAIT),
    ],
    ids=["failed", "running", "no-history", "no-namespace", "remote", "progressing"],
)
def test_only_a_successful_in_cluster_sync_is_tested_and_only_once_healthy(
    app: dict[str, Any], verdict: argocd.Verdict
) -> None:
    assert decide(app).verdict == verdict


def test_a_sync_not_healthy_within_the_timeout_names_what_is_not_healthy() -> None:
    app = application(health="Degraded")
    app["status"]["resources"][0]["health"]["message"] = "Deployment exceeded its progress deadline"
    decision = decide(app, NOW + timedelta(seconds=600))
    assert decision.verdict == argocd.Verdict.NOT_READY
    assert decision.message == (
        "application not Healthy within 600s: Degraded; deployment/web Degraded "
        "(Deployment exceeded its progress deadline)"
    )


def test_the_release_the_planner_sees_carries_the_apps_values_tag_and_labels() -> None:
    app = application(tag="1.2.3")
    release = argocd.build_release(app, argocd.latest_sync(app))  # type: ignore[arg-type]
    assert (release.name, release.namespace, release.revision, release.trigger) == (
        "web",
        "shop",
        1,
        Trigger.SYNC,
    )
    assert release.values == {"replicas": 2, "image": {"tag": "1.2.3"}}
    assert (release.chart_name, release.chart_version, release.app_version) == ("web", "main", "0.9.0")
    assert release.app_labels == {"team": "shop"}
    assert release.hooks == []  # Argo skips helm.sh/hook: test


def test_suites_select_applications_only_when_they_ask_and_then_no_helm_release() -> None:
    app = application()
    release = argocd.build_release(app, argocd.latest_sync(app))  # type: ignore[arg-type]
    helm = release.model_copy(update={"trigger": Trigger.UPGRADE})
    every = SuiteSpec.model_validate({"tests": []})
    by_name = SuiteSpec.model_validate({"applications": {"names": ["web"]}, "tests": []})
    by_label = SuiteSpec.model_validate({"applications": {"labels": {"team": "shop"}}, "tests": []})
    other = SuiteSpec.model_validate({"applications": {"labels": {"team": "pay"}}, "tests": []})
    assert [suite_matches(s, release) for s in (every, by_name, by_label, other)] == [
        False,
        True,
        True,
        False,
    ]
    assert [suite_matches(s, helm) for s in (every, by_name)] == [True, False]
    assert argocd.selects(ApplicationSelector(), app="web", labels={}) is False


def test_the_commit_is_the_sync_revision_and_the_report_says_how_to_roll_back_with_argo() -> None:
    sync = argocd.latest_sync(application(history=4))
    assert sync is not None
    assert argocd.commit_of(sync) == SHA
    managed = ManagedBy(kind="Application", name="web", namespace="argocd")
    ref = ReleaseRef(
        name="web", namespace="shop", revision=4, chart="web", chart_version="main", trigger=Trigger.SYNC,
        commit=SHA, managed_by=managed,
    )  # fmt: skip
    failed = Run(
        name="web-a4", namespace="shop", spec=RunSpec(release=ref), status=RunStatus(phase=RunPhase.FAILED)
    )
    text = render_report(failed, cluster="prod").text
    assert "Managed by  Argo CD Application argocd/web (sync 4)" in text
    assert "argocd app rollback web 3" in text
    passed = failed.model_copy(update={"status": RunStatus(phase=RunPhase.SUCCEEDED)})
    assert "argocd app rollback" not in render_report(passed, cluster="prod").text


# --- the intake ------------------------------------------------------------------------------------------
SUITE = {
    "metadata": {"name": "api", "generation": 1},
    "spec": {
        "applications": {"names": ["web"]},
        "tests": [
            {"name": "api", "template": {"containers": [{"name": "t", "image": "e2e:{{ image_tag }}"}]}}
        ],
    },
}


def controller(kube: FakeKube, clock: Clock) -> Controller:
    kube.suites["shop"] = [copy.deepcopy(SUITE)]
    return Controller(settings=Settings(smtp_host="", resync_seconds=5), kube=kube, clock=clock)


async def test_a_healthy_sync_gets_one_run_in_the_destination_namespace(kube: FakeKube, clock: Clock) -> None:
    ctl = controller(kube, clock)
    app = application(tag="1.1.0")
    await ctl.on_application(app)
    await ctl.on_application(app)  # every later event finds the run
    assert list(kube.runs) == [("shop", "web-a1")]
    run = run_from_body(kube.runs[("shop", "web-a1")])
    ref = run.spec.release
    assert (ref.trigger, ref.revision, ref.image_tag, ref.commit, ref.secret_uid) == (
        Trigger.SYNC, 1, "1.1.0", SHA, "app-uid",
    )  # fmt: skip
    assert ref.managed_by == ManagedBy(kind="Application", name="web", namespace="argocd")
    assert [(t.name, t.source) for t in run.spec.tests] == [("api", "suite/api")]
    assert run.spec.on_failure is not None
    assert run.spec.on_failure.value == "none"  # Argo owns sync: never a helm rollback
    await ctl.reconcile(("shop", "web-a1"))
    assert kube.created_pods == ["web-a1-api"]


async def test_a_new_sync_supersedes_the_last_and_an_unhealthy_one_waits(
    kube: FakeKube, clock: Clock
) -> None:
    ctl = controller(kube, clock)
    await ctl.on_application(application(history=1))
    await ctl.on_application(application(history=2, health="Progressing"))
    assert list(kube.runs) == [("shop", "web-a1")]
    await ctl.on_application(application(history=2, tag="2.0.0"))
    assert sorted(kube.runs) == [("shop", "web-a1"), ("shop", "web-a2")]
    assert kube.runs[("shop", "web-a1")]["status"]["phase"] == "Superseded"


async def test_an_application_never_healthy_gets_a_run_that_ends_not_ready(
    kube: FakeKube, clock: Clock
) -> None:
    ctl = controller(kube, clock)
    clock.now = NOW + timedelta(seconds=630)
    await ctl.on_application(application(health="Degraded"))
    status = kube.runs[("shop", "web-a1")]["status"]
    assert status["phase"] == "Error"
    assert [t["reason"] for t in status["tests"]] == [names.REASON_RELEASE_NOT_READY]
    assert "deployment/web Degraded" in status["message"]


async def test_an_old_sync_at_the_operators_start_gets_no_run(kube: FakeKube, clock: Clock) -> None:
    ctl = controller(kube, clock)
    clock.now = datetime(2027, 1, 1, tzinfo=UTC)
    await ctl.on_application(application())
    assert kube.runs == {}


async def test_after_a_restart_the_run_is_planned_again_from_its_own_application(
    kube: FakeKube, clock: Clock
) -> None:
    app = application()
    await controller(kube, clock).on_application(app)
    kube.applications[("argocd", "web")] = app
    restarted = controller(kube, clock)  # no plan kept: the Application is read again
    await restarted.reconcile(("shop", "web-a1"))
    assert kube.created_pods == ["web-a1-api"]


async def test_a_run_whose_application_was_replaced_ends_refused(kube: FakeKube, clock: Clock) -> None:
    app = application()
    await controller(kube, clock).on_application(app)
    other = copy.deepcopy(app)
    other["metadata"]["uid"] = "another-uid"  # deleted and created again: not the Application of this run
    kube.applications[("argocd", "web")] = other
    await controller(kube, clock).reconcile(("shop", "web-a1"))
    assert kube.runs[("shop", "web-a1")]["status"]["phase"] == "Refused"
    assert kube.created_pods == []


def test_the_release_is_what_the_sync_deployed_not_what_the_spec_says_since() -> None:
    app = application(tag="1.0.0")
    synced_source = copy.deepcopy(app["spec"]["source"])
    app["status"]["history"][0]["source"] = synced_source
    app["spec"]["source"]["helm"]["parameters"][0]["value"] = "2.0.0"  # edited, not synced (auto-sync off)
    release = argocd.build_release(app, argocd.latest_sync(app))  # type: ignore[arg-type]
    assert release.values["image"] == {"tag": "1.0.0"}
    del app["status"]["history"][0]["source"]  # an entry without its source: the spec, as before
    assert argocd.build_release(app, argocd.latest_sync(app)).values["image"] == {"tag": "2.0.0"}  # type: ignore[arg-type]


async def with_tested_sync(kube: FakeKube, clock: Clock, app: dict[str, Any]) -> Controller:
    """The application's sync tested (web-a<n> Succeeded), the Application readable."""
    ctl = controller(kube, clock)
    await ctl.on_application(app)
    kube.applications[("argocd", "web")] = app
    name = argocd.build_run_name("web", len(app["status"]["history"]))
    kube.runs[("shop", name)]["status"] = {"phase": "Succeeded"}
    return ctl


async def test_a_rerun_annotation_on_an_application_run_retests_its_sync_once(
    kube: FakeKube, clock: Clock
) -> None:
    ctl = await with_tested_sync(kube, clock, application(tag="1.1.0"))
    body = copy.deepcopy(kube.runs[("shop", "web-a1")])
    await ctl.on_run_annotations("shop", "web", {"helm-e2e.dev/rerun": "abc"}, run=body)
    await ctl.on_run_annotations("shop", "web", {"helm-e2e.dev/rerun": "abc"}, run=body)  # the next event
    restarted = controller(kube, clock)  # kill -9: the annotation is still there
    await restarted.on_run_annotations("shop", "web", {"helm-e2e.dev/rerun": "abc"}, run=body)
    assert sorted(name for _, name in kube.runs) == ["web-a1", "web-a1-r2"]
    run = run_from_body(kube.runs[("shop", "web-a1-r2")])
    ref = run.spec.release
    assert (ref.revision, ref.image_tag, ref.commit, ref.secret_uid, ref.trigger) == (
        1, "1.1.0", SHA, "app-uid", Trigger.SYNC,
    )  # fmt: skip
    assert (run.spec.attempt, run.spec.request) == (2, RunRequest(trigger=RequestTrigger.RERUN, token="abc"))
    assert ref.managed_by == ManagedBy(kind="Application", name="web", namespace="argocd")
    await restarted.reconcile(("shop", "web-a1-r2"))
    assert kube.created_pods == ["web-a1-r2-api"]  # planned again from the Application after the restart


async def test_a_rerun_is_refused_for_a_run_elsewhere_or_of_a_replaced_application(
    kube: FakeKube, clock: Clock
) -> None:
    ctl = await with_tested_sync(kube, clock, application())
    forged = copy.deepcopy(kube.runs[("shop", "web-a1")])
    forged["metadata"]["namespace"] = forged["spec"]["release"]["namespace"] = "tenant"
    await ctl.on_run_annotations("tenant", "web", {"helm-e2e.dev/rerun": "x"}, run=forged)
    replaced = copy.deepcopy(kube.applications[("argocd", "web")])
    replaced["metadata"]["uid"] = "another-uid"
    kube.applications[("argocd", "web")] = replaced
    body = kube.runs[("shop", "web-a1")]
    await ctl.on_run_annotations("shop", "web", {"helm-e2e.dev/rerun": "y"}, run=body)
    assert list(kube.runs) == [("shop", "web-a1")]


async def test_a_schedule_with_applications_reverifies_the_latest_tested_sync(
    kube: FakeKube, clock: Clock
) -> None:
    ctl = await with_tested_sync(kube, clock, application(history=2))
    body = copy.deepcopy(SUITE)
    body["metadata"]["namespace"] = "shop"
    body["metadata"]["creationTimestamp"] = (NOW - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body["spec"]["schedule"] = {"cron": "0 * * * *", "timeZone": "UTC"}
    kube.suites["shop"] = [body]
    scheduler = Scheduler(controller=ctl, clock=clock)
    scheduler.observe("ADDED", body)
    assert await scheduler.tick() == 1
    assert await scheduler.tick() == 0
    assert sorted(name for _, name in kube.runs) == ["web-a2", "web-a2-r2"]
    spec = kube.runs[("shop", "web-a2-r2")]["spec"]
    assert (spec["release"]["revision"], spec["attempt"], spec["request"]["trigger"]) == (2, 2, "schedule")
    assert [t["name"] for t in spec["tests"]] == ["api"]
    assert "lastScheduleTime" in kube.suites["shop"][0]["status"]
