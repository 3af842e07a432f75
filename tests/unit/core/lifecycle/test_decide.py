"""The pure lifecycle decision: a table over observations, and properties over any mix of pod states."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policies import MAILING as POLICY
from runs import make_run

from helm_e2e.core.artifacts.rules import CollectorSpec
from helm_e2e.core.lifecycle import decide as lifecycle
from helm_e2e.core.lifecycle.decide import (
    CreateTest,
    DeletePods,
    Deliver,
    FetchEvents,
    FetchLogs,
    FetchPlan,
    FetchReleaseHistory,
    FetchRollout,
    Observed,
    PatchStatus,
    Policy,
    PostEvent,
    PruneHistory,
    Replanned,
    Requeue,
    Rollout,
    decide_outbox,
    decide_prune,
    decide_run,
)
from helm_e2e.core.model import names
from helm_e2e.core.model.release import OnFailure
from helm_e2e.core.model.run import ReadinessMode, ReadinessSpec, Run
from helm_e2e.core.model.run_status import Condition, Regression, RunPhase, RunStatus, TestPhase, TestResult
from helm_e2e.core.outcomes import outbox
from helm_e2e.core.outcomes import rollback as rollbacks
from helm_e2e.core.plan.build import PlannedTest
from helm_e2e.core.plan.readiness import ObjectKey
from helm_e2e.core.results.run_tests import TestObjects, get_condition

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def pod(test: str, phase: str, exit_code: int | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "startTime": T0.isoformat()}
    if exit_code is not None:
        term = {"exitCode": exit_code, "startedAt": T0.isoformat(), "finishedAt": T0.isoformat()}
        status["containerStatuses"] = [{"name": "t", "state": {"terminated": term}}]
    return {"metadata": {"name": f"web-2-{test}", "labels": {names.TEST_LABEL: test}}, "status": status}


def planned(name: str, violation: str = "") -> PlannedTest:
    spec = {"containers": [{"name": "t", "image": "busybox"}]}
    return PlannedTest(
        name=name, source="hook", timeout_seconds=600, pod_spec=spec, policy_violation=violation
    )


NO_HISTORY = rollbacks.History(deployed=None, revisions=set())  # the release has no other run


def observe(now: datetime, pods: dict[str, Any], **kw: Any) -> Observed:
    """An observation of plain test pods; a `plan` dict is the re-plan of the missing tests; with `logs`
    given, the pod Events count as fetched too (none) unless `events` is. The release's history is fetched
    (empty) unless `history` says otherwise."""
    if "logs" in kw:
        kw.setdefault("events", {})
    if isinstance(kw.get("plan"), dict):
        kw["plan"] = Replanned(tests=kw["plan"])
    kw.setdefault("history", NO_HISTORY)
    return Observed(now=now, objects=TestObjects(pods=pods), **kw)


def kinds(actions: list[lifecycle.Action]) -> list[str]:
    return [type(a).__name__ for a in actions]


def test_an_active_run_asks_for_log_tails_and_a_plan_before_deciding() -> None:
    run = make_run("a", "b")
    actions = decide_run(run, observe(T0, {"a": pod("a", "Failed", 1)}), POLICY)
    assert actions == [FetchLogs(("a",)), FetchEvents(("a",)), FetchPlan(("b",))]


def test_actions_come_in_order_create_patch_events_then_requeue() -> None:
    run = make_run("a", "b")
    observed = observe(T0, {"a": pod("a", "Failed")}, logs={"a": ""}, plan={"b": planned("b")})
    actions = decide_run(run, observed, POLICY)
    assert kinds(actions) == ["CreateTest", "PatchStatus", "PostEvent", "Requeue"]  # a's TestFailed
    create = actions[0]
    assert isinstance(create, CreateTest)
    assert create.body["metadata"]["name"] == "web-2-b"
    assert actions[-1] == Requeue(5)


def test_a_timed_out_pod_is_deleted_only_after_the_status_that_explains_it() -> None:
    running = RunStatus(phase=RunPhase.RUNNING, started_at=T0)
    run = make_run("a", status=running)
    observed = observe(T0 + timedelta(seconds=601), {"a": pod("a", "Running")}, logs={}, plan={})
    actions = decide_run(run, observed, POLICY)
    assert kinds(actions).index("PatchStatus") < kinds(actions).index("DeletePods")
    assert actions[-2:] == [PruneHistory("web", runs=()), Requeue(0.0)]  # the runs this pass listed


def test_a_final_write_with_nothing_left_to_report_looks_again_at_the_pods_ttl_not_at_once() -> None:
    running = RunStatus(phase=RunPhase.RUNNING, started_at=T0)
    run = make_run("a", status=running)
    done = observe(T0 + timedelta(seconds=3), {"a": pod("a", "Succeeded", 0)}, logs={"a": ""}, plan={})
    silent = dataclasses.replace(POLICY, mail_to=(), smtp_enabled=False)
    actions = decide_run(run, done, silent)
    written = next(a for a in actions if isinstance(a, PatchStatus))
    assert outbox.is_fully_reported(written.status)  # the e-mail's skip is in the final write
    assert actions[-1] == Requeue(60.0)  # the pass after it would only have waited for the TTL
    mailing = decide_run(run, done, POLICY)
    assert not any(isinstance(a, Deliver) for a in mailing)
    assert mailing[-1] == Requeue(0.0)  # the e-mail goes out on a fresh read
    no_ttl = dataclasses.replace(silent, pod_ttl_seconds=0)
    assert decide_run(run, done, no_ttl)[-1] == Requeue(0.0)  # the pods go on a fresh read


def test_the_history_limit_to_prune_to_is_the_policys() -> None:
    running = RunStatus(phase=RunPhase.RUNNING, started_at=T0)
    observed = observe(T0 + timedelta(seconds=601), {"a": pod("a", "Running")}, logs={}, plan={})
    policy = Policy(**{**POLICY.__dict__, "history_limit": 3})
    actions = decide_run(make_run("a", status=running), observed, policy)
    assert PruneHistory("web", runs=(), limit=3) in actions


def test_each_test_is_created_with_the_policys_collector_and_none_when_artifacts_are_off() -> None:
    collector = CollectorSpec(image="i", directory="/artifacts", upload_url="u", token="", max_bytes=1)
    observed = observe(T0, {}, logs={}, plan={"a": planned("a")})
    policy = Policy(**{**POLICY.__dict__, "collector": collector})
    (create,) = [a for a in decide_run(make_run("a"), observed, policy) if isinstance(a, CreateTest)]
    assert create.collector == collector
    assert create.body["spec"].get("initContainers") is None  # the sidecar goes in with its token, later
    (plain,) = [a for a in decide_run(make_run("a"), observed, POLICY) if isinstance(a, CreateTest)]
    assert plain.collector is None


@pytest.mark.parametrize(
    ("missing_reason", "expected_reason"),
    [
        (planned("a", violation="spec.hostNetwork: forbidden"), names.REASON_POLICY_VIOLATION),
        ("the Helm release secret is gone", names.REASON_NOT_PLANNED),
    ],
)
def test_a_test_that_cannot_get_a_pod_ends_error_with_why(missing_reason: Any, expected_reason: str) -> None:
    actions = decide_run(make_run("a"), observe(T0, {}, logs={}, plan={"a": missing_reason}), POLICY)
    assert "CreateTest" not in kinds(actions)
    patch = next(a for a in actions if isinstance(a, PatchStatus))
    assert (patch.status.tests[0].phase, patch.status.tests[0].reason) == (TestPhase.ERROR, expected_reason)


def test_a_refused_test_ends_error_with_the_apis_reason() -> None:
    observed = observe(T0, {}, logs={}, plan={}, refused={"a": ("Forbidden", "quota exceeded")})
    patch = next(a for a in decide_run(make_run("a"), observed, POLICY) if isinstance(a, PatchStatus))
    assert (patch.status.tests[0].reason, patch.status.tests[0].message) == ("Forbidden", "quota exceeded")
    assert patch.status.phase == RunPhase.ERROR


def test_a_final_run_deletes_its_unfinished_pods_first() -> None:
    run = make_run("a", status=RunStatus(phase=RunPhase.SUPERSEDED, completed_at=T0))
    actions = decide_run(run, observe(T0, {"a": pod("a", "Running")}), POLICY)
    assert actions[0] == DeletePods(("web-2-a",))


def email(reason: str) -> Condition:
    return Condition(type=names.COND_EMAIL_SENT, status="Unknown", reason=reason)


@pytest.mark.parametrize(
    ("phase", "condition", "smtp", "due_in", "expected"),
    [
        (RunPhase.FAILED, None, True, None, ["PatchStatus"]),  # record the intent first
        (RunPhase.FAILED, names.MAIL_SENDING, True, None, ["Deliver"]),
        (RunPhase.FAILED, names.MAIL_RETRYING, True, 30, ["Requeue"]),  # backing off
        (RunPhase.FAILED, names.MAIL_RETRYING, True, -1, ["PatchStatus"]),  # due again: intent again
        (RunPhase.FAILED, names.MAIL_SENT, True, None, []),
        (RunPhase.FAILED, names.MAIL_FAILED, True, None, []),
        (RunPhase.FAILED, None, False, None, ["PatchStatus"]),  # Disabled, recorded once
        (RunPhase.NO_TESTS, None, True, None, ["PatchStatus"]),  # NoTests: nothing to report
    ],
)
def test_the_outbox_decides_one_step_at_a_time(
    phase: RunPhase, condition: str | None, smtp: bool, due_in: int | None, expected: list[str]
) -> None:
    status = RunStatus(
        phase=phase,
        completed_at=T0,
        conditions=[email(condition)] if condition else [],
        email_next_attempt_at=T0 + timedelta(seconds=due_in) if due_in is not None else None,
    )
    policy = Policy(**{**POLICY.__dict__, "smtp_enabled": smtp})
    actions = decide_outbox(make_run("a", status=status), T0, policy)
    assert kinds(actions) == expected
    if expected == ["Deliver"]:
        assert actions == [Deliver(names.MAIL_CHANNEL, ("ops@example.com",))]


def test_a_failed_send_backs_off_and_a_permanent_one_stops() -> None:
    """The e-mail's outcome on a run from before the one outbox (its intent only in EmailSent)."""
    run = make_run("a", status=RunStatus(phase=RunPhase.FAILED, conditions=[email(names.MAIL_SENDING)]))
    status, again = outbox.record_outcome(
        run.status, target=names.MAIL_CHANNEL, type="email", now=T0, error="421 busy", retry_base_seconds=2
    )
    mail = outbox.channels(status)[names.MAIL_CHANNEL]
    assert (mail.attempts, again) == (1, 4.0)
    assert mail.next_attempt_at == T0 + timedelta(seconds=4)
    assert get_condition(status, names.COND_EMAIL_SENT).reason == names.MAIL_RETRYING  # type: ignore[union-attr]
    status, again = outbox.record_outcome(
        run.status,
        target=names.MAIL_CHANNEL,
        type="email",
        now=T0,
        error="550",
        permanent=True,
        retry_base_seconds=2,
    )
    assert again is None
    assert status.conditions[-1].reason == names.MAIL_FAILED


