"""reconcile/application_intake.py through the controller: a new healthy sync gets one run; one never healthy
ends Error; old syncs and replaced Applications get none."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from argocd_apps import SHA, application, controller
from fake_kube import NOW, Clock, FakeKube

from helm_e2e.core.model import names
from helm_e2e.core.model.release import ManagedBy, Trigger
from helm_e2e.core.model.run_codec import run_from_body


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
