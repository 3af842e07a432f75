"""reconcile/deliver.py: one Deliver action = one attempt by the channel's sender, then its outcome recorded
at once on a fresh read (never a second send after a conflict), and counted once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from fake_kube import Clock, FakeKube
from policies import MAILING
from prometheus_client import REGISTRY
from runs import finished_status, make_run, run_body

from helm_e2e import errors
from helm_e2e.core.lifecycle.decide import Deliver
from helm_e2e.core.model import names
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import NotificationState, NotificationStatus, RunPhase
from helm_e2e.reconcile.deliver import Delivery, count_outcome
from helm_e2e.settings import Settings

MAIL = names.MAIL_CHANNEL


class Sender:
    """Stands in for deliver_mail.MailSender: scripted errors first, then a success; every attempt kept."""

    def __init__(self, *failures: errors.MailError) -> None:
        self.failures = list(failures)
        self.attempts: list[tuple[str, tuple[str, ...]]] = []

    async def send(self, run: Run, recipients: Sequence[str]) -> str:
        self.attempts.append((run.name, tuple(recipients)))
        if self.failures:
            raise self.failures.pop(0)
        return f"sent to {len(recipients)} recipient(s)"


def sending(*channels: str) -> Run:
    """A final run whose channels hold their intent (Sending)."""
    status = finished_status(RunPhase.SUCCEEDED).model_copy(
        update={
            "notifications": [NotificationStatus(target=c, state=NotificationState.SENDING) for c in channels]
        }
    )
    return make_run("smoke", status=status)


def delivery(kube: FakeKube, sender: Sender) -> Delivery:
    d = Delivery(settings=Settings(smtp_host=""), kube=kube, artifacts=None, policy=MAILING, clock=Clock())
    d.mail = sender  # type: ignore[assignment]
    return d


def stored(kube: FakeKube, run: Run) -> dict[str, dict[str, Any]]:
    body = kube.runs[(run.namespace, run.name)]
    return {n["target"]: n for n in body["status"]["notifications"]}


def counted(result: str) -> float:
    return REGISTRY.get_sample_value("helm_e2e_emails_total", {"result": result}) or 0.0


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


async def put(kube: FakeKube, run: Run) -> None:
    await kube.create_run(run_body(run))


async def test_a_sent_mail_is_recorded_sent_and_counted_once(kube: FakeKube) -> None:
    run = sending(MAIL)
    await put(kube, run)
    sender, before = Sender(), counted("Sent")
    again = await delivery(kube, sender).deliver(run, Deliver(channel=MAIL, recipients=("ops@example.com",)))
    assert again is None
    assert sender.attempts == [(run.name, ("ops@example.com",))]
    mail = stored(kube, run)[MAIL]
    assert (mail["state"], mail["type"]) == ("Sent", names.MAIL_CHANNEL_TYPE)
    assert "1 recipient" in mail["message"]
    assert counted("Sent") - before == 1


async def test_a_transient_failure_is_retried_later_and_a_permanent_one_never(kube: FakeKube) -> None:
    run = sending(MAIL)
    await put(kube, run)
    action = Deliver(channel=MAIL, recipients=("ops@example.com",))
    d = delivery(kube, Sender(errors.MailError("busy", permanent=False)))
    again = await d.deliver(run, action)
    assert again is not None
    assert again > 0
    assert (stored(kube, run)[MAIL]["state"], stored(kube, run)[MAIL]["attempts"]) == ("Retrying", 1)
    d.mail = Sender(errors.MailError("no such mailbox", permanent=True))  # type: ignore[assignment]
    assert await d.deliver(run, action) is None
    assert stored(kube, run)[MAIL]["state"] == "Failed"


async def test_the_outcome_is_written_over_the_newest_status_not_the_one_the_pass_read(
    kube: FakeKube,
) -> None:
    """Another channel's outcome recorded meanwhile stays: the write starts from a fresh read."""
    run = sending(MAIL, "ops")
    await put(kube, run)
    newer = [{"target": MAIL, "state": "Sending"}, {"target": "ops", "state": "Sent", "type": "slack"}]
    await kube.patch_run_status(run.namespace, run.name, {"notifications": newer})
    await delivery(kube, Sender()).deliver(run, Deliver(channel=MAIL, recipients=("ops@example.com",)))
    assert {t: n["state"] for t, n in stored(kube, run).items()} == {MAIL: "Sent", "ops": "Sent"}


async def test_a_run_deleted_before_the_outcome_is_recorded_from_the_passs_own_status(kube: FakeKube) -> None:
    run = sending(MAIL)  # never stored: the read finds nothing, the patch finds nothing (Gone)
    assert await delivery(kube, Sender()).deliver(run, Deliver(channel=MAIL, recipients=("a@b.c",))) is None
    assert kube.status_patches == []


def test_webhook_outcomes_are_counted_by_type_and_the_mails_apart() -> None:
    def webhooks(kind: str) -> float:
        labels = {"type": kind, "result": "Failed"}
        return REGISTRY.get_sample_value("helm_e2e_notifications_total", labels) or 0.0

    slack, unknown, mails = webhooks("slack"), webhooks("unknown"), counted("Failed")
    count_outcome("ops", "Failed", type="slack")
    count_outcome("ops", "Failed")
    assert (webhooks("slack") - slack, webhooks("unknown") - unknown, counted("Failed") - mails) == (1, 1, 0)
