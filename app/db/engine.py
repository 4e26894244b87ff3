"""Engine and session factories. The engine is built once per process, in the app lifespan."""

from __future__ import annotations

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

_FRESH = "liveness.fresh"


def create_engine(url: str, settings: Settings | None = None) -> AsyncEngine:
    pool_size = settings.db_pool_size if settings else 5
    max_overflow = settings.db_max_overflow if settings else 5
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        # asyncpg's statement cache is per connection; a restarted Postgres must not
        # leave the pool with dead connections for long.
        pool_recycle=1800,
    )
    check_liveness_on_checkout(engine)
    return engine


def check_liveness_on_checkout(engine: AsyncEngine) -> None:
    """Test each reused connection before handing it out, in one round trip.

    What ``pool_pre_ping`` does, minus its cost: SQLAlchemy's asyncpg adapter wraps the
    ping in a transaction of its own (``BEGIN``, ``;``, ``ROLLBACK``, for PgBouncer's
    transaction mode), three round trips on every checkout, and a session start checks
    out three connections. A connection that fails the ping is replaced, so a restarted
    PostgreSQL costs no request an error.
    """
    pool = engine.sync_engine.pool

    def on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_FRESH] = True

    def on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        if record.info.pop(_FRESH, False):
            return  # just opened: nothing to test
        try:
            dbapi_connection.run_async(lambda connection: connection.execute("SELECT 1"))
        except Exception as error:
            # The pool discards this connection and checks out (or opens) another.
            raise exc.DisconnectionError(f"pooled connection is dead: {error!r}") from error

    event.listen(pool, "connect", on_connect)
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
