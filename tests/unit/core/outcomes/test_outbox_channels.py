"""One outbox for every report channel (core/outcomes/outbox.py): the e-mail and each webhook target go
through the same state machine with the same backoff; a restart between intent and outcome sends again;
a run written before the one outbox (the e-mail's state only in EmailSent + emailAttempts) is read right."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from helm_e2e.core.model import names
from helm_e2e.core.model.release import Trigger
from helm_e2e.core.model.run import ReleaseRef, ReportSpec, Run, RunSpec
from helm_e2e.core.model.run_status import (
    Condition,
    NotificationState,
    NotificationStatus,
    RunPhase,
    RunStatus,
)
from helm_e2e.core.outcomes import outbox
from helm_e2e.core.results.run_tests import get_condition

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
S = NotificationState
MAIL = names.MAIL_CHANNEL
POLICY = outbox.OutboxPolicy(
    mail_to=("ops@example.com",),
    smtp_enabled=True,
    report_cancelled=False,
    mail_retry_base_seconds=2,
    webhook_retry_base_seconds=2,
)


def run_with(
    status: RunStatus | None = None, *, webhooks: tuple[str, ...] = (), phase: RunPhase = RunPhase.FAILED
) -> Run:
    ref = ReleaseRef(
        name="web", namespace="shop", revision=3, chart="c", chart_version="1", trigger=Trigger.UPGRADE
    )
    status = status or RunStatus()
    status.phase, status.completed_at = phase, T0
    spec = RunSpec(release=ref, report=ReportSpec(webhooks=list(webhooks)))
    return Run(name="web-3", namespace="shop", uid="u-3", spec=spec, status=status)


def legacy(reason: str, *, attempts: int = 0, due: datetime | None = None) -> RunStatus:
    """The e-mail's state as the version before the one outbox wrote it."""
    value = {"Sent": "True", "Sending": "Unknown"}.get(reason, "False")
    cond = Condition(
        type=names.COND_EMAIL_SENT, status=value, reason=reason, message="m", last_transition_time=T0
    )
    return RunStatus(conditions=[cond], email_attempts=attempts, email_next_attempt_at=due)


def with_status(run: Run, status: RunStatus) -> Run:
    return run.model_copy(update={"status": status})


def decide(run: Run, now: datetime = T0) -> outbox.Step:
    return outbox.decide_outbox(run, now=now, policy=POLICY)


# --- one state machine per channel ------------------------------------------------------------------------
@pytest.mark.parametrize("channel", [MAIL, "ops"])
def test_every_channel_goes_intent_send_retry_send_sent(channel: str) -> None:
    run = run_with(webhooks=("ops",))
    step = decide(run)
    assert step.write is not None
    assert step.send == ()
    assert outbox.channels(step.write)[channel].state == S.SENDING
    run = with_status(run, step.write)
    assert channel in decide(run).send
    status, again = outbox.record_outcome(
        run.status, target=channel, type="t", now=T0, error="busy", retry_base_seconds=2
    )
    assert (outbox.channels(status)[channel].state, again) == (S.RETRYING, 4.0)
    run = with_status(run, status)
    assert channel not in decide(run, T0 + timedelta(seconds=3)).send  # not due yet: a wait
    assert decide(run, T0 + timedelta(seconds=3)).wait == pytest.approx(1.0)
    step = decide(run, T0 + timedelta(seconds=4))  # due: the intent again, the attempts kept
    assert step.write is not None
    assert (outbox.channels(step.write)[channel].state, outbox.channels(step.write)[channel].attempts) == (
        S.SENDING,
        1,
    )
    status, again = outbox.record_outcome(step.write, target=channel, type="t", now=T0, retry_base_seconds=2)
    assert (outbox.channels(status)[channel].state, again) == (S.SENT, None)


@pytest.mark.parametrize("channel", [MAIL, "ops"])
def test_a_permanent_failure_ends_any_channel(channel: str) -> None:
    run = run_with(webhooks=("ops",))
    sending = outbox.with_sending(run.status, [channel], now=T0)
    status, again = outbox.record_outcome(
        sending, target=channel, type="t", now=T0, error="550", permanent=True, retry_base_seconds=2
    )
    assert again is None
    assert outbox.channels(status)[channel].state == S.FAILED
    assert channel not in decide(with_status(run, status)).send


