"""Engine and session factories. The engine is built once per process, in the app lifespan."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from app.settings import Settings

# A connection back in the pool for less than this is handed out without a test, as
# HikariCP does (its aliveBypassWindowMs, 500 ms): under load every checkout would
# otherwise pay a round trip to learn what the last statement on it showed a moment
# ago. A connection that died inside the window fails its next statement, which then
# answers 503 `database_unavailable` (app.db.errors); the pool discards it and every
# connection opened before it.
LIVENESS_BYPASS_SECONDS = 0.5
# Set on the pool entry when a checkout sent the test (app.db.instrumentation counts it).
PINGED = "liveness.pinged"
_RETURNED_AT = "liveness.returned_at"


def create_engine(
    url: str,
    settings: Settings | None = None,
    *,
    liveness_bypass_seconds: float = LIVENESS_BYPASS_SECONDS,
) -> AsyncEngine:
    pool_size = settings.db_pool_size if settings else 5
    max_overflow = settings.db_max_overflow if settings else 5
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        # asyncpg's statement cache is per connection; a restarted Postgres must not
        # leave the pool with dead connections for long.
        pool_recycle=1800,
        # The most recently returned connection first: the hot ones stay inside the
        # liveness bypass window and keep their prepared statements warm.
        pool_use_lifo=True,
        # Statement parameters carry webhook tokens, Tavus keys and PAL credentials:
        # neither SQL echo nor an error message may print them, in full or truncated.
        hide_parameters=True,
    )
    check_liveness_on_checkout(engine, liveness_bypass_seconds)
    return engine


def check_liveness_on_checkout(engine: AsyncEngine, bypass_seconds: float) -> None:
    """Test each connection that sat idle in the pool before handing it out, in one
    round trip.

    What ``pool_pre_ping`` does, minus its cost: SQLAlchemy's asyncpg adapter wraps the
    ping in a transaction of its own (``BEGIN``, ``;``, ``ROLLBACK``, for PgBouncer's
    transaction mode), three round trips on every checkout, and a session start checks
    out three connections. Here a just-opened connection, or one returned less than
    ``bypass_seconds`` ago, is not tested at all. A connection that fails the
    test is replaced, so a PostgreSQL restarted while the pool was idle costs no request
    an error.
    """
    pool = engine.sync_engine.pool

    def on_used(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    def on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        returned_at = record.info.get(_RETURNED_AT)
        if returned_at is not None and time.monotonic() - returned_at < bypass_seconds:
            return
        record.info[PINGED] = True
        try:
            dbapi_connection.run_async(lambda connection: connection.execute("SELECT 1"))
        except Exception as error:
            # The pool discards this connection and checks out (or opens) another.
            raise exc.DisconnectionError(f"pooled connection is dead: {error!r}") from error

    event.listen(pool, "connect", on_used)  # just opened: nothing to test
    event.listen(pool, "checkin", on_used)
    event.listen(pool, "checkout", on_checkout)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: responses are rendered after the unit of work commits.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_autocommit_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose every statement commits by itself: no ``BEGIN``/``COMMIT`` round
    trips. For single reads and single (possibly multi-table, CTE) writes that are
    atomic on their own; anything needing two statements in one transaction uses
    ``create_sessionmaker``. The engine copy shares the pool."""
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    return async_sessionmaker(autocommit, expire_on_commit=False, autoflush=False)
