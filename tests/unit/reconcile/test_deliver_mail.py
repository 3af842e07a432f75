"""reconcile/deliver_mail.py: the report is rendered and handed to SMTP once; a history or a report that
cannot be built is handled as the outbox needs (the strip dropped; a permanent MailError, never a loop)."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from fake_kube import FakeKube
from runs import finished_status, make_run, run_body

from helm_e2e import errors
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import RunPhase
from helm_e2e.reconcile.deliver_mail import MailSender
from helm_e2e.settings import Settings


class Smtp:
    """Stands in for clients.smtp.send_email: keeps each message; scripted errors first."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.errors: list[Exception] = []

    async def __call__(self, message: EmailMessage, *, settings: Settings) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(message)


class BrokenKube(FakeKube):
    async def list_runs(self, namespace: str, release: str | None) -> list[dict[str, object]]:
        raise errors.KubeError("the API is away", status=503)


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Smtp:
    s = Smtp()
    monkeypatch.setattr("helm_e2e.reconcile.deliver_mail.send_email", s)
    return s


def final_run(name: str = "web-2") -> Run:
    return make_run("smoke", name=name, status=finished_status(RunPhase.FAILED))


def sender(kube: FakeKube) -> MailSender:
    settings = Settings(smtp_host="smtp.example", mail_from="e2e@example.com", cluster_name="prod")
    return MailSender(settings=settings, kube=kube, artifacts=None)


async def test_the_report_goes_to_every_recipient_in_one_message(smtp: Smtp) -> None:
    said = await sender(FakeKube()).send(final_run(), ["a@example.com", "b@example.com"])
    assert said == "sent to 2 recipient(s)"
    [message] = smtp.sent
    assert message["To"] == "a@example.com, b@example.com"
    assert message["From"] == "e2e@example.com"
    assert "web" in message["Subject"]
    assert "prod" in message["Subject"]


async def test_the_history_strip_shows_the_releases_earlier_runs(smtp: Smtp) -> None:
    kube = FakeKube()
    await kube.create_run(run_body(final_run("web-1")))
    with_history = sender(kube)
    await with_history.send(final_run(), ["a@example.com"])
    assert [r.name for r in await with_history._report_history(final_run())] == ["web-1"]
    assert len(smtp.sent) == 1


async def test_a_history_the_api_cannot_give_costs_the_strip_not_the_report(smtp: Smtp) -> None:
    broken = sender(BrokenKube())
    assert await broken._report_history(final_run()) == []
    assert await broken.send(final_run(), ["a@example.com"]) == "sent to 1 recipient(s)"
    assert len(smtp.sent) == 1


async def test_an_smtp_failure_keeps_its_own_permanence(smtp: Smtp) -> None:
    smtp.errors.append(errors.MailError("greylisted", permanent=False))
    with pytest.raises(errors.MailError) as failed:
        await sender(FakeKube()).send(final_run(), ["a@example.com"])
    assert (str(failed.value), failed.value.permanent) == ("greylisted", False)


async def test_a_report_that_cannot_be_built_or_sent_ends_the_channel(smtp: Smtp) -> None:
    smtp.errors.append(RuntimeError("boom"))
    with pytest.raises(errors.MailError) as failed:
        await sender(FakeKube()).send(final_run(), ["a@example.com"])
    assert failed.value.permanent is True
    assert "RuntimeError" in str(failed.value)
    assert smtp.sent == []


async def test_without_an_artifact_store_nothing_is_attached(smtp: Smtp) -> None:
    assert await sender(FakeKube())._attachments(final_run()) == ([], [])