def test_one_backoff_for_every_channel_exponential_and_bounded() -> None:
    delays = []
    for channel in (MAIL, "ops"):
        status = RunStatus(phase=RunPhase.FAILED)
        for _ in range(3):
            status = outbox.with_sending(status, [channel], now=T0)
            status, again = outbox.record_outcome(
                status, target=channel, type="", now=T0, error="x", retry_base_seconds=2
            )
            delays.append(again)
    assert delays == [4.0, 8.0, 16.0, 4.0, 8.0, 16.0]
    assert outbox.backoff(20, base_seconds=5) == outbox.MAX_BACKOFF_SECONDS


# --- nothing sent twice: a restart between intent and outcome ----------------------------------------------
@pytest.mark.parametrize("channel", [MAIL, "ops"])
def test_a_restart_between_intent_and_outcome_sends_that_channel_again_without_a_new_intent(
    channel: str,
) -> None:
    """As before the one outbox, for both: Sending means "maybe sent"; the repeat carries the same
    Message-ID / CloudEvent id. A restarted operator reads Sending and sends, no second intent write."""
    run = run_with(webhooks=("ops",))
    step = decide(run)
    assert step.write is not None
    restarted = with_status(run, step.write)  # what the API holds after kill -9 right after the write
    again = decide(restarted)
    assert again.write is None
    assert channel in again.send
    done, _ = outbox.record_outcome(restarted.status, target=channel, type="t", now=T0, retry_base_seconds=2)
    assert channel not in decide(with_status(run, done)).send  # recorded: never again


def test_the_e_mails_recipients_ride_with_its_send_only() -> None:
    run = run_with(outbox.with_sending(RunStatus(), [MAIL, "ops"], now=T0), webhooks=("ops",))
    step = decide(run)
    assert (step.send, step.recipients) == ((MAIL, "ops"), ("ops@example.com",))
    run = run_with(outbox.with_sending(RunStatus(), ["ops"], now=T0), webhooks=("ops",))
    run.status.notifications.append(NotificationStatus(target=MAIL, state=S.SENT))
    assert (decide(run).send, decide(run).recipients) == (("ops",), ())


# --- the e-mail's skip and its condition ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "phase", "reason"),
    [
        (outbox.OutboxPolicy(), RunPhase.FAILED, names.MAIL_DISABLED),
        (outbox.OutboxPolicy(smtp_enabled=True), RunPhase.FAILED, names.MAIL_NO_RECIPIENTS),
        (POLICY, RunPhase.CANCELLED, names.MAIL_NOT_REPORTED),
        (POLICY, RunPhase.NO_TESTS, names.MAIL_NO_TESTS),
    ],
)
def test_an_e_mail_not_sent_is_recorded_once_as_skipped_with_its_reason(
    policy: outbox.OutboxPolicy, phase: RunPhase, reason: str
) -> None:
    run = run_with(phase=phase)
    step = outbox.decide_outbox(run, now=T0, policy=policy)
    assert step.write is not None
    assert step.skipped == reason
    mail = outbox.channels(step.write)[MAIL]
    assert (mail.state, mail.reason) == (S.SKIPPED, reason)
    cond = get_condition(step.write, names.COND_EMAIL_SENT)
    assert cond is not None
    assert (cond.status, cond.reason) == ("False", reason)
    assert outbox.decide_outbox(with_status(run, step.write), now=T0, policy=policy) == outbox.Step()
    assert outbox.is_fully_reported(step.write)


@pytest.mark.parametrize(
    ("state", "status", "reason"),
    [
        (S.SENDING, "Unknown", "Sending"),
        (S.SENT, "True", "Sent"),
        (S.RETRYING, "False", "Retrying"),
        (S.FAILED, "False", "Failed"),
    ],
)
def test_the_email_sent_condition_follows_the_e_mails_channel(state: S, status: str, reason: str) -> None:
    written = outbox.with_sending(RunStatus(phase=RunPhase.FAILED), [MAIL], now=T0)
    channel = NotificationStatus(target=MAIL, state=state, type="email", message="m", last_transition_time=T0)
    cond = outbox.mail_condition(channel)
    assert (cond.type, cond.status, cond.reason, cond.message) == (names.COND_EMAIL_SENT, status, reason, "m")
    assert get_condition(written, names.COND_EMAIL_SENT).reason == "Sending"  # type: ignore[union-attr]


