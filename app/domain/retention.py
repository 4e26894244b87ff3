"""What Palisade forgets, and when: idempotency keys past their expiry, and tenant webhook
events whose deliveries are all settled, once older than the retention. The periodic
sweep runs it; each batch is its own transaction and skips rows another replica holds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.idempotency import IdempotencyRepository
from app.db.repositories.webhooks import prune_settled_events

BATCH = 1000
# One pass deletes at most this many batches of each kind; the next pass goes on.
MAX_BATCHES = 100


@dataclass(frozen=True)
class Pruned:
    idempotency_keys: int
    webhook_events: int


async def prune_expired(
    sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime, webhook_retention: timedelta
) -> Pruned:
    keys = await _in_batches(
        sessionmaker, lambda db: IdempotencyRepository(db).prune(now, batch=BATCH)
    )
    events = await _in_batches(
        sessionmaker, lambda db: prune_settled_events(db, now - webhook_retention, batch=BATCH)
    )
    return Pruned(idempotency_keys=keys, webhook_events=events)


async def _in_batches(
    sessionmaker: async_sessionmaker[AsyncSession],
    one_batch: Callable[[AsyncSession], Awaitable[int]],
) -> int:
    total = 0
    for _ in range(MAX_BATCHES):
        async with sessionmaker.begin() as db:
            deleted = await one_batch(db)
        total += deleted
        if deleted < BATCH:
            break
    return total
