"""Rollback on failure, the pure part: the opt-in, the target, the guards, the intent and its recovery."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import runs
from hypothesis import given, settings
from hypothesis import strategies as st
from policies import MAILING as POLICY

from helm_e2e.core.lifecycle import decide as lifecycle
from helm_e2e.core.lifecycle.decide import (
    Deliver,
    FetchReleaseHistory,
    Observed,
    PatchStatus,
    PostEvent,
    Requeue,
    Rollback,
)
from helm_e2e.core.model import names
from helm_e2e.core.model.release import OnFailure, Release, Trigger
from helm_e2e.core.model.run import RequestTrigger, Run, RunRequest
from helm_e2e.core.model.run_codec import build_run_body, run_from_body
from helm_e2e.core.model.run_status import RollbackRecord, RunPhase, RunStatus
from helm_e2e.core.model.suite import SuiteSpec
from helm_e2e.core.outcomes import rollback as rb
from helm_e2e.core.results.run_tests import TestObjects, get_condition

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def run(
    revision: int,
    phase: RunPhase = RunPhase.FAILED,
    *,
    trigger: Trigger = Trigger.UPGRADE,
    on_failure: OnFailure | None = OnFailure.ROLLBACK,
    attempt: int | None = None,
    request: RunRequest | None = None,
    status: RunStatus | None = None,
) -> Run:
    return runs.make_run(
        release={"revision": revision, "trigger": trigger},
        uid=f"u{revision}",
        on_failure=on_failure,
        attempt=attempt,
        request=request,
        status=status or RunStatus(phase=phase, completed_at=NOW),
    )


def history(
    *runs: Run, deployed: int | None, revisions: set[int] | None = None, **rolled_back_to: int
) -> rb.History:
    """`r4=2`: revision 4 is a rollback to 2 (Release.rollback_revision, as decoded from its secret)."""
    revs = revisions if revisions is not None else {r.spec.release.revision for r in runs}
    targets = {int(k.removeprefix("r")): v for k, v in rolled_back_to.items()}
    return rb.History(deployed=deployed, revisions=revs, runs=runs, rolled_back_to=targets)


# --- the opt-in ---------------------------------------------------------------------------------------------
def release(annotations: dict[str, str] | None = None) -> Release:
    return Release(
        name="web",
        namespace="shop",
        revision=3,
        status="deployed",
        chart_name="c",
        chart_version="1",
        trigger=Trigger.UPGRADE,
        chart_annotations=annotations or {},
    )


@pytest.mark.parametrize(
    ("enabled", "annotation", "suite", "expected"),
    [
        (False, None, None, OnFailure.NONE),
        (True, None, None, OnFailure.ROLLBACK),
        (False, "rollback", None, OnFailure.ROLLBACK),
        (False, " Rollback ", None, OnFailure.ROLLBACK),
        (False, "none", None, OnFailure.NONE),
        (False, None, OnFailure.ROLLBACK, OnFailure.ROLLBACK),
        (False, None, OnFailure.NONE, OnFailure.NONE),
    ],
)
def test_a_run_rolls_back_when_the_operator_a_used_suite_or_the_chart_opts_in(
    enabled: bool, annotation: str | None, suite: OnFailure | None, expected: OnFailure
) -> None:
    annotations = {names.ON_FAILURE_ANNOTATION: annotation} if annotation else {}
    suites = [SuiteSpec(on_failure=suite)] if suite else []
    assert rb.decide_on_failure(release(annotations), suites, enabled=enabled) == expected


# --- the target and the guards -----------------------------------------------------------------------------
PASS, FAIL, ERR = RunPhase.SUCCEEDED, RunPhase.FAILED, RunPhase.ERROR


@pytest.mark.parametrize(
    ("earlier", "deployed", "trigger", "target", "reason"),
    [
        ({1: PASS, 2: PASS}, 3, Trigger.UPGRADE, 2, names.REASON_ROLLING_BACK),
        ({1: PASS, 2: FAIL}, 3, Trigger.UPGRADE, 1, names.REASON_ROLLING_BACK),  # not blindly the previous
        ({1: PASS, 2: ERR}, 3, Trigger.UPGRADE, 1, names.REASON_ROLLING_BACK),
        ({1: PASS, 2: RunPhase.SUPERSEDED}, 3, Trigger.UPGRADE, 1, names.REASON_ROLLING_BACK),
        ({1: PASS, 2: RunPhase.NO_TESTS}, 3, Trigger.UPGRADE, 1, names.REASON_ROLLING_BACK),
        ({}, 3, Trigger.UPGRADE, None, names.REASON_NO_PASSING_REVISION),
        ({1: FAIL, 2: ERR}, 3, Trigger.UPGRADE, None, names.REASON_NO_PASSING_REVISION),
        ({1: PASS, 2: PASS}, 4, Trigger.UPGRADE, None, names.REASON_NEWER_REVISION),
        ({1: PASS, 2: PASS}, None, Trigger.UPGRADE, None, names.REASON_NEWER_REVISION),
        ({1: PASS, 2: PASS}, 3, Trigger.ROLLBACK, None, names.REASON_ROLLBACK_REVISION),
    ],
)
def test_the_target_is_the_newest_earlier_revision_whose_run_succeeded_within_the_guards(
    earlier: dict[int, RunPhase], deployed: int | None, trigger: Trigger, target: int | None, reason: str
) -> None:
    failing = run(3, trigger=trigger)
    runs = [run(r, phase) for r, phase in earlier.items()] + [failing]
    decision = rb.decide_rollback(failing, runs, deployed_revision=deployed, revisions={1, 2, 3})
    assert (decision.target, decision.reason) == (target, reason)


def test_a_revision_helm_no_longer_stores_is_never_a_target() -> None:
    failing = run(3)
    runs = [run(1, PASS), run(2, PASS), failing]
    decision = rb.decide_rollback(
        failing, runs, deployed_revision=3, revisions={1, 3}
    )  # --history-max pruned 2
    assert decision.target == 1


def test_the_newest_attempt_of_a_revision_is_its_verdict() -> None:
    failing = run(3)
    runs = [run(2, PASS), run(2, FAIL, attempt=2), run(1, PASS), failing]
    assert rb.decide_rollback(failing, runs, deployed_revision=3, revisions={1, 2, 3}).target == 1


@settings(max_examples=200, deadline=None)
@given(
    phases=st.dictionaries(st.integers(1, 12), st.sampled_from(list(RunPhase)), max_size=12),
    revision=st.integers(1, 13),
    deployed=st.one_of(st.none(), st.integers(1, 14)),
    stored=st.sets(st.integers(1, 13)),
)
def test_any_target_is_earlier_stored_and_passed_and_only_for_the_deployed_revision(
    phases: dict[int, RunPhase], revision: int, deployed: int | None, stored: set[int]
) -> None:
    failing = run(revision)
    runs = [run(r, p) for r, p in phases.items() if r != revision] + [failing]
    decision = rb.decide_rollback(failing, runs, deployed_revision=deployed, revisions=stored)
    if decision.target is None:
        assert decision.reason != names.REASON_ROLLING_BACK
        return
    assert deployed == revision
    assert decision.target < revision
    assert decision.target in stored
    assert phases[decision.target] == RunPhase.SUCCEEDED
    assert not any(
        p == RunPhase.SUCCEEDED and decision.target < r < revision and r in stored for r, p in phases.items()
    )


# --- the life of a rollback inside decide_run --------------------------------------------------------------
def decide(r: Run, h: rb.History | None) -> list[lifecycle.Action]:
    return lifecycle.decide_run(r, Observed(now=NOW, objects=TestObjects(), history=h), POLICY)


@pytest.mark.parametrize(
    "r",
    [
        run(3, RunPhase.SUCCEEDED),
        run(3, RunPhase.ERROR),
        run(3, RunPhase.CANCELLED),
        run(3, RunPhase.SUPERSEDED),
        run(3, RunPhase.NO_TESTS),
        run(3, on_failure=OnFailure.NONE),
        run(3, on_failure=None),  # a run planned before the feature existed
        run(3, attempt=2, request=RunRequest(trigger=RequestTrigger.RERUN, token="t")),
    ],
    ids=["succeeded", "error", "cancelled", "superseded", "no-tests", "not-opted", "old-run", "rerun"],
)
def test_only_a_failed_opted_in_revision_run_looks_at_rollbacks(r: Run) -> None:
    actions = decide(r, None)
    assert not any(isinstance(a, FetchReleaseHistory | Rollback) for a in actions)
    assert any(isinstance(a, PatchStatus) and get_condition(a.status, names.COND_EMAIL_SENT) for a in actions)


def test_a_failed_run_first_asks_for_the_history_and_the_report_waits() -> None:
    assert decide(run(3), None) == [FetchReleaseHistory(descriptions=False)]


def test_the_intent_is_written_before_helm_is_called_and_the_report_waits_for_the_outcome() -> None:
    failing = run(3)
    actions = decide(failing, history(run(1, PASS), run(2, PASS), failing, deployed=3))
    patch, call, requeue = actions
    assert isinstance(patch, PatchStatus)
    assert isinstance(call, Rollback)
    assert requeue == Requeue(0.0)
    cond = get_condition(patch.status, names.COND_ROLLED_BACK)
    assert cond is not None
    assert (cond.status, cond.reason) == ("Unknown", names.REASON_ROLLING_BACK)
    assert patch.status.rollback == RollbackRecord(target=2, attempts=1)
    assert call.target == 2
    assert call.status == patch.status
    assert not any(isinstance(a, Deliver) for a in actions)


def test_no_passing_revision_is_recorded_with_a_warning_and_then_the_report_goes() -> None:
    failing = run(1)
    actions = decide(failing, history(failing, deployed=1))
    patch, event, _ = actions
    assert isinstance(patch, PatchStatus)
    assert isinstance(event, PostEvent)
    assert patch.rollback_outcome == names.REASON_NO_PASSING_REVISION
    cond = get_condition(patch.status, names.COND_ROLLED_BACK)
    assert cond is not None
    assert (cond.status, cond.reason) == ("False", names.REASON_NO_PASSING_REVISION)
    assert (event.type, event.reason) == ("Warning", names.EVENT_ROLLED_BACK)
    settled = failing.model_copy(update={"status": patch.status})
    assert not any(isinstance(a, FetchReleaseHistory | Rollback) for a in decide(settled, None))


def rolling_back(attempts: int) -> Run:
    failing = run(3)
    status = rb.with_rollback(failing.status, NOW, "Unknown", names.REASON_ROLLING_BACK, "rolling back to 2")
    status.rollback = RollbackRecord(target=2, attempts=attempts)
    return failing.model_copy(update={"status": status})


def test_after_a_restart_the_revision_helm_wrote_is_recognised_and_helm_is_not_called_again() -> None:
    r = rolling_back(1)
    assert decide(r, None) == [FetchReleaseHistory(descriptions=True)]
    actions = decide(r, history(run(2, PASS), r, deployed=4, revisions={1, 2, 3, 4}, r4=2))
    assert not any(isinstance(a, Rollback) for a in actions)
    patch = actions[0]
    assert isinstance(patch, PatchStatus)
    cond = get_condition(patch.status, names.COND_ROLLED_BACK)
    assert cond is not None
    assert (cond.status, cond.reason) == ("True", names.REASON_ROLLED_BACK)
    assert patch.status.rollback == RollbackRecord(target=2, attempts=1, revision=4)


def test_a_rollback_revision_to_another_target_is_not_the_trace_of_this_one() -> None:
    assert rb.rollback_revision(2, 3, {4: 1, 5: 2, 6: 2}) == 5
    assert rb.rollback_revision(2, 3, {4: 1}) is None
    assert rb.rollback_revision(2, 5, {4: 2}) is None  # written before the failing revision: not ours


def test_the_revision_a_rollback_created_is_the_deployed_one_only_when_newer_than_the_failing_one() -> None:
    assert rb.created_revision(4, 3) == 4
    assert rb.created_revision(3, 3) is None  # helm wrote nothing newer (yet): no revision recorded
    assert rb.created_revision(2, 3) is None
    assert rb.created_revision(None, 3) is None


def test_after_a_restart_without_a_trace_helm_is_called_once_more_and_then_never() -> None:
    h = history(run(2, PASS), rolling_back(1), deployed=3, revisions={1, 2, 3})
    actions = decide(rolling_back(1), h)
    assert [type(a) for a in actions] == [PatchStatus, Rollback, Requeue]
    assert isinstance(actions[0], PatchStatus)
    assert actions[0].status.rollback == RollbackRecord(target=2, attempts=2)
    gave_up = decide(rolling_back(2), h)
    assert not any(isinstance(a, Rollback) for a in gave_up)
    assert isinstance(gave_up[0], PatchStatus)
    cond = get_condition(gave_up[0].status, names.COND_ROLLED_BACK)
    assert cond is not None
    assert (cond.status, cond.reason) == ("False", names.REASON_ROLLBACK_FAILED)


def test_a_newer_revision_deployed_during_an_unfinished_rollback_stops_it() -> None:
    h = history(run(2, PASS), rolling_back(1), deployed=4, revisions={2, 3, 4})
    actions = decide(rolling_back(1), h)
    assert not any(isinstance(a, Rollback) for a in actions)
    assert isinstance(actions[0], PatchStatus)
    cond = get_condition(actions[0].status, names.COND_ROLLED_BACK)
    assert cond is not None
    assert (cond.status, cond.reason) == ("False", names.REASON_NEWER_REVISION)


def test_a_helm_failure_is_recorded_with_its_first_line_only() -> None:
    record = RollbackRecord(target=2, attempts=1)
    stderr = 'Error: no ConfigMap with the name "x"\n---\napiVersion: v1\ndata:\n  password: hunter2\n'
    outcome = rb.record_rollback_outcome(RunStatus(), record, now=NOW, error=rb.summarize_helm_error(stderr))
    cond = get_condition(outcome.status, names.COND_ROLLED_BACK)
    assert cond is not None
    assert (cond.status, cond.reason, outcome.result) == (
        "False",
        names.REASON_ROLLBACK_FAILED,
        "RollbackFailed",
    )
    assert "hunter2" not in cond.message
    assert "apiVersion" not in cond.message
    assert cond.message.startswith("rollback to revision 2 failed: Error: no ConfigMap")


@pytest.mark.parametrize(
    ("stderr", "line"),
    [
        (  # helm v4.3.1, as the operator calls it (the deprecated --wait=false is logged first)
            'level=WARN msg="--wait=false is deprecated (boolean value) and can be replaced with '
            '--wait=hookOnly"\nError: release: not found\n',
            "Error: release: not found",
        ),
        ("Error: release: not found\n", "Error: release: not found"),  # helm v3.19.5
        ('time=2026-12-05T10:00:00Z level=WARN msg="x"\nsomething odd\n', "something odd"),
        ('level=WARN msg="only a warning"\n', 'level=WARN msg="only a warning"'),
    ],
)
def test_the_recorded_helm_error_is_the_error_line_not_helm_4s_warnings(stderr: str, line: str) -> None:
    assert rb.summarize_helm_error(stderr) == line


@given(st.text(max_size=2000))
def test_a_summarized_helm_error_is_one_bounded_line(stderr: str) -> None:
    line = rb.summarize_helm_error(stderr)
    assert "\n" not in line
    assert "\r" not in line
    assert 0 < len(line) <= rb.MAX_ERROR_CHARS


def test_helm_rollback_is_called_as_a_person_would_without_waiting() -> None:
    argv = rb.build_rollback_argv("/usr/local/bin/helm", release="web", namespace="shop", revision=2)
    assert argv == [
        "/usr/local/bin/helm",
        "rollback",
        "--namespace",
        "shop",
        "--wait=false",
        "--",
        "web",
        "2",
    ]


def test_helm_rollback_takes_the_release_after_a_double_dash_so_it_is_never_read_as_a_flag() -> None:
    argv = rb.build_rollback_argv("helm", release="--kubeconfig=/tmp/x", namespace="shop", revision=2)
    assert argv[argv.index("--") + 1 :] == ["--kubeconfig=/tmp/x", "2"]
    assert all(a != "--kubeconfig=/tmp/x" for a in argv[: argv.index("--")])


def test_a_rolling_back_run_whose_record_was_pruned_never_calls_helm_again() -> None:
    r = rolling_back(1)
    pruned = r.model_copy(update={"status": r.status.model_copy(update={"rollback": None})})
    actions = decide(pruned, history(run(2, PASS), pruned, deployed=3, revisions={2, 3}))
    assert not any(isinstance(a, Rollback) for a in actions)
    assert isinstance(actions[0], PatchStatus)
    cond = get_condition(actions[0].status, names.COND_ROLLED_BACK)
    assert cond is not None
    assert (cond.status, cond.reason) == ("False", names.REASON_ROLLBACK_FAILED)


def test_the_opt_in_survives_a_crd_that_prunes_spec_on_failure() -> None:
    spec = run(3).spec
    body = build_run_body(spec, name="web-3", namespace="shop")
    assert body["metadata"]["annotations"] == {names.ON_FAILURE_ANNOTATION: "rollback"}
    del body["spec"]["onFailure"]  # what an older schema does to it
    assert run_from_body(body).spec.on_failure == OnFailure.ROLLBACK
    plain = build_run_body(run(3, on_failure=None).spec, name="web-3", namespace="shop")
    assert "annotations" not in plain["metadata"]
    assert run_from_body(plain).spec.on_failure is None
