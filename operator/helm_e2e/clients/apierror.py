"""Calling the Kubernetes client, and its answers as project errors (shared by the clients)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pydantic
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from helm_e2e.errors import ApiRefused, KubeError

Body = dict[str, Any]


def status_of(e: ApiException) -> int:
    return int(e.status or 0)


def api_error(e: ApiException) -> KubeError:
    """The API's own reason and message (a Status object), as a project error."""
    status, reason, message = status_of(e), str(e.reason or ""), ""
    try:
        body = json.loads(e.body or "{}")
        reason, message = str(body.get("reason") or reason), str(body.get("message") or "")
    except (ValueError, AttributeError):
        pass
    return KubeError(message[:1024] or f"HTTP {status} {reason}", status=status, reason=reason)


def api_refusal(e: ApiException) -> ApiRefused:
    """The API refused (403, 422, 409, ...): its own reason and message, never our request's content."""
    err = api_error(e)
    return ApiRefused(err.message, status=err.status, reason=err.reason)


def client_refusal(e: pydantic.ValidationError) -> ApiRefused:
    """The client refused to send a body (e.g. a list where a string belongs): which fields, never values."""
    where = ", ".join(".".join(str(p) for p in err["loc"]) for err in e.errors(include_input=False)[:3])
    return ApiRefused(f"the object is not valid ({where or 'its shape'})", status=422, reason="Invalid")


async def call(fn: Callable[..., Any], *args: Any, request_timeout: float, **kwargs: Any) -> Any:
    """One call of the synchronous client in a worker thread (never on the event loop), bounded in time.

    Raises ApiException for the API's answers, ApiRefused when the client itself rejects the body, and
    KubeError when no answer came."""
    kwargs.setdefault("_request_timeout", request_timeout)
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except pydantic.ValidationError as e:  # the client's own check of what we send
        raise client_refusal(e) from None
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise KubeError(f"no answer from the API: {type(e).__name__}", status=0) from e
