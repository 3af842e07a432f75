"""Deterministic, DNS-safe names for runs, pods and tests (pure).

Every name is a lowercase DNS-1123 label (≤ 63 characters, `[a-z0-9-]`, alphanumeric at both ends).
A name that is too long, or that had to be rewritten to become a label, is truncated and suffixed
with `-` and the first 8 hex digits of the SHA-256 of the *original* name: stable across restarts,
and two different inputs never collapse onto the same name.
"""

from __future__ import annotations

import hashlib
import re

from helm_e2e.core.model import names

MAX_NAME = 63  # pod names double as hostnames: keep them DNS labels
_HASH_LEN = 8


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:_HASH_LEN]


def _clean(name: str) -> str:
    """Lowercase, every run of other characters → one `-`, no `-` at either end ("x" if nothing is left)."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return cleaned or "x"


def _hashed(safe: str, original: str) -> str:
    return f"{safe[: MAX_NAME - _HASH_LEN - 1].rstrip('-')}-{_digest(original)}"


def _fit(name: str) -> str:
    safe = _clean(name)
    return safe if safe == name and len(safe) <= MAX_NAME else _hashed(safe, name)


def sanitize_test_name(name: str) -> str:
    """A test name as a DNS label; readable when short (`Web.Smoke` → `web-smoke`), hashed when too long.

    Short names are not hashed, so two hooks may sanitize to the same name: the planner numbers them.
    """
    safe = _clean(name)
    return safe if len(safe) <= MAX_NAME else _hashed(safe, name)


def build_run_name(release: str, revision: int) -> str:
    """`<release>-<revision>`, the E2ERun name; creating it is the per-revision lock."""
    return _fit(f"{release}-{revision}")


def build_pod_name(run_name: str, test_name: str) -> str:
    """`<run>-<test>`: repeated runs of the same test never collide."""
    return _fit(f"{run_name}-{test_name}")


def label_value(value: str) -> str:
    """A valid label value (≤ 63, `[A-Za-z0-9._-]`, alphanumeric at both ends, or empty)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", value).strip("-._")
    if len(safe) <= MAX_NAME:
        return safe
    return f"{safe[: MAX_NAME - _HASH_LEN - 1].rstrip('-._')}-{_digest(value)}"


def run_selector(run: str) -> str:
    """The label selector of one run's test pods, Jobs and hook objects (ours, labelled with the run)."""
    return f"{names.MANAGED_BY_SELECTOR},{names.RUN_LABEL}={label_value(run)}"


def build_attempt_run_name(release: str, revision: int, attempt: int) -> str:
    """A revision's n-th run: `<release>-<revision>` first, then `<release>-<revision>-r<n>`.

    The `r` keeps attempts apart from other revisions: `shop-12-2` would be release `shop-12` revision 2,
    while a first run's name always ends in `-<digits>`, never in `-r<digits>`.
    """
    return build_run_name(release, revision) if attempt <= 1 else _fit(f"{release}-{revision}-r{attempt}")