def test_pruning_keeps_the_newest_active_and_current_runs() -> None:
    done = RunStatus(phase=RunPhase.SUCCEEDED)
    runs = [make_run("a", release={"revision": r}, status=done) for r in range(1, 6)]
    runs.append(make_run("a", release={"revision": 0}, name="web-0"))  # active: never pruned
    assert decide_prune(runs, limit=2, keep="web-5") == ["web-3", "web-2", "web-1"]
    assert decide_prune(runs, limit=2, keep="web-1") == ["web-3", "web-2"]


POD_STATES = st.sampled_from([None, ("Pending", None), ("Running", None), ("Succeeded", 0), ("Failed", 1)])


@settings(max_examples=200, deadline=None)
@given(states=st.lists(POD_STATES, min_size=1, max_size=5), elapsed=st.integers(0, 2000))
def test_any_observation_gives_ordered_actions_and_deciding_again_changes_nothing(
    states: list[Any], elapsed: int
) -> None:
    tests = [f"t{i}" for i in range(len(states))]
    run = make_run(*tests, status=RunStatus(phase=RunPhase.RUNNING, started_at=T0))
    pods = {t: pod(t, *s) for t, s in zip(tests, states, strict=True) if s is not None}
    now = T0 + timedelta(seconds=elapsed)
    observed = observe(now, pods, logs={}, plan={t: planned(t) for t in tests})
    actions = decide_run(run, observed, POLICY)
    order = [k for k in kinds(actions) if k != "PostEvent"]
    assert order == sorted(
        order, key=["CreateTest", "PatchStatus", "DeletePods", "PruneHistory", "Requeue"].index
    )
    created = {a.test for a in actions if isinstance(a, CreateTest)}
    assert created.isdisjoint(pods)  # never a second pod for a test that has one
    patch = next((a for a in actions if isinstance(a, PatchStatus)), None)
    if patch is not None:
        after = run.model_copy(update={"status": patch.status})
        again = decide_run(after, observe(now, pods, logs={}, plan=observed.plan), POLICY)
        if patch.status.phase.is_final:  # only the outbox's own step follows, never the results again
            assert not any(isinstance(a, PostEvent) for a in again)
        else:
            assert not any(isinstance(a, PatchStatus | PostEvent) for a in again)


