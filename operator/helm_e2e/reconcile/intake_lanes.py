"""New work before old: a start's listing never delays a live revision's run.

At a start (or a relist) kopf hands over every selected Helm Secret at once, as events with no type. Those
that are recent enough to need a run (a restart during a burst) each cost a GET, a sandbox call and a
create, and compete with a revision deployed right now for the same API connections and sandbox workers.
Their intake therefore goes through a narrow lane (at most `lanes` at a time, `START_LANES`) that also
waits while any live event's intake is in flight; a live event's intake never waits here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

START_LANES = 4  # listing intakes at a time: a start's work is bounded, the API and sandbox stay free


class IntakeLanes:
    def __init__(self, lanes: int = START_LANES) -> None:
        self._listed = asyncio.Semaphore(lanes)
        self._live = 0
        self._no_live = asyncio.Event()
        self._no_live.set()

    @contextlib.asynccontextmanager
    async def live(self) -> AsyncIterator[None]:
        """A revision deployed now: goes at once, and holds the listing back while it runs."""
        self._live += 1
        self._no_live.clear()
        try:
            yield
        finally:
            self._live -= 1
            if self._live == 0:
                self._no_live.set()

    @contextlib.asynccontextmanager
    async def listed(self) -> AsyncIterator[None]:
        """A revision found by a (re)list: waits for a lane, and for no live intake to be in flight."""
        async with self._listed:
            await self._no_live.wait()
            yield

    def lane(self, event_type: str | None) -> contextlib.AbstractAsyncContextManager[None]:
        """kopf gives a listed object no event type; a watch event has one (ADDED, MODIFIED)."""
        return self.listed() if event_type is None else self.live()
