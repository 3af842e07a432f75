"""The outbox of a finished run's report (pure): one state machine for every channel, the e-mail and each
webhook target, each with its state in `status.notifications[]` (the e-mail's as target `@mail`).

A channel goes (none) → Sending → Sent | Retrying → Sending → ... | Failed, or straight to Skipped when it is
decided not to send (the e-mail only: no recipients, SMTP off, ...; the reason is kept). The intents
(Sending) of every channel due are written in one status write with the run's resourceVersion; the sends
happen on the next pass, one channel per action, and each outcome is recorded at once with a write that
cannot conflict, so a conflict after a send never leads to a second send. A crash between send and record
sends again, with the same Message-ID (the e-mail) or CloudEvent id (a webhook): a repeat is recognisable.

The channels differ only in how the shell renders and sends them (reconcile/deliver.py). The user-visible
EmailSent condition is derived from the e-mail's channel on every write; a run written before this outbox
(its e-mail's state only in that condition and `status.emailAttempts`) is read through `channels`, so a sent
report is never sent again after an upgrade and a retry in progress continues.

The targets themselves (URL, type, signing key) are defined by the admin in a Secret; `parse_targets`
reads that Secret's decoded data. A suite only names targets, it can never give a URL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from helm_e2e.core.model import names
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import (
    Condition,
    NotificationState,
    NotificationStatus,
    RunPhase,
    RunStatus,
)
from helm_e2e.core.outcomes.report import decide_recipients
from helm_e2e.core.results.run_tests import get_condition, set_condition

MAIL = names.MAIL_CHANNEL
MAX_BACKOFF_SECONDS = 300.0
DONE = frozenset({NotificationState.SENT, NotificationState.FAILED, NotificationState.SKIPPED})
# EmailSent reasons of the versions before this outbox that meant "done, never sent"
_LEGACY_SKIPS = frozenset(
    {
        names.MAIL_DISABLED,
        names.MAIL_NO_TESTS,
        names.MAIL_NOT_REPORTED,
        names.MAIL_ONLY_ON_FAILURE,
        names.MAIL_NO_RECIPIENTS,
    }
)
_FINAL_PHASES = frozenset(p.value for p in RunPhase if p.is_final)
_LEGACY_STATES = {s.value: s for s in NotificationState if s != NotificationState.SKIPPED}


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
class OutboxPolicy:
    """The settings the outbox depends on."""

    mail_to: tuple[str, ...] = ()
    smtp_enabled: bool = False
    report_cancelled: bool = False
    webhooks: tuple[str, ...] = ()  # the operator's default targets
    mail_retry_base_seconds: float = 2.0
    webhook_retry_base_seconds: float = 2.0
    mail_allowed_domains: frozenset[str] | None = None  # a run's own report.to is checked again (None: not)

    def retry_base_seconds(self, channel: str) -> float:
        return self.mail_retry_base_seconds if channel == MAIL else self.webhook_retry_base_seconds


@dataclass(frozen=True)
class Step:
    """What the outbox does on this pass: a status write (intents and skips) first, or the sends."""

    write: RunStatus | None = None  # the intents (Sending) and skips to record now; nothing is sent
    skipped: str = ""  # the e-mail is skipped by this write, why (counted once it is written)
    send: tuple[str, ...] = ()  # channels in Sending: one delivery each
    recipients: tuple[str, ...] = ()  # the e-mail's, when it is sent
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


# --- one rule: whether a run is reported, and whether it is fully reported ---------------------------------
def not_reported(run: Run, *, report_cancelled: bool) -> str:
    """Why no channel reports this run ('' when they do): not final, no tests, a Cancelled/Superseded run
    when those are not reported, a success when every suite asked for failures only."""
    phase = run.status.phase
    if not phase.is_final:
        return "NotFinished"
    if phase == RunPhase.NO_TESTS:
        return names.MAIL_NO_TESTS
    if phase in (RunPhase.CANCELLED, RunPhase.SUPERSEDED) and not report_cancelled:
        return names.MAIL_NOT_REPORTED
    if phase == RunPhase.SUCCEEDED and run.spec.report.only_on_failure:
        return names.MAIL_ONLY_ON_FAILURE
    return ""


def is_fully_reported(status: RunStatus) -> bool:
    """Final, and every channel done: the e-mail's (always recorded, if only as Skipped) and every webhook's
    (their intents are written with the e-mail's)."""
    found = channels(status)
    return status.phase.is_final and MAIL in found and all(c.state in DONE for c in found.values())


def settled_body(body: Mapping[str, Any]) -> bool:
    """`is_fully_reported` of an E2ERun's body (the watch cache's predicate); a body that does not parse is
    not settled (it is read from the API, as before)."""
    status = body.get("status") or {}
    if status.get("phase") not in _FINAL_PHASES:
        return False  # the cheap test first: most events are of runs in flight
    try:
        return is_fully_reported(RunStatus.model_validate(status))
    except ValidationError:
        return False


def backoff(attempts: int, *, base_seconds: float) -> float:
    """Seconds before the next attempt after `attempts` failed ones: exponential, bounded (every channel)."""
    delay: float = base_seconds * 2 ** min(attempts, 8)
    return min(MAX_BACKOFF_SECONDS, delay)


# --- the channels -----------------------------------------------------------------------------------------
def decide_targets(run: Run, *, defaults: Sequence[str]) -> list[str]:
    """The operator's default targets, then the run's (its suites'); de-duplicated, order kept."""
    return [t for t in dict.fromkeys([*defaults, *run.spec.report.webhooks]) if t != MAIL]


def decide_mail(run: Run, policy: OutboxPolicy) -> tuple[str, list[str]]:
    """Why the e-mail is not sent ('' when it is: the condition's reason otherwise), and to whom."""
    recipients = decide_recipients(run, mail_to=policy.mail_to, allowed_domains=policy.mail_allowed_domains)
    why = not_reported(run, report_cancelled=policy.report_cancelled)
    if why in ("NotFinished", names.MAIL_NO_TESTS):
        return why, recipients
    if not policy.smtp_enabled:
        return names.MAIL_DISABLED, recipients
    if why:
        return why, recipients
    return ("" if recipients else names.MAIL_NO_RECIPIENTS), recipients


def channels(status: RunStatus) -> dict[str, NotificationStatus]:
    """Every channel by name; the e-mail's from the EmailSent condition of a run from before this outbox."""
    found = {n.target: n for n in status.notifications}
    if MAIL not in found and (legacy := _legacy_mail(status)) is not None:
        found[MAIL] = legacy
    return found


def _legacy_mail(status: RunStatus) -> NotificationStatus | None:
    cond = get_condition(status, names.COND_EMAIL_SENT)
    if cond is None:
        return None
    if cond.reason in _LEGACY_SKIPS:
        state, reason = NotificationState.SKIPPED, cond.reason
    elif cond.reason in _LEGACY_STATES:
        state, reason = _LEGACY_STATES[cond.reason], ""
    else:
        return None  # not one this operator wrote: decided again
    return NotificationStatus(
        target=MAIL,
        state=state,
        type=names.MAIL_CHANNEL_TYPE,
        reason=reason,
        attempts=status.email_attempts,
        next_attempt_at=status.email_next_attempt_at if state == NotificationState.RETRYING else None,
        message=cond.message,
        last_transition_time=cond.last_transition_time,
    )


def decide_outbox(run: Run, *, now: datetime, policy: OutboxPolicy) -> Step:
    """Per channel: done (Sent, Failed, Skipped), send (Sending), wait (Retrying, not due), begin (new, or
    due), or skip (the e-mail, when it is not to be sent; decided again until it is done)."""
    if not run.status.phase.is_final:
        return Step()
    found = channels(run.status)
    skip, recipients = decide_mail(run, policy)
    reported = not not_reported(run, report_cancelled=policy.report_cancelled)
    webhooks = decide_targets(run, defaults=policy.webhooks) if reported else []
    mail_done = MAIL in found and found[MAIL].state in DONE
    pending = [n for n in ([] if skip else [MAIL]) + webhooks if n not in found or found[n].state not in DONE]
    begin, send, waits = _sort(pending, found, now)
    wait = min(waits) if waits else None
    skipping = skip if not mail_done else ""
    if begin or skipping:
        status = with_sending(run.status, begin, now=now)
        status = with_skipped(status, skipping, now=now) if skipping else status
        return Step(write=status, skipped=skipping, wait=wait)
    return Step(send=tuple(send), recipients=tuple(recipients) if MAIL in send else (), wait=wait)


def _sort(
    pending: Sequence[str], found: Mapping[str, NotificationStatus], now: datetime
) -> tuple[list[str], list[str], list[float]]:
    """The channels not done, sorted: to begin (new, or a retry that is due), to send (Sending), and the
    seconds until each retry that is not due."""
    begin: list[str] = []
    send: list[str] = []
    waits: list[float] = []
    for name in pending:
        channel = found.get(name)
        if channel is not None and channel.state == NotificationState.SENDING:
            send.append(name)
        elif channel is not None and channel.next_attempt_at is not None and channel.next_attempt_at > now:
            waits.append((channel.next_attempt_at - now).total_seconds())  # Retrying, not due yet
        else:
            begin.append(name)
    return begin, send, waits


# --- the writes -------------------------------------------------------------------------------------------
def with_sending(status: RunStatus, targets: Sequence[str], *, now: datetime) -> RunStatus:
    """The status with the intent recorded for `targets` (attempts and type kept)."""
    found, new = channels(status), status
    for target in targets:
        old = found.get(target)
        kind = names.MAIL_CHANNEL_TYPE if target == MAIL else (old.type if old else "")
        channel = NotificationStatus(
            target=target,
            state=NotificationState.SENDING,
            type=kind,
            attempts=old.attempts if old else 0,
            message="delivery in progress",
            last_transition_time=now,
        )
        new = _put(new, channel)
    return new


def with_skipped(status: RunStatus, reason: str, *, now: datetime) -> RunStatus:
    """The status with the e-mail decided not to be sent, and why."""
    message = "SMTP is not configured" if reason == names.MAIL_DISABLED else "not sent"
    old = channels(status).get(MAIL)
    channel = NotificationStatus(
        target=MAIL,
        state=NotificationState.SKIPPED,
        type=names.MAIL_CHANNEL_TYPE,
        reason=reason,
        attempts=old.attempts if old else 0,
        message=f"{message}: {reason}",
        last_transition_time=now,
    )
    return _put(status, channel)


def record_outcome(
    status: RunStatus,
    *,
    target: str,
    type: str,
    now: datetime,
    error: str = "",
    permanent: bool = False,
    retry_base_seconds: float,
    delivered: str = "delivered",
) -> tuple[RunStatus, float | None]:
    """The status after one delivery attempt on channel `target`, and when to try again (None: done).
    `delivered`: what the channel's message says of a success."""
    old = channels(status).get(target)
    attempts = old.attempts if old else 0
    if not error:
        channel = NotificationStatus(
            target=target,
            state=NotificationState.SENT,
            type=type,
            attempts=attempts,
            message=delivered,
            last_transition_time=now,
        )
        return _put(status, channel), None
    attempts += 1
    delay = backoff(attempts, base_seconds=retry_base_seconds)
    channel = NotificationStatus(
        target=target,
        state=NotificationState.FAILED if permanent else NotificationState.RETRYING,
        type=type,
        attempts=attempts,
        next_attempt_at=None if permanent else now + timedelta(seconds=delay),
        message=f"attempt {attempts}: {error}"[:500],
        last_transition_time=now,
    )
    return _put(status, channel), None if permanent else delay


def _put(status: RunStatus, channel: NotificationStatus) -> RunStatus:
    """A copy of the status with `channel` in place of its entry (or appended), order kept; the e-mail's
    channel of a run from before this outbox is taken over, and the EmailSent condition follows it."""
    new = status.model_copy(deep=True)
    legacy = _legacy_mail(status) if all(n.target != MAIL for n in status.notifications) else None
    entries = [*new.notifications, *([legacy] if legacy is not None else [])]
    if any(n.target == channel.target for n in entries):
        new.notifications = [channel if n.target == channel.target else n for n in entries]
    else:
        new.notifications = [*entries, channel]
    if channel.target == MAIL or legacy is not None:
        new.email_attempts, new.email_next_attempt_at = 0, None  # the channel holds them now
    if channel.target == MAIL:
        new.conditions = set_condition(new.conditions, mail_condition(channel))
    return new


def mail_condition(channel: NotificationStatus) -> Condition:
    """The user-visible EmailSent condition of the e-mail's channel (kubectl columns, the viewer, wait)."""
    known = {NotificationState.SENT: "True", NotificationState.SENDING: "Unknown"}
    status = known.get(channel.state, "False")
    reason = channel.reason if channel.state == NotificationState.SKIPPED else channel.state.value
    return Condition(
        type=names.COND_EMAIL_SENT,
        status=status,
        reason=reason,
        message=channel.message,
        last_transition_time=channel.last_transition_time,
    )
