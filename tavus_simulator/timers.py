from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Callable

from tavus_simulator.clock import SimClock

logger = logging.getLogger(__name__)


class Timer:
    __slots__ = ("callback", "cancelled", "due")

    def __init__(self, due: float, callback: Callable[[], None]) -> None:
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class TimerQueue:
    """Callbacks due at simulated instants, fired by one background task.

    One heap instead of a loop timer per callback, so that ``SimClock.advance``
    and a change of ``time_scale`` only need to wake a single task.
    """

    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._cancelled_hint = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        clock.on_change(self._wake.set)

    def call_at(self, due: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(due, callback)
        earliest = not self._heap or due < self._heap[0][0]
        heapq.heappush(self._heap, (due, next(self._seq), timer))
        if earliest:
            self._wake.set()
        return timer

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self.call_at(self._clock.now() + delay, callback)

    def cancel(self, timer: Timer | None) -> None:
        if timer is not None and not timer.cancelled:
            timer.cancel()
            self._cancelled_hint += 1
            # Cancelled entries stay in the heap until due; rebuild when they dominate.
            if self._cancelled_hint > 1024 and self._cancelled_hint * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled_hint = 0

    def clear(self) -> None:
        for _, _, timer in self._heap:
            timer.cancel()
        self._heap.clear()
        self._cancelled_hint = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="tavus-sim-timers"
            )

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def fire_due(self) -> None:
        now = self._clock.now()
        while self._heap and self._heap[0][0] <= now:
            _, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                self._cancelled_hint = max(self._cancelled_hint - 1, 0)
                continue
            timer.cancelled = True
            try:
                with self._clock.pinned(timer.due):
                    timer.callback()
            except Exception:
                logger.exception("simulator timer callback failed")

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            self.fire_due()
            timeout = None
            if self._heap:
                timeout = self._clock.real_delay(self._heap[0][0] - self._clock.now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
