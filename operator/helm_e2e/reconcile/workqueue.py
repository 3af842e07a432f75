"""A small per-key work queue: deduplicated, delayed re-queue, one worker per key at a time.

kopf timers would put a finalizer on every E2ERun (a run could then not be deleted while the operator is
down), so stateless watch events feed this queue instead, as controller-runtime does.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger(__name__)
K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self, process: Callable[[K], Awaitable[float | None]], *, workers: int = 4) -> None:
        """`process(key)` returns seconds until the key should be looked at again, or None."""
        self._process = process
        self._workers = workers
        self._heap: list[tuple[float, int, K]] = []
        self._due: dict[K, float] = {}
        self._active: set[K] = set()
        self._dirty: set[K] = set()
        self._wakeup = asyncio.Event()
        self._counter = 0
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, key: K, *, delay: float = 0.0) -> None:
        due = time.monotonic() + delay
        if key in self._active and delay == 0:
            self._dirty.add(key)  # re-run right after the current pass
            return
        if key in self._due and self._due[key] <= due:
            return
        self._due[key] = due
        self._counter += 1
        heapq.heappush(self._heap, (due, self._counter, key))
        self._wakeup.set()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self._workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _next(self) -> K:
        while True:
            now = time.monotonic()
            while self._heap:
                due, _, key = self._heap[0]
                if self._due.get(key) != due:  # superseded by an earlier add
                    heapq.heappop(self._heap)
                    continue
                if due > now:
                    break
                heapq.heappop(self._heap)
                del self._due[key]
                if key in self._active:  # due while being processed: run again right after that pass,
                    self._dirty.add(key)  # and do not hold up the other due keys behind it
                    continue
                return key
            timeout = max(0.0, self._heap[0][0] - now) if self._heap else None
            self._wakeup.clear()
            # asyncio.timeout, not wait_for: every add wakes each idle worker, and wait_for made a task and
            # a timer for each of them each time (a profile of `make bench-scale`)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout or None):
                    await self._wakeup.wait()

    async def _worker(self) -> None:
        while True:
            key = await self._next()
            self._active.add(key)
            again: float | None
            try:
                again = await self._process(key)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad key must not stop the queue; retry it later
                log.exception("reconcile.failed", key=str(key))
                again = 10.0
            finally:
                self._active.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self.add(key)
            elif again is not None:
                self.add(key, delay=again)
            self._wakeup.set()