def test_a_final_run_with_no_tests_is_recorded_at_once() -> None:
    actions = decide_run(make_run(), observe(T0, {}, logs={}, plan={}), POLICY)
    patch = next(a for a in actions if isinstance(a, PatchStatus))
    assert patch.status.phase == RunPhase.NO_TESTS


def gated_run(*tests: str, timeout: int = 60) -> Run:
    readiness = ReadinessSpec(mode=ReadinessMode.ROLLOUT, timeout_seconds=timeout)
    return make_run(*tests, created_at=T0, readiness=readiness)


def gate_observation(rollout: Rollout | None, *, now: datetime = T0) -> Observed:
    plan = Replanned(tests={"a": planned("a")}, rollout=[ObjectKey("Deployment", "apps/v1", "shop", "web")])
    return Observed(now=now, objects=TestObjects(), logs={}, plan=plan, rollout=rollout, history=NO_HISTORY)


def test_a_gated_run_asks_for_its_plan_and_the_rollout_first() -> None:
    actions = decide_run(gated_run("a"), Observed(now=T0, objects=TestObjects()), POLICY)
    assert actions == [FetchPlan(("a",)), FetchRollout()]


def test_while_the_rollout_is_pending_no_test_starts_and_the_run_says_what_it_waits_for() -> None:
    pending = Rollout(ready=False, pending="deployment/web 1/3 updated")
    actions = decide_run(gated_run("a"), gate_observation(pending), POLICY)
    assert kinds(actions) == ["PatchStatus", "Requeue"]
    status = actions[0].status if isinstance(actions[0], PatchStatus) else None
    assert status is not None
    assert status.phase == RunPhase.PENDING
    assert status.started_at is None
    ready = {c.type: c for c in status.conditions}[names.COND_RELEASE_READY]
    assert (ready.status, ready.reason, ready.message) == (
        "False",
        names.REASON_WAITING_FOR_ROLLOUT,
        "deployment/web 1/3 updated",
    )
    again = decide_run(
        gated_run("a").model_copy(update={"status": status}), gate_observation(pending), POLICY
    )
    assert kinds(again) == ["Requeue"]  # nothing new to write while it still waits


