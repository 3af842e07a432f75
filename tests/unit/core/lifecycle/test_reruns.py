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
from helm_e2e.core.model.schema import (
    RequestTrigger,
    Run,
    RunPhase,
    RunRequest,
    RunStatus,
)

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