def test_a_webhook_target_can_never_be_named_like_the_e_mails_channel() -> None:
    run = run_with(webhooks=("ops",))
    assert outbox.decide_targets(run, defaults=(MAIL, "chat")) == ["chat", "ops"]


# --- upgrade: runs written before the one outbox ------------------------------------------------------------
@pytest.mark.parametrize(
    "reason", ["Sent", "Failed", "Disabled", "NoRecipients", "NotReported", "OnlyOnFailure"]
)
def test_an_e_mail_done_before_the_upgrade_is_never_sent_again(reason: str) -> None:
    run = run_with(legacy(reason))
    assert decide(run) == outbox.Step()
    assert outbox.is_fully_reported(run.status)


def test_an_e_mail_mid_retry_before_the_upgrade_continues_its_backoff() -> None:
    run = run_with(legacy("Retrying", attempts=2, due=T0 + timedelta(seconds=30)))
    assert decide(run) == outbox.Step(wait=30.0)
    assert not outbox.is_fully_reported(run.status)
    step = decide(run, T0 + timedelta(seconds=30))  # due: the intent, with the attempts so far
    assert step.write is not None
    mail = outbox.channels(step.write)[MAIL]
    assert (mail.state, mail.attempts) == (S.SENDING, 2)
    assert step.write.notifications == [mail]  # in the one place from now on
    status, again = outbox.record_outcome(
        step.write, target=MAIL, type="email", now=T0, error="x", retry_base_seconds=2
    )
    assert (outbox.channels(status)[MAIL].attempts, again) == (3, 16.0)


def test_an_e_mail_sending_at_the_upgrade_is_sent_as_it_would_have_been() -> None:
    run = run_with(legacy("Sending", attempts=1))
    assert decide(run) == outbox.Step(send=(MAIL,), recipients=("ops@example.com",))
    status, _ = outbox.record_outcome(run.status, target=MAIL, type="email", now=T0, retry_base_seconds=2)
    assert [(n.target, n.state, n.attempts) for n in status.notifications] == [(MAIL, S.SENT, 1)]
    assert get_condition(status, names.COND_EMAIL_SENT).status == "True"  # type: ignore[union-attr]


def test_a_webhook_outcome_on_an_upgraded_run_takes_the_e_mails_state_over() -> None:
    status = legacy("Sent")
    status.phase = RunPhase.FAILED
    status = outbox.with_sending(status, ["ops"], now=T0)
    assert {n.target: n.state for n in status.notifications} == {MAIL: S.SENT, "ops": S.SENDING}
    assert get_condition(status, names.COND_EMAIL_SENT).reason == "Sent"  # type: ignore[union-attr]


# --- "fully reported": one rule, for the lifecycle and the watch cache ------------------------------------
def test_a_run_is_fully_reported_only_when_every_channel_is_done() -> None:
    status = outbox.with_sending(RunStatus(phase=RunPhase.FAILED), [MAIL, "ops"], now=T0)
    assert not outbox.is_fully_reported(status)
    status, _ = outbox.record_outcome(status, target=MAIL, type="email", now=T0, retry_base_seconds=2)
    assert not outbox.is_fully_reported(status)  # a webhook still in flight
    status, _ = outbox.record_outcome(
        status, target="ops", type="slack", now=T0, error="404", permanent=True, retry_base_seconds=2
    )
    assert outbox.is_fully_reported(status)
    body = {"metadata": {"name": "web-3"}, "status": status.model_dump(by_alias=True, mode="json")}
    assert outbox.settled_body(body)
    assert not outbox.settled_body({"status": {"phase": "Failed", "notifications": "garbage"}})
    assert not outbox.settled_body({"status": {"phase": "Running"}})
    assert not outbox.is_fully_reported(RunStatus(phase=RunPhase.FAILED))  # not even the e-mail decided