def test_a_finished_rollout_opens_the_gate_and_the_tests_start_in_the_same_pass() -> None:
    actions = decide_run(gated_run("a"), gate_observation(Rollout(ready=True)), POLICY)
    assert kinds(actions)[0] == "CreateTest"
    assert not [a for a in actions if isinstance(a, PostEvent)]  # the condition says it: no Event
    # the write is held for the test's first change; the pods then say the gate opened (test_start_write)
    assert not [a for a in actions if isinstance(a, PatchStatus)]


@pytest.mark.parametrize(
    ("rollout", "elapsed", "says"),
    [
        (Rollout(ready=False, pending="deployment/web 1/3 updated"), 61, "deployment/web 1/3 updated"),
        (Rollout(ready=False, failed="job/migrate failed"), 1, "job/migrate failed"),
    ],
)
def test_a_rollout_that_fails_or_times_out_ends_the_run_error_release_not_ready(
    rollout: Rollout, elapsed: int, says: str
) -> None:
    observed = gate_observation(rollout, now=T0 + timedelta(seconds=elapsed))
    actions = decide_run(gated_run("a"), observed, POLICY)
    assert "CreateTest" not in kinds(actions)
    patch = next(a for a in actions if isinstance(a, PatchStatus))
    assert patch.status.phase == RunPhase.ERROR
    assert (patch.status.tests[0].reason, says in patch.status.tests[0].message) == (
        names.REASON_RELEASE_NOT_READY,
        True,
    )


