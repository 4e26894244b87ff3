"""Background work claimed from the database under a lease, pass after pass.

The reconciler (sessions) and the warm pool (pooled PALs) work the same way: each pass
claims due rows with ``FOR UPDATE SKIP LOCKED`` and a lease
(``app.db.repositories.leases``), acts on Tavus outside any transaction, and writes the
outcome only while it still holds the lease. This module runs such work: the passes,
the pause between them (cut short by a wake-up, skipped after a full batch), a bounded
drain at shutdown and the hand-back of every lease; and the one backoff schedule a failed
attempt is retried on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

logger = logging.getLogger(__name__)


def utcnow() -> datetime:
    """The clock leases, due times and backoffs are read on."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Backoff:
    """Retry after ``base``, doubling with each attempt, never longer than ``cap``."""

    base: timedelta
    cap: timedelta

    def after(self, attempt: int) -> timedelta:
        """The wait before retry number ``attempt`` (the first retry is 1)."""
        factor: int = 2 ** min(max(attempt - 1, 0), 30)
        wait: timedelta = min(self.base * factor, self.cap)
        return wait


class LeasedWork(Protocol):
    """One kind of background work."""

    name: str

    def tick(self) -> Awaitable[int]:
        """One pass; how many rows it claimed (a full batch asks for the next pass at
        once)."""

    async def release(self) -> None:
        """Hand back every lease this process holds (once, at shutdown)."""


@dataclass(frozen=True)
class LoopConfig:
    tick: timedelta
    # Rows one pass claims at most.
    batch: int
    # How long an unfinished pass may go on once stopping.
    drain_timeout: timedelta


class LeasedLoop:
    def __init__(
        self, work: LeasedWork, config: LoopConfig, *, wake: asyncio.Event | None = None
    ) -> None:
        self.work = work
        self.config = config
        # Set to start the next pass now instead of after ``tick`` (work just fell due).
        self.wake = wake or asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Pass after pass until ``stop`` is set; then hand back every lease."""
        try:
            while not stop.is_set():
                self.wake.clear()
                claimed = await self._pass_unless_stopped(stop)
                if claimed is None:
                    return
                if claimed < self.config.batch:
                    await self._pause(stop)
        finally:
            await self.work.release()

    async def _pause(self, stop: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
        try:
            await asyncio.wait(
                waits, timeout=self.config.tick.total_seconds(), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waits:
                waiter.cancel()

    async def _pass_unless_stopped(self, stop: asyncio.Event) -> int | None:
        """One pass (the rows it claimed); if ``stop`` comes first, the pass may finish
        within the drain bound, and None says the loop is over."""
        work = asyncio.ensure_future(self._logged_pass())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if work.done():
            return work.result()
        await asyncio.wait({work}, timeout=self.config.drain_timeout.total_seconds())
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
        return None

    async def _logged_pass(self) -> int:
        try:
            return await self.work.tick()
        except Exception:
            # The leases run out and a later pass retries; never lose the loop.
            logger.exception("%s pass failed", self.work.name)
            return 0
