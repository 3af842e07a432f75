"""The webhook outbox through the executor and the in-memory Kube port: intent, one send, the outcome
recorded at once; a crash, a conflict, the e-mail in the same pass, a target the admin never defined."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from controller_harness import NS, RUN, deploy, deployed_secret, make_controller, passing_hook, status
from fake_kube import Clock, FakeKube

from helm_e2e.clients import metrics
from helm_e2e.core.model import names
from helm_e2e.core.outcomes.outbox import Target
from helm_e2e.core.outcomes.webhook_payloads import WebhookRequest
from helm_e2e.errors import NotifyError
from helm_e2e.reconcile import deliver_webhook as notifier
from helm_e2e.settings import Settings

OPS = "helm-e2e-system"
TARGETS = {
    "ops": {"type": "cloudevents", "url": "https://hooks.example/T0KEN", "secretKey": "ops-key"},
    "ops-key": "k3y",
    "chat": {"type": "slack", "url": "https://hooks.slack.example/x"},
}


class Posts:
    """Stands in for clients.webhook_http.post_webhook: records (target, request); scripted errors first."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, WebhookRequest]] = []
        self.errors: list[NotifyError] = []
        self.after: Any = None

    async def __call__(self, target: Target, request: WebhookRequest, *, timeout_seconds: float) -> int:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((target.name, request))
        if self.after:
            self.after()
        return 200


@pytest.fixture
def kube() -> FakeKube:
    fake = FakeKube()
    data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in TARGETS.items()}
    fake.secrets[(OPS, "hooks")] = {
        "metadata": {"namespace": OPS, "name": "hooks"},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }
    return fake


@pytest.fixture
def posts(monkeypatch: pytest.MonkeyPatch) -> Posts:
    p = Posts()
    monkeypatch.setattr("helm_e2e.reconcile.deliver_webhook.post_webhook", p)
    return p


def controller(kube: FakeKube, clock: Clock, **settings: Any) -> Any:
    base = {"webhooks_secret": "hooks", "webhooks_namespace": OPS, "webhooks": "ops,chat"}
    return make_controller(kube, clock, **{**base, **settings})


def channels(kube: FakeKube) -> dict[str, dict[str, Any]]:
    """The webhooks' channels (the e-mail's is `@mail`, beside them)."""
    return {
        n["target"]: n for n in status(kube).get("notifications", []) if n["target"] != names.MAIL_CHANNEL
    }


