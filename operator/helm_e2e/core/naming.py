"""Deterministic, DNS-safe names for runs and pods (pure)."""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 63  # pod names double as hostnames: keep them DNS labels


def sanitize(name: str) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return re.sub(r"-{2,}", "-", cleaned) or "x"


def _fit(name: str, limit: int = MAX_NAME) -> str:
    safe = sanitize(name)
    if len(safe) <= limit and safe == name:
        return safe
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    if len(safe) <= limit:
        return safe
    return f"{safe[: limit - 9].rstrip('-')}-{digest}"


def build_run_name(release: str, revision: int) -> str:
    return _fit(f"{release}-{revision}")


def build_pod_name(run_name: str, test_name: str) -> str:
    return _fit(f"{run_name}-{test_name}")


def label_value(value: str) -> str:
    """A valid label value (≤63, alphanumeric at both ends)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", value).strip("-._")
    if len(safe) <= MAX_NAME:
        return safe
    return f"{safe[:54].rstrip('-._')}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"
