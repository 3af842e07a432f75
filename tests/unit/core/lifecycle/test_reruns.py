"""Re-runs of the deployed revision: the pure decision, and the controller through the fake Kube port."""

from __future__ import annotations

from typing import Any

import pytest
import runs
from controller_harness import NS, RUN, deploy, deployed_secret, make_controller, passing_hook
from fake_kube import Clock, FakeKube
from hypothesis import given
from hypothesis import strategies as st

from helm_e2e.core.lifecycle import reruns
from helm_e2e.core.lifecycle.decide import decide_prune, decide_superseded
from helm_e2e.core.model.dns_names import build_attempt_run_name, build_run_name
from helm_e2e.core.model.release import ManagedBy, Trigger
from helm_e2e.core.model.run import ReleaseRef, RequestTrigger, Run, RunRequest, RunSpec
from helm_e2e.core.model.run_status import RunPhase, RunStatus
from helm_e2e.core.results.regressions import choose_previous
from helm_e2e.core.sources import argocd

RERUN = RunRequest(trigger=RequestTrigger.RERUN, token="tok-1")
SCHEDULE = RunRequest(trigger=RequestTrigger.SCHEDULE, token="api@2026-11-27T10:00:00+00:00", suite="api")


def a_run(revision: int, attempt: int = 1, *, phase: RunPhase = RunPhase.SUCCEEDED, token: str = "") -> Run:
    request = RunRequest(trigger=RequestTrigger.RERUN, token=token) if token else None
    return runs.make_run(
        release={"name": "shop", "revision": revision},
        namespace="ns",
        name=build_attempt_run_name("shop", revision, attempt),
        uid="",
        attempt=attempt if attempt > 1 else None,
        request=request,
        status=RunStatus(phase=phase),
    )


def test_attempt_names_never_collide_with_another_releases_revision() -> None:
    assert build_attempt_run_name("shop", 12, 1) == "shop-12"
    assert build_attempt_run_name("shop", 12, 2) == "shop-12-r2"
    assert build_attempt_run_name("shop", 12, 2) != build_run_name("shop-12", 2)


@given(
    a=st.tuples(
        st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True),
        st.integers(1, 999),
        st.integers(1, 50),
    ),
    b=st.tuples(
        st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True),
        st.integers(1, 999),
        st.integers(1, 50),
    ),
)
def test_different_release_revision_attempts_get_different_run_names(a: Any, b: Any) -> None:
    if a != b:
        assert build_attempt_run_name(*a) != build_attempt_run_name(*b)


@pytest.mark.parametrize(
    ("runs", "request_", "expected"),
    [
        ([a_run(12)], RERUN, reruns.NewAttempt("shop-12-r2", 2)),
        ([a_run(11), a_run(12), a_run(12, 2)], RERUN, reruns.NewAttempt("shop-12-r3", 3)),
        ([], RERUN, reruns.NewAttempt("shop-12", 1)),  # the revision never had a run (deployed long ago)
        ([a_run(12), a_run(12, 2, token="tok-1")], RERUN, None),  # the same token: done already
        ([a_run(12, phase=RunPhase.RUNNING)], RERUN, reruns.NewAttempt("shop-12-r2", 2)),  # supersedes it
        ([a_run(12, phase=RunPhase.RUNNING)], SCHEDULE, None),  # a slot never stacks runs
        ([a_run(12)], SCHEDULE, reruns.NewAttempt("shop-12-r2", 2)),
    ],
)
def test_a_request_makes_the_next_attempt_once(runs: list[Run], request_: RunRequest, expected: Any) -> None:
    assert reruns.decide_new_attempt(runs, release="shop", revision=12, request=request_) == expected


def test_a_newer_attempt_supersedes_the_active_older_attempt_of_the_same_revision() -> None:
    runs = [a_run(12, phase=RunPhase.RUNNING), a_run(12, 2, phase=RunPhase.RUNNING)]
    assert [r.name for r in decide_superseded(runs, revision=12, attempt=2)] == ["shop-12"]
    assert decide_superseded(runs, revision=12) == []


def test_history_counts_attempts_like_runs_and_keeps_the_newest() -> None:
    runs = [a_run(11), a_run(12), a_run(12, 2), a_run(12, 10)]
    assert decide_prune(runs, limit=2, keep="shop-12-r10") == ["shop-12", "shop-11"]


def test_the_deployed_revision_comes_from_helms_labels() -> None:
    labels = [
        {"status": "superseded", "version": "3"},
        {"status": "deployed", "version": "4"},
        {"status": "failed", "version": "5"},
    ]
    assert reruns.deployed_revision(labels) == 4
    assert reruns.deployed_revision([]) is None


# --- Argo CD applications: the latest sync, again ----------------------------------------------------------

APP_UID = "app-uid"


def an_app(*, history: int = 1, namespace: str = "shop", uid: str = APP_UID) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "argocd", "uid": uid},
        "spec": {"destination": {"server": "https://kubernetes.default.svc", "namespace": namespace}},
        "status": {"history": [{"id": i, "revision": "abc"} for i in range(1, history + 1)]},
    }


def an_app_run(
    history: int,
    attempt: int = 1,
    *,
    phase: RunPhase = RunPhase.SUCCEEDED,
    uid: str = APP_UID,
    namespace: str = "shop",
    token: str = "",
) -> Run:
    ref = ReleaseRef(
        name="web",
        namespace=namespace,
        revision=history,
        chart="web",
        chart_version="main",
        trigger=Trigger.SYNC,
        secret_uid=uid,
        managed_by=ManagedBy(kind="Application", name="web", namespace="argocd"),
    )
    request = RunRequest(trigger=RequestTrigger.RERUN, token=token) if token else None
    spec = RunSpec(release=ref, attempt=attempt if attempt > 1 else None, request=request)
    name = argocd.build_attempt_run_name("web", history, attempt)
    return Run(name=name, namespace=namespace, spec=spec, status=RunStatus(phase=phase))


