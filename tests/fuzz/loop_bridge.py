"""Synchronous Hypothesis code driving the asynchronous stack of the test's event loop.

Hypothesis runs a test (and a state machine) synchronously, while Palisade, the Tavus
simulator and their database pools live on the test's event loop. The Hypothesis side
runs in a worker thread and hands each coroutine to the loop, which keeps serving HTTP
in between; nothing of the stack ever runs on two loops or two threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# One step of a fuzzer never takes this long; a hang fails instead of blocking the run.
STEP_TIMEOUT_SECONDS = 60.0


class LoopBridge:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def run(self, awaitable: Awaitable[T]) -> T:
        """Await something on the stack's loop and wait for its result."""

        async def on_loop() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(on_loop(), self._loop).result(STEP_TIMEOUT_SECONDS)

    def call(self, function: Callable[[], T]) -> T:
        """Call a plain function on the stack's loop (the simulator is not thread-safe)."""

        async def on_loop() -> T:
            return function()

        return self.run(on_loop())


async def in_worker_thread(body: Callable[[LoopBridge], None]) -> None:
    """Run synchronous `body` in a worker thread while this loop keeps serving the stack."""
    bridge = LoopBridge(asyncio.get_running_loop())
    await asyncio.to_thread(body, bridge)
