"""Scheduled re-verification in the shell: one asyncio task that sleeps until the next due slot of any
scheduled E2ESuite it has seen (from the e2esuite watch), then asks the controller for one more run of
each matching release's deployed revision (and of each Argo CD application's latest tested sync, for a suite
with `spec.applications`). No kopf timers: they would put finalizers on our objects.

Bounded work per wake-up (MAX_DUE_PER_WAKE suites); the rest are due at the next, immediate, wake-up.
Every slot is recorded in the suite's `status.lastScheduleTime` after its runs were requested; a crash in
between repeats the request, which the slot's token (`<suite>@<slot>`) turns into a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import structlog

from helm_e2e.core.lifecycle import schedule
from helm_e2e.core.model.run import RequestTrigger, RunRequest
from helm_e2e.reconcile import application_reruns
from helm_e2e.reconcile.controller import Controller

log = structlog.get_logger(__name__)
MAX_DUE_PER_WAKE = 10
MAX_SLEEP_SECONDS = 300.0  # wake up now and then even when nothing changes (clock jumps)
ERROR_BACKOFF_SECONDS = 30.0
SuiteKey = tuple[str, str]


class Scheduler:
    def __init__(self, *, controller: Controller, clock: Callable[[], datetime]) -> None:
        self.controller = controller
        self.now = clock
        self.suites: dict[SuiteKey, schedule.ScheduledSuite] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ran: dict[SuiteKey, datetime] = {}  # the last slot run here, per suite

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """An e2esuite watch event: remember (or forget) the suite's schedule and re-plan the sleep."""
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        suite = schedule.scheduled_suite(body) if event_type != "DELETED" else None
        known = self.suites.get(key)
        if suite is None:
            if self.suites.pop(key, None) is not None:
                log.info("schedule.removed", suite=key[1], namespace=key[0])
        else:  # an event from before our own lastScheduleTime write must not make that slot due again
            ran = self._ran.get(key)
            self.suites[key] = replace(suite, since=max(suite.since, ran)) if ran else suite
            if known is None or known.schedule != suite.schedule or known.since != self.suites[key].since:
                log.info(
                    "schedule.known",
                    suite=key[1],
                    namespace=key[0],
                    cron=suite.schedule.cron,
                    since=self.suites[key].since.isoformat(),
                )
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="helm-e2e-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            delay = await self._wake_up()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _wake_up(self) -> float:
        try:
            await self.tick()
        except Exception as e:  # an API error: the slot stays due and is tried again after a pause
            log.warning("schedule.failed", error=type(e).__name__, detail=str(e)[:300])
            return ERROR_BACKOFF_SECONDS
        return self.sleep_seconds()

    def sleep_seconds(self) -> float:
        now = self.now()
        if any(schedule.decide_due(s, now=now) for s in self.suites.values()):
            return 0.0
        slots = [schedule.next_slot(s, now=now) for s in self.suites.values()]
        wait = min(((slot - now).total_seconds() for slot in slots), default=MAX_SLEEP_SECONDS)
        return max(0.0, min(wait, MAX_SLEEP_SECONDS))

    async def tick(self) -> int:
        """Run the due slots of at most MAX_DUE_PER_WAKE suites; how many were run."""
        now = self.now()
        due = [(s, slot) for s in self.suites.values() if (slot := schedule.decide_due(s, now=now))]
        for suite, slot in due[:MAX_DUE_PER_WAKE]:
            await self.fire(suite, slot)
        return min(len(due), MAX_DUE_PER_WAKE)

    async def fire(self, suite: schedule.ScheduledSuite, slot: datetime) -> None:
        token = schedule.schedule_token(suite.name, slot)
        request = RunRequest(trigger=RequestTrigger.SCHEDULE, token=token, suite=suite.name)
        started = []
        for release in await self.controller.kube.list_release_names(suite.namespace):
            if name := await self.controller.request_attempt(suite.namespace, release, request):
                started.append(name)
        if suite.applications:  # and the latest tested sync of the Argo CD applications it selects
            started += await application_reruns.request_scheduled(self.controller, suite.namespace, request)
        await self.controller.kube.patch_suite_status(
            suite.namespace, suite.name, {"lastScheduleTime": slot.isoformat()}
        )
        key = (suite.namespace, suite.name)
        self._ran[key] = slot
        if key in self.suites:
            self.suites[key] = replace(self.suites[key], since=max(slot, self.suites[key].since))
        log.info(
            "schedule.fired", suite=suite.name, namespace=suite.namespace, slot=slot.isoformat(), runs=started
        )
