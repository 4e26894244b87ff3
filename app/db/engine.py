"""Engine and session factory. The engine is built once per process, in the app lifespan."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.settings import Settings


def create_engine(url: str, settings: Settings | None = None) -> AsyncEngine:
    pool_size = settings.db_pool_size if settings else 5
    max_overflow = settings.db_max_overflow if settings else 5
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        # asyncpg's statement cache is per connection; a restarted Postgres must not
        # leave the pool with dead connections for long.
        pool_recycle=1800,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: responses are rendered after the unit of work commits.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
