"""Scheduled re-verification (pure): when an E2ESuite's `spec.schedule` is due.

Cron expressions are evaluated by `cronsim` (five fields, in the schedule's IANA time zone, DST handled by
the library). A suite remembers the last slot it ran in `status.lastScheduleTime`; a suite that never ran
starts counting at its creation, so creating one runs nothing at once. Slots missed while the operator was
down run **once**: only the latest slot at or before now counts, never one run per missed slot.
A slot re-verifies the deployed revision of each Helm release the suite tests and, for a suite with
`spec.applications`, the latest tested sync of each Argo CD application it tests (core.lifecycle.reruns).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cronsim import CronSim
from pydantic import ValidationError

from helm_e2e.core.model.suite import SuiteSchedule
from helm_e2e.core.results.run_tests import parse_time


@dataclass(frozen=True)
class ScheduledSuite:
    namespace: str
    name: str
    schedule: SuiteSchedule
    since: datetime  # lastScheduleTime, else the suite's creation
    applications: bool = False  # it selects Argo CD applications (spec.applications): re-verify those too


def scheduled_suite(body: Mapping[str, Any]) -> ScheduledSuite | None:
    """An E2ESuite body → its schedule, or None (no schedule, or an invalid one: the Valid condition says)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    raw = spec.get("schedule")
    if not raw:
        return None
    try:
        schedule = SuiteSchedule.model_validate(raw)
    except ValidationError:
        return None
    since = parse_time((body.get("status") or {}).get("lastScheduleTime")) or parse_time(
        meta.get("creationTimestamp")
    )
    return ScheduledSuite(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        schedule=schedule,
        since=since or datetime.fromtimestamp(0, UTC),
        applications=bool(spec.get("applications")),
    )


def _local(schedule: SuiteSchedule, at: datetime) -> datetime:
    return at.astimezone(ZoneInfo(schedule.time_zone))


def decide_due(suite: ScheduledSuite, *, now: datetime) -> datetime | None:
    """The latest slot at or before `now` that is later than `since` (UTC), or None: nothing is due."""
    latest = next(
        CronSim(suite.schedule.cron, _local(suite.schedule, now + timedelta(seconds=1)), reverse=True)
    )
    return latest.astimezone(UTC) if latest > suite.since else None


def next_slot(suite: ScheduledSuite, *, now: datetime) -> datetime:
    """The first slot after max(now, since): when to wake up for this suite."""
    start = max(now, suite.since)
    return next(CronSim(suite.schedule.cron, _local(suite.schedule, start))).astimezone(UTC)


def schedule_token(suite: str, slot: datetime) -> str:
    """The idempotence key of one slot's runs (spec.request.token)."""
    return f"{suite}@{slot.astimezone(UTC).isoformat()}"