async def finish(c: Any, kube: FakeKube) -> None:
    await deploy(c, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    await c.reconcile((NS, RUN))
    kube.finish_pod(NS, "web-1-smoke", exit_code=1)
    # the final status, with every channel's first step: the e-mail's outcome (SMTP off → Disabled) and the
    # webhooks' intents (Sending)
    await c.reconcile((NS, RUN))


async def test_each_target_gets_the_report_once_after_its_intent_was_recorded(
    kube: FakeKube, clock: Clock, posts: Posts
) -> None:
    c = controller(kube, clock)
    await finish(c, kube)  # the intents ride in the final write
    assert {t: n["state"] for t, n in channels(kube).items()} == {"ops": "Sending", "chat": "Sending"}
    assert posts.sent == []
    await c.reconcile((NS, RUN))  # the sends, each outcome recorded at once
    assert [t for t, _ in posts.sent] == ["ops", "chat"]
    assert {t: (n["state"], n["type"]) for t, n in channels(kube).items()} == {
        "ops": ("Sent", "cloudevents"),
        "chat": ("Sent", "slack"),
    }
    ops = posts.sent[0][1]
    assert ops.headers["X-Helm-E2E-Signature"].startswith("sha256=")
    assert json.loads(ops.body)["id"] == "e2erun.uid-web-1"
    for _ in range(3):
        await c.reconcile((NS, RUN))
    assert len(posts.sent) == 2  # recorded: never again


async def test_a_crash_while_sending_sends_again_with_the_same_event_id(
    kube: FakeKube, clock: Clock, posts: Posts
) -> None:
    c = controller(kube, clock, webhooks="ops")
    await finish(c, kube)  # Sending; kill -9 here
    restarted = controller(kube, clock, webhooks="ops")
    await restarted.reconcile((NS, RUN))
    await restarted.reconcile((NS, RUN))
    assert len(posts.sent) == 1
    assert channels(kube)["ops"]["state"] == "Sent"


async def test_a_conflict_right_after_a_send_never_sends_twice(
    kube: FakeKube, clock: Clock, posts: Posts
) -> None:
    c = controller(kube, clock)

    def conflict() -> None:
        kube.conflict_next_patch = True  # someone wrote the run meanwhile

    posts.after = conflict
    await finish(c, kube)
    for _ in range(5):
        await c.reconcile((NS, RUN))
    assert sorted(t for t, _ in posts.sent) == ["chat", "ops"]
    assert {n["state"] for n in channels(kube).values()} == {"Sent"}


async def test_a_transient_failure_is_retried_after_the_backoff_and_then_sent_once(
    kube: FakeKube, clock: Clock, posts: Posts
) -> None:
    c = controller(kube, clock, webhooks="ops", webhook_retry_base_seconds=1)
    await finish(c, kube)
    posts.errors = [NotifyError("webhook ops (cloudevents): answered 503", permanent=False)]
    await c.reconcile((NS, RUN))
    wait = await c.reconcile((NS, RUN))
    ops = channels(kube)["ops"]
    assert (ops["state"], ops["attempts"]) == ("Retrying", 1)
    assert wait == 2.0
    assert await c.reconcile((NS, RUN)) == pytest.approx(2.0)  # not due yet: nothing sent, a requeue
    assert posts.sent == []
    clock.now += timedelta(seconds=2)
    await c.reconcile((NS, RUN))  # Sending again
    await c.reconcile((NS, RUN))
    assert len(posts.sent) == 1
    assert channels(kube)["ops"]["state"] == "Sent"


async def test_a_target_the_admin_never_defined_fails_for_good_without_a_request(
    kube: FakeKube, clock: Clock, posts: Posts
) -> None:
    c = controller(kube, clock, webhooks="nope")
    await finish(c, kube)
    await c.reconcile((NS, RUN))
    await c.reconcile((NS, RUN))
    nope = channels(kube)["nope"]
    assert (nope["state"], nope["message"]) == (
        "Failed",
        "attempt 1: webhook nope is not defined in the webhooks Secret",
    )
    assert posts.sent == []


async def test_the_mail_and_the_webhooks_outcomes_both_survive_one_pass(
    kube: FakeKube, clock: Clock, posts: Posts, monkeypatch: pytest.MonkeyPatch
) -> None:
    mails: list[str] = []

    async def fake_send(message: Any, *, settings: Settings) -> None:
        mails.append(str(message["Message-ID"]))

    monkeypatch.setattr("helm_e2e.reconcile.deliver_mail.send_email", fake_send)
    c = controller(kube, clock, webhooks="ops", smtp_host="mail", mail_to="dev@example.com")
    await deploy(c, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    await c.reconcile((NS, RUN))
    kube.finish_pod(NS, "web-1-smoke", exit_code=1)
    for _ in range(6):
        await c.reconcile((NS, RUN))
    assert (len(mails), len(posts.sent)) == (1, 1)
    email = {x["type"]: x for x in status(kube)["conditions"]}[names.COND_EMAIL_SENT]
    assert email["reason"] == names.MAIL_SENT
    assert channels(kube)["ops"]["state"] == "Sent"


def test_secret_data_is_decoded_and_values_that_are_not_text_are_left_out() -> None:
    secret = {
        "data": {"a": base64.b64encode(b"x").decode(), "b": base64.b64encode(b"\xff").decode(), "c": "%%"}
    }
    assert notifier.decode_secret_data(secret) == {"a": "x"}


async def test_each_channels_outcome_is_counted_once(kube: FakeKube, clock: Clock, posts: Posts) -> None:
    """One place counts (reconcile/deliver.py): the e-mail's skip once its write is done, each send once."""

    def count(counter: Any, **labels: str) -> float:
        return float(counter.labels(**labels)._value.get())

    disabled = count(metrics.EMAILS, result="Disabled")
    sent = count(metrics.NOTIFICATIONS, type="cloudevents", result="Sent")
    c = controller(kube, clock, webhooks="ops")
    await finish(c, kube)
    for _ in range(4):
        await c.reconcile((NS, RUN))
    assert count(metrics.EMAILS, result="Disabled") - disabled == 1
    assert count(metrics.NOTIFICATIONS, type="cloudevents", result="Sent") - sent == 1
