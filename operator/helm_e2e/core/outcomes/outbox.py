"""The notification outbox (pure): one channel per webhook target, each with its own state in
`status.notifications[]`, beside the e-mail's EmailSent condition.

A channel goes (none) → Sending → Sent | Retrying → Sending → ... | Failed. The intent (Sending) is written
with the run's resourceVersion; the send happens on the next pass, and its outcome is recorded at once with
a write that cannot conflict, so a conflict after a send never leads to a second send. A crash between send
and record sends again with the same CloudEvent id (`core.webhooks.build_event_id`): a repeat is
recognisable by the receiver.

The targets themselves (URL, type, signing key) are defined by the admin in a Secret; `parse_targets`
reads that Secret's decoded data. A suite only names targets, it can never give a URL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from helm_e2e.core.model.schema import NotificationState, NotificationStatus, Run, RunPhase, RunStatus

MAX_BACKOFF_SECONDS = 300.0
DONE = frozenset({NotificationState.SENT, NotificationState.FAILED})


class TargetType(StrEnum):
    CLOUDEVENTS = "cloudevents"
    SLACK = "slack"
    TEAMS = "teams"


@dataclass(frozen=True)
class Target:
    """One admin-defined notification target. `url` and `signing_key` are secrets: never logged."""

    name: str
    type: TargetType
    url: str
    signing_key: bytes = b""  # HMAC-SHA256 key (the Secret key named by `secretKey`); empty: unsigned

    def __repr__(self) -> str:  # no URL, no key in any log or traceback
        return f"Target(name={self.name!r}, type={self.type.value!r})"


@dataclass(frozen=True)
class Channels:
    """What the outbox does on this pass."""

    begin: tuple[str, ...] = ()  # targets whose intent (Sending) is recorded now
    send: tuple[str, ...] = ()  # targets in Sending: send now
    wait: float | None = None  # seconds until the earliest retry that is not due yet


# --- the targets (from the admin's Secret) ---------------------------------------------------------------
def parse_targets(data: Mapping[str, str]) -> dict[str, Target | str]:
    """Each key of the Secret whose value is a JSON object is a target: `{"type": "cloudevents" | "slack" |
    "teams", "url": "https://...", "secretKey": "<another key of the same Secret: the HMAC key>"}`.

    Returns target name → Target, or → why it is unusable (a problem that names fields, never a value).
    Keys named by a `secretKey` are signing keys, not targets."""
    objects: dict[str, object] = {}
    for key, text in data.items():
        try:
            objects[key] = json.loads(text)
        except ValueError:
            objects[key] = None  # a signing key, or garbage: a target only if it parses
    keys = {o.get("secretKey") for o in objects.values() if isinstance(o, dict)}
    targets: dict[str, Target | str] = {}
    for name, spec in objects.items():
        if name in keys:
            continue
        if not isinstance(spec, dict):
            targets[name] = "is not a JSON object with type and url"
            continue
        targets[name] = _target(name, spec, data)
    return targets


def _target(name: str, spec: dict[str, object], data: Mapping[str, str]) -> Target | str:
    kind, url, key_name = spec.get("type"), spec.get("url"), spec.get("secretKey")
    if kind not in set(TargetType):
        return f"type must be one of {', '.join(t.value for t in TargetType)}"
    if not isinstance(url, str) or not _is_http_url(url):
        return "url must be an absolute http(s) URL"
    if key_name is not None and (not isinstance(key_name, str) or not data.get(key_name)):
        return "secretKey must name another, non-empty key of the same Secret"
    key = data[key_name].encode() if isinstance(key_name, str) else b""
    return Target(name=name, type=TargetType(str(kind)), url=url, signing_key=key)


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c in url for c in "\r\n ")


# --- the outbox decision ----------------------------------------------------------------------------------
def decide_targets(run: Run, *, defaults: Sequence[str]) -> list[str]:
    """The operator's default targets, then the run's (its suites'); de-duplicated, order kept."""
    return list(dict.fromkeys([*defaults, *run.spec.report.webhooks]))


def is_notified(run: Run, *, report_cancelled: bool) -> bool:
    """The same rules as the e-mail: final runs with tests; Cancelled/Superseded only if reported;
    a success not when every suite asked for failures only."""
    phase = run.status.phase
    if not phase.is_final or phase == RunPhase.NO_TESTS:
        return False
    if phase in (RunPhase.CANCELLED, RunPhase.SUPERSEDED) and not report_cancelled:
        return False
    return not (phase == RunPhase.SUCCEEDED and run.spec.report.only_on_failure)


def decide_channels(run: Run, *, defaults: Sequence[str], now: datetime, report_cancelled: bool) -> Channels:
    """Per target: done (Sent, Failed), send (Sending), wait (Retrying, not due) or begin (new, or due)."""
    if not is_notified(run, report_cancelled=report_cancelled):
        return Channels()
    channels = {n.target: n for n in run.status.notifications}
    begin: list[str] = []
    send: list[str] = []
    waits: list[float] = []
    for target in decide_targets(run, defaults=defaults):
        channel = channels.get(target)
        if channel is None:
            begin.append(target)
        elif channel.state == NotificationState.SENDING:
            send.append(target)
        elif channel.state == NotificationState.RETRYING:
            due = channel.next_attempt_at
            if due is not None and (wait := (due - now).total_seconds()) > 0:
                waits.append(wait)
            else:
                begin.append(target)
    return Channels(begin=tuple(begin), send=tuple(send), wait=min(waits) if waits else None)


def with_sending(status: RunStatus, targets: Sequence[str], *, now: datetime) -> RunStatus:
    """The status with the intent recorded for `targets` (attempts and type kept)."""
    new = status.model_copy(deep=True)
    for target in targets:
        old = next((n for n in new.notifications if n.target == target), None)
        channel = NotificationStatus(
            target=target,
            state=NotificationState.SENDING,
            type=old.type if old else "",
            attempts=old.attempts if old else 0,
            message="delivery in progress",
            last_transition_time=now,
        )
        new.notifications = _replace(new.notifications, channel)
    return new


def record_outcome(
    status: RunStatus,
    *,
    target: str,
    type: str,
    now: datetime,
    error: str = "",
    permanent: bool = False,
    retry_base_seconds: float,
) -> tuple[RunStatus, float | None]:
    """The status after one delivery attempt to `target`, and when to try again (None: done)."""
    new = status.model_copy(deep=True)
    old = next((n for n in new.notifications if n.target == target), None)
    attempts = old.attempts if old else 0
    if not error:
        channel = NotificationStatus(
            target=target,
            state=NotificationState.SENT,
            type=type,
            attempts=attempts,
            message="delivered",
            last_transition_time=now,
        )
        new.notifications = _replace(new.notifications, channel)
        return new, None
    attempts += 1
    delay = min(MAX_BACKOFF_SECONDS, retry_base_seconds * 2 ** min(attempts, 8))
    channel = NotificationStatus(
        target=target,
        state=NotificationState.FAILED if permanent else NotificationState.RETRYING,
        type=type,
        attempts=attempts,
        next_attempt_at=None if permanent else now + timedelta(seconds=delay),
        message=f"attempt {attempts}: {error}"[:500],
        last_transition_time=now,
    )
    new.notifications = _replace(new.notifications, channel)
    return new, None if permanent else delay


def _replace(channels: list[NotificationStatus], channel: NotificationStatus) -> list[NotificationStatus]:
    """The list with `channel` in place of its target's entry (or appended), order kept."""
    if any(n.target == channel.target for n in channels):
        return [channel if n.target == channel.target else n for n in channels]
    return [*channels, channel]
