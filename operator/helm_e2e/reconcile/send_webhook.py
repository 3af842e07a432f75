"""Sending one webhook notification of a finished run (the SendNotification action of core.lifecycle).

The targets are read from the admin's webhooks Secret at each send, so a rotated URL or key applies at
once; the run's suites only name targets. One POST per call, then the outcome is recorded at once.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog

from helm_e2e import errors
from helm_e2e.clients import metrics
from helm_e2e.clients.kube_port import KubePort
from helm_e2e.clients.webhook_http import post_webhook
from helm_e2e.core.model.run_codec import run_from_body, status_body
from helm_e2e.core.model.schema import Run
from helm_e2e.core.outcomes import outbox, webhook_payloads
from helm_e2e.settings import Settings

log = structlog.get_logger(__name__)


def decode_secret_data(secret: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's data, base64-decoded to text (values that are not UTF-8 are left out)."""
    out: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            out[key] = base64.b64decode(value, validate=True).decode()
        except (ValueError, UnicodeError):
            continue
    return out


async def read_targets(kube: KubePort, settings: Settings) -> dict[str, outbox.Target | str]:
    """The admin's targets by name (or why each is unusable); none without HELM_E2E_WEBHOOKS_SECRET."""
    if not settings.webhooks_secret:
        return {}
    secret = await kube.get_secret(settings.webhooks_namespace, settings.webhooks_secret)
    return outbox.parse_targets(decode_secret_data(secret or {}))


async def _deliver(run: Run, target: str, *, kube: KubePort, settings: Settings) -> str:
    """One attempt; the target's type. NotifyError when it was not delivered."""
    try:
        defined = (await read_targets(kube, settings)).get(target, "is not defined in the webhooks Secret")
    except errors.KubeError as e:
        raise errors.NotifyError(
            f"the webhooks Secret could not be read ({e.reason})", permanent=False
        ) from e
    if isinstance(defined, str):
        raise errors.NotifyError(f"webhook {target} {defined}", permanent=True)
    try:
        request = webhook_payloads.build_request(defined, run, cluster=settings.cluster_name)
    except Exception as e:  # a payload that cannot be built must end the channel, not loop it
        raise errors.NotifyError(
            f"webhook {target}: the payload could not be built ({type(e).__name__})", permanent=True
        ) from e
    await post_webhook(defined, request, timeout_seconds=settings.webhook_timeout_seconds)
    return defined.type.value


async def send_notification(
    run: Run, target: str, *, kube: KubePort, settings: Settings, now: Callable[[], datetime]
) -> float | None:
    """Send once, then record the outcome at once on a fresh read with a write that cannot conflict (no
    precondition): a conflict after a send must never lead to a second send. Returns when to look again."""
    error, permanent, kind = "", False, ""
    try:
        kind = await _deliver(run, target, kube=kube, settings=settings)
    except errors.NotifyError as e:
        error, permanent = str(e), e.permanent
    body = await kube.get_run(run.namespace, run.name)  # the e-mail's outcome may be newer than `run`
    current = run_from_body(body).status if body is not None else run.status
    known = next((n.type for n in current.notifications if n.target == target), "")
    status, again = outbox.record_outcome(
        current,
        target=target,
        type=kind or known,
        now=now(),
        error=error,
        permanent=permanent,
        retry_base_seconds=settings.webhook_retry_base_seconds,
    )
    await kube.patch_run_status(run.namespace, run.name, status_body(status))
    result = "Sent" if not error else ("Failed" if permanent else "Retrying")
    metrics.NOTIFICATIONS.labels(type=kind or known or "unknown", result=result).inc()
    if error:
        log.warning("outbox.failed", run=run.name, namespace=run.namespace, target=target, error=error)
    else:
        log.info("outbox.sent", run=run.name, namespace=run.namespace, target=target, type=kind)
    return again
