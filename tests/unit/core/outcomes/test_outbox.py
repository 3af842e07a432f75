"""The outbox's webhook channels (pure): targets from the admin's Secret, the per-target decision table,
outcomes, and how they share the finished run's single status write with the e-mail's channel."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from helm_e2e.core.lifecycle import decide as lifecycle
from helm_e2e.core.lifecycle.decide import Deliver, PatchStatus, Policy, Requeue
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
from helm_e2e.core.outcomes import outbox as notify
from helm_e2e.core.outcomes.outbox import Target, TargetType
from helm_e2e.core.results.run_tests import TestObjects

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
POLICY = Policy(
    resync_seconds=5,
    pod_ttl_seconds=60,
    mail_to=(),
    report_cancelled=False,
    smtp_enabled=False,
    mail_retry_base_seconds=2,
    webhooks=("ops",),
    webhook_retry_base_seconds=1,
)
MAIL_DONE = Condition(type=names.COND_EMAIL_SENT, status="False", reason=names.MAIL_DISABLED)


def channel(
    target: str, state: NotificationState, *, due: datetime | None = None, attempts: int = 0
) -> NotificationStatus:
    return NotificationStatus(target=target, state=state, attempts=attempts, next_attempt_at=due)


def finished(
    phase: RunPhase = RunPhase.FAILED,
    *channels: NotificationStatus,
    webhooks: tuple[str, ...] = (),
    only_on_failure: bool = False,
) -> Run:
    ref = ReleaseRef(
        name="web", namespace="shop", revision=2, chart="c", chart_version="1", trigger=Trigger.UPGRADE
    )
    spec = RunSpec(release=ref, report=ReportSpec(webhooks=list(webhooks), only_on_failure=only_on_failure))
    status = RunStatus(phase=phase, completed_at=T0, notifications=list(channels), conditions=[MAIL_DONE])
    return Run(name="web-2", namespace="shop", uid="u-1", spec=spec, status=status)


# --- the targets --------------------------------------------------------------------------------------
def test_targets_are_read_from_the_secret_and_a_secret_key_is_a_signing_key_not_a_target() -> None:
    data = {
        "ops": json.dumps({"type": "cloudevents", "url": "https://hooks.example/e", "secretKey": "ops-key"}),
        "ops-key": "k3y",
        "chat": json.dumps({"type": "slack", "url": "https://hooks.slack.com/services/T/B/x"}),
    }
    targets = notify.parse_targets(data)
    assert set(targets) == {"ops", "chat"}
    assert targets["ops"] == Target("ops", TargetType.CLOUDEVENTS, "https://hooks.example/e", b"k3y")
    assert targets["chat"] == Target("chat", TargetType.SLACK, "https://hooks.slack.com/services/T/B/x")


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("not json", "is not a JSON object"),
        ('["a"]', "is not a JSON object"),
        ('{"type": "email", "url": "https://x.example"}', "type must be one of"),
        ('{"type": "teams", "url": "file:///etc/passwd"}', "absolute http(s) URL"),
        ('{"type": "teams", "url": "https://x.example/a b"}', "absolute http(s) URL"),
        ('{"type": "teams"}', "absolute http(s) URL"),
        (
            '{"type": "cloudevents", "url": "https://x.example", "secretKey": "missing"}',
            "secretKey must name",
        ),
    ],
)
def test_an_unusable_target_says_which_field_never_its_value(spec: str, problem: str) -> None:
    result = notify.parse_targets({"t": spec})["t"]
    assert isinstance(result, str)
    assert problem in result
    assert "x.example" not in result
    assert "passwd" not in result


def test_a_target_never_shows_its_url_or_key_in_a_repr() -> None:
    target = Target("ops", TargetType.CLOUDEVENTS, "https://hooks.example/T0KEN", b"s3cret")
    assert "T0KEN" not in repr(target)
    assert "s3cret" not in repr(target)


# --- the decision table ---------------------------------------------------------------------------------
S = NotificationState


@dataclass(frozen=True)
class Channels:
    """The webhook channels of one outbox step: intents written now (nothing sent on that pass), sends."""

    begin: tuple[str, ...] = ()
    send: tuple[str, ...] = ()
    wait: float | None = None


def decide_channels(
    run: Run, *, defaults: tuple[str, ...], now: datetime, report_cancelled: bool
) -> Channels:
    policy = notify.OutboxPolicy(webhooks=defaults, report_cancelled=report_cancelled)
    step = notify.decide_outbox(run, now=now, policy=policy)
    before = notify.channels(run.status)
    begin = tuple(
        n.target
        for n in (step.write.notifications if step.write else [])
        if n.state == S.SENDING and (n.target not in before or before[n.target].state != S.SENDING)
    )
    return Channels(begin=begin, send=step.send, wait=step.wait)


@pytest.mark.parametrize(
    ("phase", "channels", "expected"),
    [
        (RunPhase.FAILED, [], Channels(begin=("ops", "chat"))),
        # a new intent is written first: nothing is sent on the pass that writes it
        (RunPhase.FAILED, [channel("ops", S.SENDING)], Channels(begin=("chat",))),
        (RunPhase.FAILED, [channel("ops", S.SENT), channel("chat", S.SENDING)], Channels(send=("chat",))),
        (RunPhase.FAILED, [channel("ops", S.SENT), channel("chat", S.FAILED)], Channels()),
        (
            RunPhase.FAILED,
            [channel("ops", S.RETRYING, due=T0 + timedelta(seconds=8)), channel("chat", S.SENT)],
            Channels(wait=8.0),
        ),
        (
            RunPhase.FAILED,
            [channel("ops", S.RETRYING, due=T0), channel("chat", S.RETRYING, due=T0 + timedelta(seconds=3))],
            Channels(begin=("ops",), wait=3.0),
        ),
        (RunPhase.RUNNING, [], Channels()),
        (RunPhase.NO_TESTS, [], Channels()),
        (RunPhase.CANCELLED, [], Channels()),  # report_cancelled off
        (RunPhase.SUPERSEDED, [], Channels()),
        (RunPhase.ERROR, [], Channels(begin=("ops", "chat"))),
    ],
)
def test_each_target_is_its_own_channel(
    phase: RunPhase, channels: list[NotificationStatus], expected: Channels
) -> None:
    run = finished(phase, *channels, webhooks=("chat", "ops"))
    assert decide_channels(run, defaults=("ops",), now=T0, report_cancelled=False) == expected


def test_a_success_is_not_notified_when_the_suites_asked_for_failures_only() -> None:
    run = finished(RunPhase.SUCCEEDED, only_on_failure=True)
    assert decide_channels(run, defaults=("ops",), now=T0, report_cancelled=True) == Channels()
    run = finished(RunPhase.SUCCEEDED)
    assert decide_channels(run, defaults=("ops",), now=T0, report_cancelled=True).begin == ("ops",)


def test_cancelled_runs_are_notified_when_cancelled_runs_are_reported() -> None:
    run = finished(RunPhase.CANCELLED)
    assert decide_channels(run, defaults=("ops",), now=T0, report_cancelled=True).begin == ("ops",)


def test_no_targets_no_channels() -> None:
    assert decide_channels(finished(), defaults=(), now=T0, report_cancelled=True) == Channels()


# --- outcomes --------------------------------------------------------------------------------------------
def test_a_delivery_records_sent_and_keeps_the_other_channels() -> None:
    status = finished(
        RunPhase.FAILED, channel("ops", S.SENDING), channel("chat", S.RETRYING, attempts=2)
    ).status
    new, again = notify.record_outcome(status, target="ops", type="cloudevents", now=T0, retry_base_seconds=1)
    assert again is None
    assert [(n.target, n.state, n.type) for n in new.notifications] == [
        ("ops", S.SENT, "cloudevents"),
        ("chat", S.RETRYING, ""),
        (names.MAIL_CHANNEL, S.SKIPPED, "email"),  # taken over from EmailSent (a run from before)
    ]
    assert status.notifications[0].state == S.SENDING  # the input is not mutated


def test_a_transient_failure_retries_with_exponential_backoff_up_to_a_bound() -> None:
    status = finished(RunPhase.FAILED, channel("ops", S.SENDING, attempts=2)).status
    new, again = notify.record_outcome(
        status, target="ops", type="slack", now=T0, error="answered 503", retry_base_seconds=1
    )
    assert again == 8.0  # 1 x 2^3
    ops = new.notifications[0]
    assert (ops.state, ops.attempts, ops.next_attempt_at) == (S.RETRYING, 3, T0 + timedelta(seconds=8))
    assert ops.message == "attempt 3: answered 503"
    status = finished(RunPhase.FAILED, channel("ops", S.SENDING, attempts=20)).status
    _, again = notify.record_outcome(status, target="ops", type="", now=T0, error="x", retry_base_seconds=5)
    assert again == notify.MAX_BACKOFF_SECONDS


def test_a_permanent_failure_ends_the_channel() -> None:
    status = finished(RunPhase.FAILED, channel("ops", S.SENDING)).status
    new, again = notify.record_outcome(
        status, target="ops", type="teams", now=T0, error="answered 404", permanent=True, retry_base_seconds=1
    )
    assert again is None
    assert (new.notifications[0].state, new.notifications[0].next_attempt_at) == (S.FAILED, None)


def test_the_intent_keeps_the_attempts_so_far() -> None:
    status = finished(RunPhase.FAILED, channel("ops", S.RETRYING, due=T0, attempts=3)).status
    new = notify.with_sending(status, ["ops", "chat"], now=T0)
    assert [(n.target, n.state, n.attempts) for n in new.notifications] == [
        ("ops", S.SENDING, 3),
        (names.MAIL_CHANNEL, S.SKIPPED, 0),  # taken over from EmailSent (a run from before)
        ("chat", S.SENDING, 0),
    ]


# --- in the lifecycle: one status write per pass, shared with the e-mail ------------------------------
def test_the_intent_is_written_first_then_each_target_is_sent_once() -> None:
    run = finished(webhooks=("chat",))
    actions = lifecycle.decide_outbox(run, T0, POLICY)
    assert len(actions) == 1
    assert isinstance(actions[0], PatchStatus)
    states = {n.target: n.state for n in actions[0].status.notifications}
    # the e-mail's Disabled (EmailSent, from before the one outbox) is taken over as its channel
    assert states == {"ops": S.SENDING, "chat": S.SENDING, names.MAIL_CHANNEL: S.SKIPPED}
    sending = run.model_copy(update={"status": actions[0].status})
    assert lifecycle.decide_outbox(sending, T0, POLICY) == [Deliver("ops"), Deliver("chat")]


def test_the_e_mails_and_the_webhooks_intents_share_one_write() -> None:
    run = finished()
    run.status.conditions = []
    mail_policy = Policy(**{**POLICY.__dict__, "smtp_enabled": True, "mail_to": ("a@example.com",)})
    actions = lifecycle.decide_outbox(run, T0, mail_policy)
    assert [type(a) for a in actions] == [PatchStatus]
    status = actions[0].status  # type: ignore[union-attr]
    assert {n.target: n.state for n in status.notifications} == {
        names.MAIL_CHANNEL: S.SENDING,
        "ops": S.SENDING,
    }
    assert [(c.type, c.status, c.reason) for c in status.conditions] == [
        (names.COND_EMAIL_SENT, "Unknown", names.MAIL_SENDING)
    ]
    sending = run.model_copy(update={"status": status})
    assert lifecycle.decide_outbox(sending, T0, mail_policy) == [
        Deliver(names.MAIL_CHANNEL, ("a@example.com",)),
        Deliver("ops"),
    ]


def test_a_pending_send_waits_while_another_channels_intent_is_written() -> None:
    run = finished()
    sending = Condition(type=names.COND_EMAIL_SENT, status="Unknown", reason=names.MAIL_SENDING)
    run.status.conditions = [sending]
    mail_policy = Policy(**{**POLICY.__dict__, "smtp_enabled": True, "mail_to": ("a@example.com",)})
    actions = lifecycle.decide_outbox(run, T0, mail_policy)
    assert [type(a) for a in actions] == [PatchStatus]  # the webhook's intent; the e-mail on the next read
    written = run.model_copy(update={"status": actions[0].status})  # type: ignore[union-attr]
    assert lifecycle.decide_outbox(written, T0, mail_policy) == [
        Deliver(names.MAIL_CHANNEL, ("a@example.com",)),
        Deliver("ops"),
    ]


def test_a_retry_not_due_yet_requeues_at_its_time() -> None:
    run = finished(RunPhase.FAILED, channel("ops", S.RETRYING, due=T0 + timedelta(seconds=30)))
    observed = lifecycle.Observed(now=T0, objects=TestObjects())
    actions = lifecycle.decide_run(run, observed, POLICY)
    assert Requeue(30.0) in actions
    assert not any(isinstance(a, Deliver | PatchStatus) for a in actions)