# --- the regression, in the final status patch ---
def finished_run(revision: int, phase: RunPhase, test_phase: TestPhase) -> Run:
    status = RunStatus(phase=phase, completed_at=T0, tests=[TestResult(name="a", phase=test_phase)])
    return make_run("a", release={"revision": revision}, status=status)


def test_the_pass_that_ends_a_run_asks_for_the_releases_runs_first_and_only_then() -> None:
    running = make_run("a", status=RunStatus(phase=RunPhase.RUNNING, started_at=T0))
    still = decide_run(
        running, observe(T0, {"a": pod("a", "Running")}, logs={}, plan={}, history=None), POLICY
    )
    assert not any(isinstance(a, FetchReleaseHistory) for a in still)  # not while the run goes on
    ending = observe(T0, {"a": pod("a", "Failed", 1)}, logs={}, plan={}, history=None)
    assert decide_run(running, ending, POLICY) == [FetchReleaseHistory(revisions=False)]  # runs alone


def test_the_final_status_patch_carries_the_regression_against_the_previous_revision() -> None:
    running = make_run("a", status=RunStatus(phase=RunPhase.RUNNING, started_at=T0))
    history = rollbacks.History(
        deployed=2, revisions={1, 2}, runs=[finished_run(1, RunPhase.SUCCEEDED, TestPhase.SUCCEEDED)]
    )
    observed = observe(T0, {"a": pod("a", "Failed", 1)}, logs={}, plan={}, history=history)
    patch = next(a for a in decide_run(running, observed, POLICY) if isinstance(a, PatchStatus))
    assert patch.status.phase == RunPhase.FAILED
    assert patch.status.regression == Regression(compared_with="web-1", revision=1, newly_failing=["a"])


def test_a_run_with_nothing_to_compare_with_or_no_verdict_never_waits_for_history() -> None:
    actions = decide_run(make_run(), observe(T0, {}, logs={}, plan={}, history=None), POLICY)
    assert kinds(actions)[0] == "PatchStatus"  # NoTests: no verdict, no comparison
    running = make_run("a", status=RunStatus(phase=RunPhase.RUNNING, started_at=T0))
    observed = observe(T0, {"a": pod("a", "Succeeded", 0)}, logs={}, plan={})  # an empty history
    patch = next(a for a in decide_run(running, observed, POLICY) if isinstance(a, PatchStatus))
    assert (patch.status.phase, patch.status.regression) == (RunPhase.SUCCEEDED, None)


