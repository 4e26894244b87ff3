"""Plain SQL on asyncpg connections from the engine's pool, for the session store.

A session start's writes are single statements calling PL/pgSQL functions
(``app.db.session_store``). SQLAlchemy's execution path around such a statement (its
``Connection``, the autocommit switch on checkout and back, the adapter's cursor and
mutex, the greenlet hops) costs more CPU than the round trip it wraps
(docs/benchmarks.md), so the store sends its SQL with asyncpg itself, on a connection
checked out of the engine's pool: the pool's liveness check, LIFO order and recycling
still apply, and a connection in the pool is never inside a transaction, so each
statement commits by itself unless ``transaction()`` wraps it.

The error tree is SQLAlchemy's: a driver error is raised as ``DBAPIError``, so
``app.db.errors`` tells an unreachable database (503) from a bug (500) as for any other
statement, and a connection a failure may have broken is never pooled again. Observers
see each statement's SQL (``app.db.instrumentation``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

# Called with each statement's SQL just before it is sent.
StatementObserver = Callable[[str], None]


class RawConnections:
    """Hands out the asyncpg connections of ``engine``'s pool."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.observers: list[StatementObserver] = []

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[RawConnection]:
        pooled = await self.engine.raw_connection()
        connection = RawConnection(self, pooled.driver_connection)
        try:
            yield connection
        except BaseException:
            if connection.broken:
                # Not handed out again: the next checkout opens a fresh connection.
                pooled.invalidate()
            raise
        finally:
            # Returning a connection can close it (an overflow one, to a full pool), and
            # the adapter's close waits on asyncpg from inside SQLAlchemy's greenlet.
            await _to_completion(greenlet_spawn(pooled.close))


async def _to_completion(cleanup: Coroutine[Any, Any, None]) -> None:
    """Run ``cleanup`` to its end even if the caller is cancelled meanwhile, then let the
    cancellation through: a connection half returned would leave the pool's count wrong
    (SQLAlchemy's own connections are closed this way)."""
    task = asyncio.ensure_future(cleanup)
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as error:
            if task.done():
                raise
            cancelled = error
        else:
            break
    if cancelled is not None:
        raise cancelled


class RawConnection:
    def __init__(self, pool: RawConnections, connection: asyncpg.Connection) -> None:
        self.pool = pool
        self._connection = connection
        # Set when a failure may have left the connection unusable.
        self.broken = False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """The statements inside commit together, or not at all."""
        for observe in self.pool.observers:
            observe("BEGIN")
        async with self._connection.transaction():
            yield
        for observe in self.pool.observers:
            observe("COMMIT")

    async def fetchrow(self, sql: str, *arguments: Any) -> Mapping[str, Any] | None:
        """Run ``sql`` and return its first row, if any."""
        for observe in self.pool.observers:
            observe(sql)
        try:
            row: Mapping[str, Any] | None = await self._connection.fetchrow(sql, *arguments)
        except (
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.exceptions.InternalClientError,
        ) as error:
            # A server-side error (a constraint, a cancelled statement) leaves the session
            # usable; a lost connection or a protocol failure does not. The server's
            # "terminating connection" can arrive just before its socket closes: a
            # statement sent in between finds the protocol still consuming that error
            # (InternalClientError) rather than a closed connection.
            self.broken = (
                isinstance(
                    error,
                    asyncpg.InterfaceError
                    | asyncpg.PostgresConnectionError
                    | asyncpg.exceptions.InternalClientError,
                )
                or self._connection.is_closed()
            )
            raise exc.DBAPIError(sql, None, error, connection_invalidated=self.broken) from error
        except (OSError, asyncio.CancelledError):
            # Cancelled mid-statement, the protocol may still be waiting for the server.
            self.broken = True
            raise
        return row
