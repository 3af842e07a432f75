"""The pods' and runs' streams: every event reaches its handler, a handler's or the API's failure loses
one event or one attempt but never the stream, and work handed off runs in order per object."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import kopf
import pytest
from kopf._cogs.clients import watching

from helm_e2e.runtime import lean_watch

PODS = ("", "v1", "pods")


async def test_work_for_one_object_runs_in_order_and_others_at_once() -> None:
    work = lean_watch.KeyedTasks()
    seen: list[str] = []
    gate = asyncio.Event()

    async def step(name: str, *, wait: bool = False) -> None:
        if wait:
            await gate.wait()
        seen.append(name)

    work.add("a", lambda: step("a1", wait=True))
    work.add("a", lambda: step("a2"))
    work.add("b", lambda: step("b1"))
    await asyncio.sleep(0.01)
    assert seen == ["b1"]  # b does not wait behind a; a2 waits behind a1
    gate.set()
    await asyncio.sleep(0.01)
    assert seen == ["b1", "a1", "a2"]
    await work.stop()


async def test_stopping_ends_every_piece_of_work_the_earlier_ones_of_a_chain_too() -> None:
    work = lean_watch.KeyedTasks()
    ended: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.append(name)

    work.add("a", lambda: forever("a1"))
    work.add("a", lambda: forever("a2"))  # waits behind a1: only a1 runs
    await asyncio.sleep(0.01)
    await work.stop()
    assert ended == ["a1"]  # a1 cancelled, not left running behind a cancelled a2


async def test_a_failed_piece_of_work_is_logged_and_the_next_one_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    work = lean_watch.KeyedTasks()
    done: list[int] = []

    async def fail() -> None:
        raise RuntimeError("boom")

    async def ok() -> None:
        done.append(1)

    work.add("a", fail)
    work.add("a", ok)
    await asyncio.sleep(0.01)
    assert done == [1]
    assert "watch.work_failed" in capsys.readouterr().out
    await work.stop()


def fake_watch(rounds: list[list[Any]]) -> Any:
    """kopf's infinite_watch, as a sequence of rounds: a round's items are yielded, an exception raised."""

    async def infinite_watch(**kwargs: Any) -> AsyncIterator[Any]:
        assert kwargs["resource"].plural == "pods"
        assert kwargs["namespace"] == "shop"
        items = rounds.pop(0) if rounds else []
        for item in items:
            if isinstance(item, Exception):
                raise item
            yield item
        if not rounds:
            await asyncio.Event().wait()  # the stream goes on, quietly

    return infinite_watch


async def test_every_event_reaches_the_handler_through_a_failing_handler_and_a_failed_stream(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pod = {"metadata": {"name": "p"}}
    rounds: list[list[Any]] = [
        [{"type": None, "object": pod}, watching.Bookmark.LISTED, {"type": "MODIFIED", "object": {"bad": 1}}],
        [
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}},
            {"type": "DELETED", "object": pod},
        ],
        [RuntimeError("403")],
        [{"type": "ADDED", "object": pod}],
    ]
    monkeypatch.setattr(watching, "infinite_watch", fake_watch(rounds))
    got: list[str] = []

    def handle(type: str, body: Any) -> None:
        if "bad" in body:
            raise KeyError("bad")
        got.append(type)

    task = asyncio.create_task(
        lean_watch.stream(kopf.OperatorSettings(), PODS, "shop", handle, restart_seconds=0.01)
    )
    await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert got == ["ADDED", "DELETED", "ADDED"]  # the listing's object as ADDED; the bookmarks skipped
    out = capsys.readouterr().out
    assert "watch.event_failed" in out
    assert "KeyError" in out
    assert "watch.failed" in out
    assert "'bad'" not in out  # the error's type, never its text (it may quote the object)


async def test_one_stream_per_resource_and_namespace_or_one_for_the_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[tuple[str, str | None]] = []

    async def stream(settings: Any, resource: Any, namespace: str | None, handle: Any) -> None:
        started.append((resource[2], namespace))

    monkeypatch.setattr(lean_watch, "stream", stream)
    handlers = {PODS: lambda t, b: None, ("helm-e2e.dev", "v1alpha1", "e2eruns"): lambda t, b: None}
    tasks = lean_watch.start(kopf.OperatorSettings(), ["a", "b"], handlers)
    await asyncio.gather(*tasks)
    assert sorted(started) == [("e2eruns", "a"), ("e2eruns", "b"), ("pods", "a"), ("pods", "b")]
    started.clear()
    await asyncio.gather(*lean_watch.start(kopf.OperatorSettings(), [], handlers))
    assert sorted(started) == [("e2eruns", None), ("pods", None)]
