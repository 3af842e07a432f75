"""Posting one webhook notification with aiohttp (already kopf's HTTP client); one attempt per call.

`post_webhook` never retries and never sleeps: the single retry layer is the run's notification outbox
(core.notify). Connection errors, timeouts, 408, 429 and 5xx raise NotifyError(permanent=False); any other
non-2xx answer (redirects are not followed) raises NotifyError(permanent=True). The reply is hostile input:
at most REPLY_BYTES of it are read, within the timeout, and only a short cleaned excerpt reaches the status.
Errors name the target, never its URL or signing key.
"""

from __future__ import annotations

import re

import aiohttp

from helm_e2e.core.outcomes.outbox import Target
from helm_e2e.core.outcomes.webhook_payloads import WebhookRequest
from helm_e2e.errors import NotifyError

REPLY_BYTES = 4096
EXCERPT_CHARS = 120
TRANSIENT_STATUSES = frozenset({408, 425, 429})
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]+")


def classify_status(status: int) -> bool | None:
    """None: delivered (2xx); True: a permanent failure; False: transient (retry later)."""
    if 200 <= status < 300:
        return None
    return not (status >= 500 or status in TRANSIENT_STATUSES)


def excerpt(reply: bytes) -> str:
    """A short, printable, one-line excerpt of a reply (for the status message)."""
    text = _UNPRINTABLE.sub(" ", reply[: EXCERPT_CHARS * 4].decode("utf-8", "replace")).strip()
    return text[:EXCERPT_CHARS]


async def post_webhook(target: Target, request: WebhookRequest, *, timeout_seconds: float) -> int:
    """One delivery attempt; the HTTP status when delivered, NotifyError(permanent=...) otherwise."""
    where = f"webhook {target.name} ({target.type.value})"
    client_timeout = aiohttp.ClientTimeout(total=timeout_seconds)
    try:
        async with (
            aiohttp.ClientSession(timeout=client_timeout, trust_env=False) as session,
            session.post(target.url, data=request.body, headers=request.headers, allow_redirects=False) as r,
        ):
            reply = await r.content.read(REPLY_BYTES)
            status = r.status
    except (aiohttp.ClientError, OSError, TimeoutError) as e:  # the URL is in some of their texts: type only
        raise NotifyError(f"{where}: {type(e).__name__}", permanent=False) from e
    permanent = classify_status(status)
    if permanent is None:
        return status
    said = excerpt(reply)
    raise NotifyError(f"{where}: answered {status}" + (f": {said}" if said else ""), permanent=permanent)
