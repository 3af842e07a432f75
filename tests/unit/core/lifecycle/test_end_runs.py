"""Ending runs from outside their pass (core/lifecycle/end_runs.py): backoff and giving up after repeated
reconcile failures, refusing a body that does not parse, pruning a release's history."""

from __future__ import annotations

from runs import REPORT_T0 as T0
from runs import report_run as build_run

from helm_e2e.core.lifecycle.actions import EndRun, PatchStatus, PostEvent, Requeue
from helm_e2e.core.lifecycle.end_runs import (
    MAX_RECONCILE_FAILURES,
    decide_prune,
    decide_reconcile_failure,
    decide_unreadable,
    may_supersede,
)
from helm_e2e.core.model import names
from helm_e2e.core.model.release import Trigger
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import RunPhase


def test_a_failing_pass_is_retried_with_exponential_backoff_until_the_bound() -> None:
    delays = [decide_reconcile_failure(n, "KeyError") for n in range(1, MAX_RECONCILE_FAILURES)]
    assert delays == [[Requeue(2.0)], [Requeue(4.0)], [Requeue(8.0)], [Requeue(16.0)]]


def test_at_the_bound_the_run_ends_error_naming_the_exception_type_and_is_looked_at_again_soon() -> None:
    end, again = decide_reconcile_failure(MAX_RECONCILE_FAILURES, "KeyError")
    assert isinstance(end, EndRun)
    assert (end.phase, end.reason) == (RunPhase.ERROR, names.REASON_RECONCILE_FAILED)
    assert end.message == f"the operator failed {MAX_RECONCILE_FAILURES} times on this run (KeyError)"
    assert again == Requeue(1.0)


def test_an_unreadable_run_is_refused_once_naming_at_most_five_fields_never_values() -> None:
    invalid = ["spec.tests", "spec.release", "spec.tests", "a", "b", "c", "d"]
    patch, event = decide_unreadable(None, invalid, now=T0)
    assert isinstance(patch, PatchStatus)
    assert isinstance(event, PostEvent)
    assert patch.status.phase == RunPhase.REFUSED
    assert patch.status.completed_at == T0
    assert (
        patch.status.message
        == "the run is not one the helm-e2e operator writes (invalid: a, b, c, d, spec.release)"
    )
    assert (event.type, event.reason, event.message) == (
        "Warning",
        names.REASON_REFUSED,
        patch.status.message,
    )
    assert decide_unreadable(RunPhase.REFUSED.value, invalid, now=T0) == []  # already refused: nothing again


def test_prune_keeps_the_newest_limit_never_an_active_run_nor_the_one_asking() -> None:
    def run(revision: int, phase: RunPhase = RunPhase.SUCCEEDED) -> Run:
        r = build_run(phase)
        r.spec.release.revision = revision
        return r.model_copy(update={"name": f"webhooks-{revision}"})

    runs = [run(1), run(2, RunPhase.RUNNING), run(3), run(4), run(5)]
    assert decide_prune(runs, limit=2, keep="webhooks-5") == ["webhooks-3", "webhooks-1"]
    assert decide_prune(runs, limit=2, keep="webhooks-3") == ["webhooks-1"]
    assert decide_prune(runs, limit=10, keep="") == []


def test_only_a_helm_releases_first_attempt_of_its_first_revision_has_nothing_to_supersede() -> None:
    assert not may_supersede(revision=1, attempt=1, trigger=Trigger.INSTALL)
    assert may_supersede(revision=1, attempt=2, trigger=Trigger.INSTALL)  # a rerun of the install
    assert may_supersede(revision=2, attempt=1, trigger=Trigger.UPGRADE)
    assert may_supersede(revision=1, attempt=1, trigger=Trigger.SYNC)  # Argo CD counts its history from 0
