"""Scheduled re-verification: when a suite is due (pure), and the scheduler through the fake Kube port."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from controller_harness import NS, RUN, deploy, deployed_secret, make_controller, passing_hook
from fake_kube import Clock, FakeKube
from hypothesis import given
from hypothesis import strategies as st

from helm_e2e.core.lifecycle import schedule
from helm_e2e.core.model.suite import Suite, SuiteSchedule
from helm_e2e.core.plan.build import validate_suite
from helm_e2e.errors import SuiteInvalid
from helm_e2e.runtime.scheduler import Scheduler

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def suite(cron: str = "*/30 * * * *", *, since: datetime = T0, tz: str = "UTC") -> schedule.ScheduledSuite:
    return schedule.ScheduledSuite("shop", "api", SuiteSchedule(cron=cron, time_zone=tz), since)


@pytest.mark.parametrize(
    ("now", "due"),
    [
        (T0 + timedelta(minutes=10), None),  # no slot since the last one
        (T0 + timedelta(minutes=30), T0 + timedelta(minutes=30)),  # exactly on the slot
        (T0 + timedelta(minutes=31), T0 + timedelta(minutes=30)),
        (
            T0 + timedelta(hours=5, minutes=7),
            T0 + timedelta(hours=5),
        ),  # down for hours: the latest slot, once
    ],
)
def test_the_latest_slot_after_the_last_one_is_due(now: datetime, due: datetime | None) -> None:
    assert schedule.decide_due(suite(), now=now) == due


def test_the_time_zone_decides_which_hour_a_daily_schedule_means() -> None:
    daily = suite("0 9 * * *", tz="Europe/Berlin", since=datetime(2026, 11, 24, 9, tzinfo=UTC))
    assert schedule.decide_due(daily, now=datetime(2026, 11, 25, 8, 30, tzinfo=UTC)) == datetime(
        2026, 11, 25, 8, tzinfo=UTC
    )


@given(down=st.integers(0, 60 * 24 * 3), step=st.sampled_from(["*/5", "*/30", "0", "17"]))
def test_missed_slots_run_once_and_then_nothing_is_due_until_the_next_slot(down: int, step: str) -> None:
    now = T0 + timedelta(minutes=down)
    s = suite(f"{step} * * * *")
    due = schedule.decide_due(s, now=now)
    if due is None:
        return
    assert s.since < due <= now
    after = schedule.ScheduledSuite(s.namespace, s.name, s.schedule, due)
    assert schedule.decide_due(after, now=now) is None
    assert schedule.next_slot(after, now=now) > now


@pytest.mark.parametrize(
    ("raw", "problem"),
    [({"cron": "every day"}, "not a cron"), ({"cron": "* * * * *", "timeZone": "Mars/Base"}, "time zone")],
)
def test_a_bad_schedule_makes_the_suite_invalid(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(SuiteInvalid, match=problem):
        validate_suite(Suite(name="api", namespace="shop", spec={"schedule": raw, "tests": []}))


@pytest.mark.parametrize(
    ("spec", "applications"),
    [({}, False), ({"applications": {"names": ["web"]}}, True), ({"releases": {"charts": ["web"]}}, False)],
)
def test_a_scheduled_suite_says_whether_it_reverifies_argo_cd_applications(
    spec: dict[str, Any], applications: bool
) -> None:
    body = suite_body("0 * * * *", created=T0)
    body["spec"].update(spec)
    found = schedule.scheduled_suite(body)
    assert found is not None
    assert found.applications is applications


def suite_body(cron: str, *, created: datetime, last: datetime | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": "api", "namespace": NS, "creationTimestamp": created.isoformat()},
        "spec": {
            "schedule": {"cron": cron},
            "tests": [{"name": "api", "template": {"containers": [{"name": "t", "image": "busybox"}]}}],
        },
    }
    if last:
        body["status"] = {"lastScheduleTime": last.isoformat()}
    return body


async def test_a_due_schedule_runs_the_suites_tests_once_as_a_new_attempt(
    kube: FakeKube, clock: Clock
) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    kube.runs[(NS, RUN)]["status"] = {"phase": "Succeeded"}  # a schedule never stacks on an active run
    body = suite_body("*/30 * * * *", created=clock.now - timedelta(hours=3))
    kube.suites[NS] = [body]
    scheduler = Scheduler(controller=controller, clock=clock)
    scheduler.observe("ADDED", body)
    assert await scheduler.tick() == 1  # 3 hours of missed slots: one run
    assert await scheduler.tick() == 0
    restarted = Scheduler(controller=make_controller(kube, clock), clock=clock)  # after kill -9
    restarted.observe("ADDED", kube.suites[NS][0])  # with the lastScheduleTime it wrote
    assert await restarted.tick() == 0
    runs = sorted(name for _, name in kube.runs)
    assert runs == [RUN, "web-1-r2"]
    spec = kube.runs[(NS, "web-1-r2")]["spec"]
    assert spec["request"]["trigger"] == "schedule"
    assert [t["name"] for t in spec["tests"]] == ["api"]  # the suite's tests, not the chart's hooks
    assert "lastScheduleTime" in kube.suites[NS][0]["status"]
    assert 0 < restarted.sleep_seconds() <= 30 * 60


async def test_a_slot_is_skipped_while_the_revisions_run_is_still_active(
    kube: FakeKube, clock: Clock
) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    body = suite_body("*/30 * * * *", created=clock.now - timedelta(hours=1))
    scheduler = Scheduler(controller=controller, clock=clock)
    scheduler.observe("ADDED", body)
    kube.suites[NS] = [body]
    assert await scheduler.tick() == 1
    assert list(kube.runs) == [(NS, RUN)]
    assert await scheduler.tick() == 0  # the slot was consumed: no run piles up behind the active one


async def test_a_lost_status_write_never_makes_a_second_run_for_the_same_slot(
    kube: FakeKube, clock: Clock
) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    kube.runs[(NS, RUN)]["status"] = {"phase": "Succeeded"}  # a schedule never stacks on an active run
    body = suite_body("*/30 * * * *", created=clock.now - timedelta(hours=1))
    kube.suites[NS] = [body]
    for _ in range(2):  # the same body twice: as if the status write was lost
        scheduler = Scheduler(controller=controller, clock=clock)
        scheduler.observe("ADDED", body)
        await scheduler.tick()
    assert sorted(name for _, name in kube.runs) == [RUN, "web-1-r2"]


async def test_the_scheduler_task_wakes_up_for_a_suite_it_observes_and_stops_cleanly(
    kube: FakeKube, clock: Clock
) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    kube.runs[(NS, RUN)]["status"] = {"phase": "Succeeded"}
    body = suite_body("*/30 * * * *", created=clock.now - timedelta(hours=1))
    kube.suites[NS] = [body]
    scheduler = Scheduler(controller=controller, clock=clock)
    scheduler.start()
    await asyncio.sleep(0.05)  # asleep: it knows no suite yet
    scheduler.observe(None, body)  # the watch's initial listing
    for _ in range(100):
        if (NS, "web-1-r2") in kube.runs:
            break
        await asyncio.sleep(0.01)
    await scheduler.stop()
    assert (NS, "web-1-r2") in kube.runs


async def test_an_older_last_schedule_time_written_by_hand_is_honoured(kube: FakeKube, clock: Clock) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    kube.runs[(NS, RUN)]["status"] = {"phase": "Succeeded"}
    scheduler = Scheduler(controller=controller, clock=clock)
    scheduler.observe("ADDED", suite_body("*/30 * * * *", created=clock.now))  # new: nothing due
    assert await scheduler.tick() == 0
    scheduler.observe(
        "MODIFIED", suite_body("*/30 * * * *", created=clock.now, last=clock.now - timedelta(days=1))
    )
    assert await scheduler.tick() == 1
