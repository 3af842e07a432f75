"""reconcile/intake_lanes.py: a start's listing is bounded and waits for live revisions; live ones never wait."""

from __future__ import annotations

import asyncio

from helm_e2e.reconcile.intake_lanes import IntakeLanes


async def test_listed_intakes_run_at_most_lanes_at_a_time() -> None:
    lanes = IntakeLanes(lanes=2)
    running, most = 0, 0

    async def listed() -> None:
        nonlocal running, most
        async with lanes.lane(None):
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.01)
            running -= 1

    await asyncio.gather(*(listed() for _ in range(10)))
    assert most == 2


async def test_a_live_intake_goes_first_and_holds_the_listing_back() -> None:
    lanes = IntakeLanes(lanes=4)
    order: list[str] = []
    live_started, live_may_end = asyncio.Event(), asyncio.Event()

    async def live() -> None:
        async with lanes.lane("ADDED"):
            order.append("live")
            live_started.set()
            await live_may_end.wait()
            order.append("live done")

    async def listed(i: int) -> None:
        await live_started.wait()
        async with lanes.lane(None):
            order.append(f"listed {i}")

    tasks = [asyncio.create_task(live()), *(asyncio.create_task(listed(i)) for i in range(3))]
    await live_started.wait()
    await asyncio.sleep(0.01)
    assert order == ["live"]  # the listing waits while a live intake is in flight
    live_may_end.set()
    await asyncio.gather(*tasks)
    assert order[:2] == ["live", "live done"]
    assert sorted(order[2:]) == ["listed 0", "listed 1", "listed 2"]


async def test_live_intakes_never_wait_for_each_other_or_the_listing() -> None:
    lanes = IntakeLanes(lanes=1)
    entered = 0
    hold = asyncio.Event()

    async def listed() -> None:
        async with lanes.lane(None):
            await hold.wait()  # the only listing lane is taken

    async def live() -> None:
        nonlocal entered
        async with lanes.lane("MODIFIED"):
            entered += 1

    blocker = asyncio.create_task(listed())
    await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*(live() for _ in range(5))), timeout=1)
    assert entered == 5
    hold.set()
    await blocker
