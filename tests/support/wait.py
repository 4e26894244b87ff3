"""Wait for conditions by polling with a deadline, never by sleeping a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class ConditionTimeout(AssertionError):
    pass


async def until(
    probe: Callable[[], Awaitable[T | None]],
    *,
    within: float = 10.0,
    interval: float = 0.02,
    message: str = "condition",
) -> T:
    """Return the first truthy value of ``probe()``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + within
    while True:
        last = await probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise ConditionTimeout(f"{message} not met within {within}s (last value: {last!r})")
        await asyncio.sleep(interval)


def until_sync(
    probe: Callable[[], T | None],
    *,
    within: float = 10.0,
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    deadline = time.monotonic() + within
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise ConditionTimeout(f"{message} not met within {within}s (last value: {last!r})")
        time.sleep(interval)
