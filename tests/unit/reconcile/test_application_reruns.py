"""reconcile/application_reruns.py: a re-run annotation on an application's run, and a schedule selecting
applications, retest the latest sync once (planned again from the Application, never from a run)."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from argocd_apps import SHA, SUITE, application, controller
from fake_kube import NOW, Clock, FakeKube

from helm_e2e.core.model.release import ManagedBy, Trigger
from helm_e2e.core.model.run import RequestTrigger, RunRequest
from helm_e2e.core.model.run_codec import run_from_body
from helm_e2e.core.sources import argocd
from helm_e2e.reconcile.controller import Controller
from helm_e2e.runtime.scheduler import Scheduler


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
