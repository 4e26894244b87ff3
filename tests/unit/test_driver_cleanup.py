"""A driver connection's return to the pool runs to its end even when the request that
held it is cancelled meanwhile; the cancellation comes through after."""

from __future__ import annotations

import asyncio

import pytest

from app.db.driver import _to_completion


async def test_a_cancelled_caller_waits_for_the_cleanup_then_is_cancelled() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def cleanup() -> None:
        started.set()
        await release.wait()
        finished.append("returned to the pool")

    async def caller() -> None:
        await _to_completion(cleanup())
        finished.append("caller went on")  # must not happen: it was cancelled

    task = asyncio.create_task(caller())
    await asyncio.wait_for(started.wait(), timeout=5)
    task.cancel()
    await asyncio.sleep(0)  # the cancellation reaches the caller; the cleanup still waits
    assert not task.done()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)
    assert finished == ["returned to the pool"]


async def test_without_cancellation_the_cleanup_simply_runs() -> None:
    ran: list[bool] = []

    async def cleanup() -> None:
        ran.append(True)

    await _to_completion(cleanup())
    assert ran == [True]
