"""Times as the Kubernetes API writes them (RFC 3339, `Z`), read from untrusted bodies (pure)."""

from __future__ import annotations

from datetime import datetime


def parse_time(value: object) -> datetime | None:
    """A timestamp field of a Kubernetes object, or None when it is missing, not a string or not a time."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
