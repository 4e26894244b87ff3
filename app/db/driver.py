"""Statements sent straight to asyncpg, on connections from the engine's pool.

For the session start's two or three writes only. SQLAlchemy's execution path (its
``Connection``, the autocommit isolation switch on checkout and back on return, the
adapter's cursor and mutex, the greenlet hops) costs more CPU than the round trip it
wraps: 0.34 ms against 0.18 ms per statement back to back on the benchmark machine, and
1.04 against 0.52 ms after 20 ms idle, when every cache is cold (docs/benchmarks.md).
So these statements are still built with SQLAlchemy, compiled once by the engine's own
dialect, then sent by asyncpg itself with their parameters converted by the dialect's
own bind processors: the SQL is byte for byte what SQLAlchemy would send.

What stays the same: the pool (checkout liveness test, LIFO, recycling), autocommit
(a connection in the pool is never inside a transaction, so each statement commits by
itself), and the error tree: a driver error is raised as SQLAlchemy's ``DBAPIError``, so
``app.db.errors`` tells an unreachable database (503) from a bug (500) as for any other
statement. What is not the same: result values are the driver's (asyncpg decodes every
type these statements return), and SQLAlchemy's execution events do not fire, so
``observers`` see each statement instead (``app.db.instrumentation``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from cachetools import LRUCache
from sqlalchemy import exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn

# Statement shapes kept compiled per engine; the start path has a handful.
COMPILED_STATEMENTS = 256
# Called with each statement's SQL just before it is sent.
StatementObserver = Callable[[str], None]


@dataclass(frozen=True)
class DriverStatement:
    """A statement compiled for asyncpg: its SQL, its parameters in positional order
    and, for each, the dialect's conversion (None: the value goes as it is). ``fixed``
    holds the values the statement itself carries (literals SQLAlchemy made parameters
    of, as in ``column == "admitted"``)."""

    sql: str
    names: tuple[str, ...]
    converters: tuple[Callable[[Any], Any] | None, ...]
    fixed: Mapping[str, Any]

    @classmethod
    def compile(cls, statement: ClauseElement, dialect: Dialect) -> DriverStatement:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler) or not compiled.positional:
            raise ValueError(f"{dialect.name} does not take positional parameters")
        names = tuple(compiled.positiontup or ())
        binds = [compiled.binds[name] for name in names]
        converters = tuple(
            bind.type.dialect_impl(dialect).bind_processor(dialect) for bind in binds
        )
        fixed = {
            name: bind.effective_value
            for name, bind in zip(names, binds, strict=True)
            if not bind.required
        }
        return cls(compiled.string, names, converters, fixed)

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = {**self.fixed, **params}
        missing = [name for name in self.names if name not in values]
        if missing:
            raise ValueError(f"parameters missing: {', '.join(missing)}")
        return [
            convert(values[name]) if convert is not None else values[name]
            for name, convert in zip(self.names, self.converters, strict=True)
        ]


class Driver:
    """Hands out the driver connections of ``engine``'s pool and compiles statements
    for them, each once."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.observers: list[StatementObserver] = []
        # Bounded all the same: a caller building a statement per call would otherwise
        # grow it without end.
        self._compiled: LRUCache[ClauseElement, DriverStatement] = LRUCache(COMPILED_STATEMENTS)

    def compiled(self, statement: ClauseElement) -> DriverStatement:
        # Keyed by the statement object: the callers build each shape once (functools.cache).
        found = self._compiled.get(statement)
        if found is None:
            found = DriverStatement.compile(statement, self.engine.dialect)
            self._compiled[statement] = found
        return found

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[DriverConnection]:
        pooled = await self.engine.raw_connection()
        connection = DriverConnection(self, pooled.driver_connection)
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


class DriverConnection:
    def __init__(self, driver: Driver, connection: asyncpg.Connection) -> None:
        self.driver = driver
        self._connection = connection
        # Set when a failure may have left the connection unusable.
        self.broken = False

    async def fetchrow(
        self, statement: ClauseElement, params: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        """Run ``statement`` (autocommit) and return its first row, if any."""
        compiled = self.driver.compiled(statement)
        arguments = compiled.arguments(params)
        for observe in self.driver.observers:
            observe(compiled.sql)
        try:
            row: Mapping[str, Any] | None = await self._connection.fetchrow(
                compiled.sql, *arguments
            )
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
            raise exc.DBAPIError(
                compiled.sql, None, error, connection_invalidated=self.broken
            ) from error
        except (OSError, asyncio.CancelledError):
            # Cancelled mid-statement, the protocol may still be waiting for the server.
            self.broken = True
            raise
        return row
