"""core/sources/intake.py: the intake's decisions, pure (uninstall checks, the re-run's 409 retry, timings)."""

from __future__ import annotations

from typing import Any

import pytest

from helm_e2e.core.sources import intake
from helm_e2e.core.sources.intake import AttemptStep, UninstallStep


def secret(status: str, name: str = "sh.helm.release.v1.web.v3") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "shop", "labels": {"name": "web", "status": status}}}


@pytest.mark.parametrize(
    ("event_type", "status", "ending", "check"),
    [
        ("DELETED", "superseded", False, False),  # Helm's history pruning: no LIST
        ("DELETED", "superseded", True, True),  # a further deletion of a known uninstall
        ("DELETED", "deployed", False, True),  # the current revision deleted
        ("MODIFIED", "uninstalling", False, True),  # helm uninstall's first step
        (None, "uninstalled", False, True),  # --keep-history, seen at a start
    ],
)
def test_an_uninstall_is_checked_only_when_it_may_end_the_release(
    event_type: str | None, status: str, ending: bool, check: bool
) -> None:
    assert intake.needs_uninstall_check(event_type, secret(status), ending=ending) is check


def test_runs_are_cancelled_once_no_installed_revision_is_left() -> None:
    assert intake.decide_uninstall(0) == UninstallStep.CANCEL
    assert intake.decide_uninstall(1) == UninstallStep.WAIT


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