def decide_app(
    app: dict[str, Any], runs: list[Run], request: RunRequest = RERUN, annotated: str = "web-a1"
) -> reruns.ApplicationAttempt:
    return reruns.decide_application_attempt(
        app, namespace="shop", runs=runs, request=request, annotated=annotated
    )


def test_an_application_rerun_is_the_next_attempt_of_its_latest_sync_under_argo_naming() -> None:
    decision = decide_app(an_app(history=2), [an_app_run(1), an_app_run(2)], annotated="web-a1")
    assert decision.attempt == reruns.NewAttempt("web-a2-r2", 2)  # the deployed sync, whichever run asked
    assert decision.sync is not None
    assert decision.sync.history_id == 2
    again = decide_app(an_app(history=2), [an_app_run(2), an_app_run(2, 2)], annotated="web-a2-r2")
    assert again.attempt == reruns.NewAttempt("web-a2-r3", 3)
    scheduled = decide_app(an_app(), [an_app_run(1)], SCHEDULE, annotated="")
    assert scheduled.attempt == reruns.NewAttempt("web-a1-r2", 2)


@pytest.mark.parametrize(
    ("app", "runs", "annotated", "why"),
    [
        (an_app(namespace="other"), [an_app_run(1)], "web-a1", "deploys into 'other'"),
        (an_app(uid="new-uid"), [an_app_run(1)], "web-a1", "not the operator's run"),  # app replaced
        (an_app(), [an_app_run(1, uid="")], "web-a1", "not the operator's run"),  # no uid: not ours
        (an_app(), [an_app_run(1), an_app_run(1, 2, token="tok-1")], "web-a1", "done already"),
        (an_app(history=2), [an_app_run(1)], "web-a1", "sync 2 is not tested yet"),
        ({"metadata": {"name": "web"}}, [an_app_run(1)], "web-a1", "no successful in-cluster sync"),
    ],
    ids=["elsewhere", "replaced", "no-uid", "done", "untested", "no-sync"],
)
def test_an_application_rerun_is_refused_outside_its_namespace_runs_and_latest_tested_sync(
    app: dict[str, Any], runs: list[Run], annotated: str, why: str
) -> None:
    decision = decide_app(app, runs, annotated=annotated)
    assert decision.attempt is None
    assert why in decision.why


def test_a_run_in_another_namespace_never_counts_as_the_applications_own() -> None:
    forged = an_app_run(1, namespace="tenant")  # names this application, lives elsewhere
    assert reruns.application_runs([forged], argocd.latest_sync(an_app())) == []  # type: ignore[arg-type]
    decision = decide_app(an_app(), [forged], annotated=forged.name)
    assert decision.attempt is None


def test_a_scheduled_slot_never_stacks_on_an_active_run_of_the_sync() -> None:
    decision = decide_app(an_app(), [an_app_run(1, phase=RunPhase.RUNNING)], SCHEDULE, annotated="")
    assert (decision.attempt, decision.why) == (None, "its newest run is still going")


def test_a_schedule_reverifies_each_application_its_namespace_has_runs_of_once() -> None:
    helm = a_run(3)
    found = reruns.scheduled_applications([helm, an_app_run(1), an_app_run(2), an_app_run(2, 2)])
    assert found == [ManagedBy(kind="Application", name="web", namespace="argocd")]


def test_an_application_reruns_regressions_compare_with_the_previous_sync_as_a_helm_reruns_do() -> None:
    rerun = an_app_run(2, 2)
    earlier = [an_app_run(1), an_app_run(1, 2, phase=RunPhase.FAILED), an_app_run(2)]
    assert choose_previous(rerun, [*earlier, rerun]) == earlier[1]  # the newest attempt of history id 1
    assert choose_previous(a_run(2, 2), [a_run(1), a_run(1, 2), a_run(2)]).name == "shop-1-r2"  # type: ignore[union-attr]


# --- the controller through the fake -----------------------------------------------------------------------


async def test_a_rerun_annotation_makes_exactly_one_new_attempt_even_after_a_restart(
    kube: FakeKube, clock: Clock
) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    await controller.on_run_annotations(NS, "web", {"helm-e2e.dev/rerun": "abc"})
    await controller.on_run_annotations(NS, "web", {"helm-e2e.dev/rerun": "abc"})  # the next event
    restarted = make_controller(kube, clock)  # kill -9: the annotation is still there
    await restarted.on_run_annotations(NS, "web", {"helm-e2e.dev/rerun": "abc"})
    assert sorted(name for _, name in kube.runs) == [RUN, "web-1-r2"]
    spec = kube.runs[(NS, "web-1-r2")]["spec"]
    assert (spec["attempt"], spec["request"]) == (2, {"trigger": "rerun", "token": "abc"})
    await restarted.on_run_annotations(NS, "web", {"helm-e2e.dev/rerun": "def"})  # a new request
    assert (NS, "web-1-r3") in kube.runs
    await restarted.reconcile((NS, "web-1-r3"))
    assert "web-1-r3-smoke" in kube.created_pods


async def test_without_a_token_nothing_happens(kube: FakeKube, clock: Clock) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    await controller.on_run_annotations(NS, "web", {"other": "x"})
    assert list(kube.runs) == [(NS, RUN)]
