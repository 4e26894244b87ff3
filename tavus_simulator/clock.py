from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta


class SimClock:
    """Simulated time: ``time_scale`` simulated seconds pass per real second.

    ``now()`` counts simulated seconds since the clock started (or was reset);
    ``wall()`` maps that onto a calendar starting at the real start time, so
    timestamps in responses and webhooks show simulated durations.
    """

    def __init__(self, time_scale: float, real: Callable[[], float] = time.monotonic) -> None:
        self._real = real
        self._scale = time_scale
        self._listeners: list[Callable[[], None]] = []
        self._pinned: float | None = None
        self.reset()

    @property
    def time_scale(self) -> float:
        return self._scale

    def reset(self) -> None:
        self._real_anchor = self._real()
        self._sim_anchor = 0.0
        # Naive UTC: isoformat() on naive datetimes is far cheaper than strftime and
        # yields exactly Tavus's layout.
        self._wall_anchor = datetime.now(UTC).replace(tzinfo=None)
        self._notify()

    def continue_from(self, wall: datetime) -> None:
        """Make the calendar go on from ``wall`` (where an earlier run left it) rather
        than from the real time now; the simulated seconds still count from zero."""
        self._wall_anchor = wall - timedelta(seconds=self.now())

    def now(self) -> float:
        if self._pinned is not None:
            return self._pinned
        return self._sim_anchor + (self._real() - self._real_anchor) * self._scale

    @contextmanager
    def pinned(self, sim_time: float) -> Iterator[None]:
        """Make ``now()`` read ``sim_time`` for the duration of the block.

        Timers run a little after they fall due; pinning stamps what they do with
        the instant they were due, which at a large ``time_scale`` matters.
        """
        previous, self._pinned = self._pinned, sim_time
        try:
            yield
        finally:
            self._pinned = previous

    def wall(self) -> datetime:
        return self._wall_anchor + timedelta(seconds=self.now())

    def real_delay(self, sim_seconds: float) -> float:
        return max(sim_seconds, 0.0) / self._scale

    def advance(self, sim_seconds: float) -> None:
        """Jump simulated time forward; timers that fall due fire at once."""
        if sim_seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        self._sim_anchor += sim_seconds
        self._notify()

    def set_time_scale(self, time_scale: float) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        # Rebase so simulated time is continuous across the change.
        self._sim_anchor = self.now()
        self._real_anchor = self._real()
        self._scale = time_scale
        self._notify()

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()


def iso_z(moment: datetime) -> str:
    """Webhook/conversation style: ``2025-07-11T06:45:47.472000Z``."""
    return moment.isoformat(timespec="microseconds") + "Z"


def iso_naive(moment: datetime) -> str:
    """PAL style: ``2026-07-14T17:00:00.000000`` (no zone suffix)."""
    return moment.isoformat(timespec="microseconds")
