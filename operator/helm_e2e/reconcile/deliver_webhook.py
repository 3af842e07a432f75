"""A webhook channel's sender: render the run's notification for one target and POST it once. The outbox
(reconcile/deliver.py) records the outcome.

The targets are read from the admin's webhooks Secret at each send, so a rotated URL or key applies at
once; the run's suites only name targets.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from helm_e2e import errors
from helm_e2e.clients.kube_port import KubePort
from helm_e2e.clients.webhook_http import post_webhook
from helm_e2e.core.model.run import Run
from helm_e2e.core.outcomes import outbox, webhook_payloads
from helm_e2e.settings import Settings


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


async def send_webhook(run: Run, target: str, *, kube: KubePort, settings: Settings) -> str:
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