def test_a_releases_first_run_lists_no_runs_it_has_nothing_older_to_compare_or_prune() -> None:
    running = make_run("a", release={"revision": 1}, status=RunStatus(phase=RunPhase.RUNNING, started_at=T0))
    ending = observe(T0, {"a": pod("a", "Failed", 1)}, logs={}, plan={}, history=None)
    actions = decide_run(running, ending, POLICY)
    assert not any(isinstance(a, FetchReleaseHistory) for a in actions)
    patch = next(a for a in actions if isinstance(a, PatchStatus))
    assert (patch.status.phase, patch.status.regression) == (RunPhase.FAILED, None)
    assert next(a for a in actions if isinstance(a, PruneHistory)).runs == ()  # prunes nothing, lists nothing
    rerun = running.model_copy(update={"spec": running.spec.model_copy(update={"attempt": 2})})
    assert decide_run(rerun, ending, POLICY) == [FetchReleaseHistory(revisions=False)]  # attempt 1 is older


def _pending(**update: Any) -> RunStatus:
    test = TestResult(name="a", pod="web-2-a", phase=TestPhase.PENDING).model_copy(update=update)
    return RunStatus(phase=RunPhase.RUNNING, started_at=T0, tests=[test])


def test_a_pending_test_whose_pod_only_gained_its_start_time_is_not_worth_a_write() -> None:
    assert not lifecycle.worth_writing(_pending(), _pending(started_at=T0))
    assert not lifecycle.worth_writing(_pending(), _pending())
    assert lifecycle.worth_writing(_pending(), _pending(started_at=T0, phase=TestPhase.RUNNING))  # PodLost
    assert lifecycle.worth_writing(_pending(), _pending(started_at=T0, message="waiting: ImagePull"))
    assert lifecycle.worth_writing(RunStatus(), _pending())  # the first write: the run started


def test_the_pass_that_sees_a_pending_pod_start_writes_nothing() -> None:
    run = make_run("a")
    created = decide_run(run, observe(T0, {"a": pod("a", "Pending")}, logs={}, plan={}), POLICY)
    first = next(a for a in created if isinstance(a, PatchStatus)).status  # the run started, a Pending
    run = run.model_copy(update={"status": first})
    started = pod("a", "Pending")
    started["status"]["startTime"] = "2026-11-25T10:05:11Z"
    actions = decide_run(run, observe(T0, {"a": started}, logs={}, plan={}), POLICY)
    assert kinds(actions) == ["Requeue"]
    running = decide_run(run, observe(T0, {"a": pod("a", "Running")}, logs={}, plan={}), POLICY)
    assert kinds(running) == ["PatchStatus", "Requeue"]


@pytest.mark.parametrize(
    ("smtp", "reason", "outcome"),
    [(True, names.MAIL_SENDING, ""), (False, names.MAIL_DISABLED, names.MAIL_DISABLED)],
)
def test_the_write_that_ends_a_run_carries_the_reports_first_outbox_step(
    smtp: bool, reason: str, outcome: str
) -> None:
    """The intent (Sending) or why no mail goes (Disabled) rides in the final write: one write less per run;
    the send itself comes on the next, fresh read."""
    policy = dataclasses.replace(POLICY, smtp_enabled=smtp)
    running = make_run("a", status=RunStatus(phase=RunPhase.RUNNING, started_at=T0))
    observed = observe(T0, {"a": pod("a", "Succeeded", 0)}, logs={}, plan={})
    actions = decide_run(running, observed, policy)
    patches = [a for a in actions if isinstance(a, PatchStatus)]
    assert len(patches) == 1
    assert patches[0].status.phase == RunPhase.SUCCEEDED
    email = get_condition(patches[0].status, names.COND_EMAIL_SENT)
    assert email is not None
    assert email.reason == reason
    assert patches[0].mail_outcome == outcome
    assert not any(isinstance(a, Deliver) for a in actions)


def test_a_failed_run_that_asks_for_a_rollback_ends_without_the_outbox_the_report_waits_for_it() -> None:
    running = make_run("a", status=RunStatus(phase=RunPhase.RUNNING, started_at=T0))
    running.spec.on_failure = OnFailure.ROLLBACK
    observed = observe(T0, {"a": pod("a", "Failed", 1)}, logs={}, plan={})
    patch = next(a for a in decide_run(running, observed, POLICY) if isinstance(a, PatchStatus))
    assert patch.status.phase == RunPhase.FAILED
    assert get_condition(patch.status, names.COND_EMAIL_SENT) is None
