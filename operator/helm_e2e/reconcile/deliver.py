"""The outbox's shell: one Deliver action (core/outcomes/outbox.py) = one attempt on one channel, by that
channel's sender (the e-mail: deliver_mail.py; a webhook target: deliver_webhook.py), then its outcome
recorded at once on a fresh read with a write that cannot conflict (no precondition): a conflict after a
send must never lead to a second send. Every channel's outcome is counted here, and only here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from helm_e2e import errors
from helm_e2e.clients import metrics
from helm_e2e.clients.kube_port import KubePort
from helm_e2e.core.lifecycle import decide
from helm_e2e.core.lifecycle.actions import PatchStatus
from helm_e2e.core.model import names
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_codec import run_from_body
from helm_e2e.core.outcomes import outbox
from helm_e2e.reconcile.deliver_mail import MailSender
from helm_e2e.reconcile.deliver_webhook import send_webhook
from helm_e2e.reconcile.recent_runs import RecentRuns
from helm_e2e.reconcile.write_status import StatusWriter
from helm_e2e.settings import Settings

if TYPE_CHECKING:  # the artifact stack (obstore, jwt, tarfile) is imported only when artifacts are on
    from helm_e2e.artifacts.service import Artifacts

log = structlog.get_logger(__name__)


def count_outcome(channel: str, result: str, *, type: str = "") -> None:
    """One outcome of one channel: a send's (Sent, Retrying, Failed) or the e-mail's skip (its reason)."""
    if channel == outbox.MAIL:
        metrics.EMAILS.labels(result=result).inc()
    else:
        metrics.NOTIFICATIONS.labels(type=type or "unknown", result=result).inc()


class Delivery:
    def __init__(
        self,
        *,
        settings: Settings,
        kube: KubePort,
        artifacts: Artifacts | None,
        policy: decide.Policy,
        clock: Callable[[], datetime],
        recent: RecentRuns | None = None,
        status: StatusWriter | None = None,
    ) -> None:
        self.settings, self.kube, self.now = settings, kube, clock
        self.status = status or StatusWriter(kube)  # every status write of a run goes through one writer
        self.policy = decide.outbox_policy(policy)
        self.mail = MailSender(settings=settings, kube=kube, artifacts=artifacts, recent=recent)

    async def _send(self, run: Run, action: decide.Deliver) -> tuple[str, str]:
        """One attempt on the action's channel: (its type, what its message says of the success)."""
        if action.channel == outbox.MAIL:
            return names.MAIL_CHANNEL_TYPE, await self.mail.send(run, action.recipients)
        kind = await send_webhook(run, action.channel, kube=self.kube, settings=self.settings)
        return kind, "delivered"

    async def deliver(self, run: Run, action: decide.Deliver) -> float | None:
        """Send once, then record the outcome; returns when to look again (None: the channel is done)."""
        channel, kind, delivered, error, permanent = action.channel, "", "", "", False
        try:
            kind, delivered = await self._send(run, action)
        except (errors.MailError, errors.NotifyError) as e:
            error, permanent = str(e), e.permanent
        body = await self.kube.get_run(run.namespace, run.name)  # another channel's outcome may be newer
        current = run_from_body(body).status if body is not None else run.status
        known = outbox.channels(current).get(channel)
        status, again = outbox.record_outcome(
            current,
            target=channel,
            type=kind or (known.type if known else ""),
            now=self.now(),
            error=error,
            permanent=permanent,
            retry_base_seconds=self.policy.retry_base_seconds(channel),
            delivered=delivered,
        )
        # no precondition: a conflict after a send must never lead to a second one
        await self.status.write(run, PatchStatus(status), resource_version=None)
        result = "Sent" if not error else ("Failed" if permanent else "Retrying")
        recorded = outbox.channels(status)[channel]
        count_outcome(channel, result, type=recorded.type)
        if error:
            log.warning(
                "outbox.failed",
                run=run.name,
                namespace=run.namespace,
                channel=channel,
                permanent=permanent,
                attempts=recorded.attempts,
                error=error,
            )
        else:
            log.info("outbox.sent", run=run.name, namespace=run.namespace, channel=channel, type=kind)
        return again
