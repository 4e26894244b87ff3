"""A raw connection's return to the pool runs to its end even when the request that
held it is cancelled meanwhile; the cancellation comes through after. A connection whose
protocol a failure left unusable is reported lost."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.errors import is_database_unreachable
from app.db.raw import RawConnection, RawConnections, _to_completion


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


class _ConsumingATermination:
    """An asyncpg connection that has read the server's "terminating connection" but not
    yet its closed socket: asyncpg refuses the next statement with InternalClientError."""

    async def fetchrow(self, *args: object) -> None:
        raise asyncpg.exceptions.InternalClientError(
            "cannot switch to state 11; another operation (2) is in progress"
        )

    def is_closed(self) -> bool:
        return False


async def test_a_protocol_left_mid_error_is_a_lost_connection() -> None:
    engine = create_async_engine("postgresql+asyncpg://palisade@127.0.0.1:9/none")
    connection = RawConnection(RawConnections(engine), _ConsumingATermination())
    with pytest.raises(exc.DBAPIError) as raised:
        await connection.fetchrow("SELECT 1")
    assert connection.broken  # invalidated, never handed out again
    assert is_database_unreachable(raised.value)  # 503 database_unavailable, not a 500
    await engine.dispose()
