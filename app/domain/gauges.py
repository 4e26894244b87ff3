"""The gauges that describe the whole database rather than one process: sessions by
status, the cleanup backlog, the warm pools, tenant webhooks pending. Read just before a
scrape is rendered, by whichever process answers it (docs/observability.md)."""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.pool import PoolRepository
from app.db.repositories.sessions import SessionRepository
from app.db.repositories.webhooks import WebhookRepository
from app.domain.sessions.states import Status, status_of
from app.observability import metrics

logger = logging.getLogger(__name__)

# Ended and failed sessions are counted over this window; live ones always.
TERMINAL_WINDOW: Final = timedelta(hours=24)
# A scrape never waits longer than this for the database; the gauges read NaN then.
STATS_TIMEOUT_SECONDS: Final = 2.0
WARM_POOL_STATES: Final = ("creating", "ready", "deleting")


async def refresh(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await refresh_sessions(sessionmaker)
    await refresh_pools(sessionmaker)
    await refresh_webhooks(sessionmaker)


async def refresh_sessions(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    try:
        async with asyncio.timeout(STATS_TIMEOUT_SECONDS), sessionmaker() as db:
            counts = await SessionRepository(db).counts(ended_within=TERMINAL_WINDOW)
    except Exception as exc:
        logger.warning("session gauges unavailable: %s", type(exc).__name__)
        # NaN, so that a stale count is never mistaken for a current one.
        unknown = {status.value: math.nan for status in Status}
        metrics.set_session_gauges(unknown, math.nan, math.nan)
        return
    by_status: dict[str, float] = {status.value: 0 for status in Status}
    for state, count in counts.by_state.items():
        by_status[status_of(state).value] += count
    metrics.set_session_gauges(by_status, counts.cleanup_backlog, counts.oldest_cleanup_age)


async def refresh_pools(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    try:
        async with asyncio.timeout(STATS_TIMEOUT_SECONDS), sessionmaker() as db:
            repo = PoolRepository(db)
            counts = await repo.counts()
            pooled = await repo.pooled_profile_names()
    except Exception as exc:
        logger.warning("pool gauges unavailable: %s", type(exc).__name__)
        metrics.set_pool_gauges(None)
        return
    current = {(t, p, state): 0 for t, p in pooled for state in WARM_POOL_STATES}
    current.update(counts)
    metrics.set_pool_gauges(current)


async def refresh_webhooks(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    try:
        async with asyncio.timeout(STATS_TIMEOUT_SECONDS), sessionmaker() as db:
            pending, oldest = await WebhookRepository(db).pending_stats()
    except Exception as exc:
        logger.warning("webhook gauges unavailable: %s", type(exc).__name__)
        metrics.set_webhook_gauges(math.nan, math.nan)
        return
    age = 0.0 if oldest is None else max((datetime.now(UTC) - oldest).total_seconds(), 0.0)
    metrics.set_webhook_gauges(pending, age)
