"""The Kubernetes API's answers as project errors (shared by the adapters)."""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client.exceptions import ApiException

from ..errors import KubeError

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
