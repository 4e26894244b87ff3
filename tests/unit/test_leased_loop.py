"""The one runner of background work claimed under a lease, and its backoff."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from app.domain.leased_loop import Backoff, LeasedLoop, LoopConfig


def test_backoff_doubles_from_its_base_up_to_its_cap() -> None:
    backoff = Backoff(timedelta(seconds=2), timedelta(seconds=30))
    assert [backoff.after(n).total_seconds() for n in (1, 2, 3, 4, 5, 50, 10_000)] == [
        2,
        4,
        8,
        16,
        30,
        30,
        30,
    ]


class Work:
    name = "test work"

    def __init__(self, batches: list[int], fail_on: int | None = None) -> None:
        self.batches = batches
        self.fail_on = fail_on
        self.passes = 0
        self.released = 0
        self.done = asyncio.Event()

    async def tick(self) -> int:
        self.passes += 1
        if self.passes == self.fail_on:
            raise RuntimeError("one bad pass")
        if not self.batches:
            self.done.set()
            await asyncio.Event().wait()  # a pass still running when the loop stops
        return self.batches.pop(0)

    async def release(self) -> None:
        self.released += 1


CONFIG = LoopConfig(tick=timedelta(hours=1), batch=10, drain_timeout=timedelta(seconds=0.05))


async def test_a_full_batch_asks_for_the_next_pass_at_once() -> None:
    work = Work([10, 10, 10])
    stop = asyncio.Event()
    loop = asyncio.create_task(LeasedLoop(work, CONFIG).run(stop))
    # Three full batches, then a pass that is still running: no pause of an hour between.
    await asyncio.wait_for(work.done.wait(), timeout=5)
    stop.set()
    await asyncio.wait_for(loop, timeout=5)
    assert work.passes == 4
    assert work.released == 1


async def test_a_wake_cuts_the_pause_short_and_a_failed_pass_is_not_the_end() -> None:
    work = Work([0, 0, 0], fail_on=2)
    stop = asyncio.Event()
    runner = LeasedLoop(work, CONFIG)
    loop = asyncio.create_task(runner.run(stop))

    async def keep_waking() -> None:
        while not work.done.is_set():
            runner.wake.set()
            await asyncio.sleep(0.005)

    # Without the wakes each pause would last the hour of CONFIG.tick.
    await asyncio.wait_for(keep_waking(), timeout=5)
    stop.set()
    await asyncio.wait_for(loop, timeout=5)
    assert work.passes == 5  # three empty passes, the failed one, the one still running
    assert work.released == 1
