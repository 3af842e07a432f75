"""The per-key work queue: duplicates collapse, delays hold, one worker per key, a key changed while it is
being processed runs once more, a failure is retried later, and stop() ends every worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace

import pytest

from helm_e2e.reconcile import workqueue
from helm_e2e.reconcile.workqueue import WorkQueue

Process = Callable[[str], Awaitable[float | None]]


async def eventually(condition: Callable[[], bool], *, timeout: float = 2.0) -> None:
    """Wait until `condition()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.002)


class Recorder:
    """A `process` that records each call; a key listed in `gates` waits for its gate to open."""

    def __init__(self, *, again: dict[str, float] | None = None) -> None:
        self.calls: list[str] = []
        self.finished: list[str] = []
        self.times: dict[str, list[float]] = {}
        self.again = again or {}
        self.gates: dict[str, asyncio.Event] = {}
        self.running: dict[str, int] = {}
        self.most_at_once: dict[str, int] = {}

    async def __call__(self, key: str) -> float | None:
        self.calls.append(key)
        self.times.setdefault(key, []).append(time.monotonic())
        self.running[key] = self.running.get(key, 0) + 1
        self.most_at_once[key] = max(self.most_at_once.get(key, 0), self.running[key])
        try:
            if key in self.gates:
                await self.gates[key].wait()
        finally:
            self.running[key] -= 1
        self.finished.append(key)
        return self.again.pop(key, None)

    def gate(self, key: str) -> asyncio.Event:
        self.gates[key] = asyncio.Event()
        return self.gates[key]


@pytest.fixture
async def queues() -> AsyncIterator[Callable[..., WorkQueue[str]]]:
    """Started queues, stopped at the end of the test whatever happens."""
    started: list[WorkQueue[str]] = []

    def start(process: Process, *, workers: int = 1) -> WorkQueue[str]:
        queue: WorkQueue[str] = WorkQueue(process, workers=workers)
        queue.start()
        started.append(queue)
        return queue

    yield start
    for queue in started:
        await queue.stop()


async def test_a_key_added_many_times_before_it_runs_is_processed_once(
    queues: Callable[..., WorkQueue[str]],
) -> None:
    recorder = Recorder()
    queue = queues(recorder)
    for key in ("a", "a", "b", "a", "b"):
        queue.add(key)
    queue.add("end", delay=0.02)  # one worker: everything due before it has run when it runs
    await eventually(lambda: "end" in recorder.finished)
    assert recorder.calls == ["a", "b", "end"]


async def test_a_delayed_key_is_not_processed_before_its_delay(queues: Callable[..., WorkQueue[str]]) -> None:
    recorder = Recorder()
    queue = queues(recorder)
    added = time.monotonic()
    queue.add("a", delay=0.1)
    queue.add("b")
    await eventually(lambda: recorder.calls == ["b", "a"])
    assert recorder.times["a"][0] - added >= 0.1


async def test_an_earlier_add_brings_a_delayed_key_forward_and_a_later_one_does_not_postpone_it(
    queues: Callable[..., WorkQueue[str]],
) -> None:
    recorder = Recorder()
    queue = queues(recorder)
    queue.add("forward", delay=60)
    queue.add("forward")
    queue.add("kept")
    queue.add("kept", delay=60)
    await eventually(lambda: sorted(recorder.calls) == ["forward", "kept"], timeout=1.0)
    queue.add("end", delay=0.02)
    await eventually(lambda: "end" in recorder.calls)
    assert sorted(recorder.calls) == ["end", "forward", "kept"]


async def test_the_seconds_process_returns_schedule_the_key_again(
    queues: Callable[..., WorkQueue[str]],
) -> None:
    recorder = Recorder(again={"a": 0.1})  # first pass: "look again in 0.1 s"; second pass: done
    queue = queues(recorder)
    queue.add("a")
    await eventually(lambda: len(recorder.finished) == 2)
    first, second = recorder.times["a"]
    assert second - first >= 0.1
    queue.add("end", delay=0.2)
    await eventually(lambda: "end" in recorder.calls)
    assert recorder.calls == ["a", "a", "end"]


async def test_a_key_is_never_processed_by_two_workers_at_once_while_other_keys_are(
    queues: Callable[..., WorkQueue[str]],
) -> None:
    recorder = Recorder()
    gate = recorder.gate("a")
    queue = queues(recorder, workers=4)
    queue.add("a")
    await eventually(lambda: recorder.calls == ["a"])
    queue.add("a")  # changed while running: must wait for the running pass
    queue.add("b")
    await eventually(lambda: "b" in recorder.finished)  # another key is not held up
    assert recorder.calls == ["a", "b"]
    gate.set()
    await eventually(lambda: recorder.finished.count("a") == 2)
    assert recorder.most_at_once["a"] == 1


async def test_a_key_changed_while_it_runs_runs_exactly_once_more_afterwards(
    queues: Callable[..., WorkQueue[str]],
) -> None:
    recorder = Recorder()
    gate = recorder.gate("a")
    queue = queues(recorder, workers=2)
    queue.add("a")
    await eventually(lambda: recorder.calls == ["a"])
    for _ in range(3):
        queue.add("a")
    gate.set()
    await eventually(lambda: recorder.finished.count("a") == 2)
    queue.add("end", delay=0.05)
    await eventually(lambda: "end" in recorder.finished)
    assert recorder.calls.count("a") == 2


class FakeClock:
    """The queue's own clock (its `time` module), moved by the test; asyncio keeps the real one."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


async def test_a_delayed_re_add_of_a_running_key_does_not_hold_up_other_keys(
    monkeypatch: pytest.MonkeyPatch, queues: Callable[..., WorkQueue[str]]
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(workqueue, "time", SimpleNamespace(monotonic=clock.monotonic))
    recorder = Recorder()
    gate = recorder.gate("slow")
    queue = queues(recorder, workers=2)
    queue.add("slow")
    await eventually(lambda: recorder.calls == ["slow"])
    queue.add("slow", delay=5)  # e.g. a resync of the key, scheduled while it is being processed
    clock.now += 10  # ... falls due while the key is still being processed
    queue.add("other")
    await eventually(lambda: "other" in recorder.finished, timeout=1.0)
    assert recorder.calls == ["slow", "other"]
    gate.set()
    await eventually(lambda: recorder.finished.count("slow") == 2)  # and the due pass still happens
    assert recorder.most_at_once["slow"] == 1


async def test_a_key_whose_processing_raises_is_retried_later_and_the_queue_keeps_working(
    monkeypatch: pytest.MonkeyPatch, queues: Callable[..., WorkQueue[str]]
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(workqueue, "time", SimpleNamespace(monotonic=clock.monotonic))
    calls: list[str] = []

    async def process(key: str) -> float | None:
        calls.append(key)
        if key == "bad" and calls.count("bad") == 1:
            raise RuntimeError("the API server is unreachable")
        return None

    queue = queues(process)
    queue.add("bad")
    queue.add("good")
    await eventually(lambda: calls == ["bad", "good"])
    clock.now += 1  # a little later: not retried yet
    queue.add("wake-1")
    await eventually(lambda: "wake-1" in calls)
    assert calls.count("bad") == 1
    clock.now += 60  # much later: retried
    queue.add("wake-2")
    await eventually(lambda: calls.count("bad") == 2)
    assert calls[-2:] in (["bad", "wake-2"], ["wake-2", "bad"])


async def test_stop_cancels_a_key_being_processed_and_ends_every_worker() -> None:
    recorder = Recorder()
    recorder.gate("a")
    queue: WorkQueue[str] = WorkQueue(recorder, workers=3)
    queue.start()
    queue.add("a")
    await eventually(lambda: recorder.calls == ["a"])
    await asyncio.wait_for(queue.stop(), timeout=2)
    assert recorder.running["a"] == 0  # the pass was cancelled, not left hanging
    assert recorder.finished == []
    queue.add("b")
    await asyncio.sleep(0.02)  # nothing may happen after stop(): give it the chance to
    assert recorder.calls == ["a"]


async def test_stop_before_start_is_harmless() -> None:
    queue: WorkQueue[str] = WorkQueue(Recorder())
    await asyncio.wait_for(queue.stop(), timeout=1)
