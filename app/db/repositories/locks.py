"""Session-level PostgreSQL advisory locks: one process at a time for a job."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@asynccontextmanager
async def advisory_lock(db: AsyncSession, key: int) -> AsyncIterator[bool]:
    """Try to take the lock ``key`` for the block; yields whether it was taken (another
    process holding it: False at once, no wait). Released when the block ends."""
    got = bool(await db.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}))
    try:
        yield got
    finally:
        if got:
            await db.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            await db.commit()
