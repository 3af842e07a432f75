"""core/sources/intake.py: the intake's decisions, pure (uninstall checks, the re-run's 409 retry, timings)."""

from __future__ import annotations

from typing import Any

import pytest

from helm_e2e.core.model import names
from helm_e2e.core.sources import intake
from helm_e2e.core.sources.intake import AttemptStep, IntakeKind


def secret(status: str, name: str = "sh.helm.release.v1.web.v3") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "shop", "labels": {"name": "web", "status": status}}}


@pytest.mark.parametrize(
    ("event_type", "status", "kind"),
    [
        ("DELETED", "superseded", IntakeKind.IGNORE),  # an upgrade: the old revision left the selection
        ("DELETED", "failed", IntakeKind.IGNORE),  # Helm's history pruning never selected it either
        ("DELETED", "deployed", IntakeKind.CHECK),  # the current revision deleted: is anything left?
        ("MODIFIED", "uninstalling", IntakeKind.IGNORE),  # helm uninstall's first step: not done yet
        ("DELETED", "uninstalling", IntakeKind.CANCEL),  # helm uninstall deleting the marked revision
        ("MODIFIED", "uninstalled", IntakeKind.CANCEL),  # --keep-history
        (None, "uninstalled", IntakeKind.CANCEL),  # --keep-history, seen at a start
        ("ADDED", "deployed", IntakeKind.PLAN),  # a new revision entered the selection
        (None, "deployed", IntakeKind.PLAN),  # a start's listing
        ("MODIFIED", "deployed", IntakeKind.PLAN),  # `helm test` rewrote it: the run exists (409)
    ],
)
def test_what_a_secret_event_means_from_its_labels(
    event_type: str | None, status: str, kind: IntakeKind
) -> None:
    assert intake.classify_secret_event(event_type, secret(status)).kind == kind


def test_a_secret_without_a_release_name_is_ignored() -> None:
    nameless = {"metadata": {"namespace": "shop", "labels": {"status": "uninstalled"}}}
    assert intake.classify_secret_event("DELETED", nameless).kind == IntakeKind.IGNORE


def test_runs_are_cancelled_once_no_installed_revision_is_left() -> None:
    assert intake.cancels_runs(0)
    assert not intake.cancels_runs(1)


def test_the_watch_selects_deployed_revisions_and_an_uninstalls_marks_only() -> None:
    selector = names.HELM_SECRET_SELECTOR
    assert selector == "owner=helm,status in (deployed,uninstalling,uninstalled)"


def test_the_run_is_named_from_the_secrets_name_before_decoding() -> None:
    assert intake.run_key_of_secret(secret("deployed")) == ("web", 3)
    assert intake.run_key_of_secret(secret("deployed", name="not-helm")) is None
    assert intake.run_key_of_secret({}) is None


def test_a_requested_runs_409_is_decided_again_a_bounded_number_of_times() -> None:
    assert intake.decide_after_attempt(created=True, tries=1) == AttemptStep.DONE
    steps = [
        intake.decide_after_attempt(created=False, tries=n) for n in range(1, intake.MAX_ATTEMPT_TRIES + 1)
    ]
    assert steps == [AttemptStep.RETRY] * (intake.MAX_ATTEMPT_TRIES - 1) + [AttemptStep.GIVE_UP]


def test_intake_timings_are_each_steps_milliseconds() -> None:
    marks = {"received": 1.0, "read": 1.001, "planning": 1.003, "planned": 1.0105}
    assert intake.timings_ms(marks, creating_at=1.011, now=1.02) == {
        "wait_ms": 1.0,
        "get_ms": 2.0,
        "plan_ms": 7.5,
        "create_ms": 9.0,
        "intake_ms": 20.0,
    }
    assert intake.timings_ms(None, creating_at=2.0, now=2.5) == {"create_ms": 500.0}
