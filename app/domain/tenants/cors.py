"""Which origins any tenant lists, for CORS preflights.

A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) carries no credentials,
so it cannot say which tenant it is for. It is answered for an origin that some tenant
lists; the request that follows carries its key, and its response lets the browser read
it only when the key's own tenant lists the origin (``app.api.cors``).

The set of listed origins is read whole and remembered for
``PALISADE_API_KEY_CACHE_SECONDS``, like the keys: one small read per window whatever
the traffic, and a preflight from an origin nobody lists, however many, never reaches
the database on its own.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.tenants import TenantRepository


class ListedOrigins:
    def __init__(
        self, autocommit: async_sessionmaker[AsyncSession], *, remember_seconds: float
    ) -> None:
        self._autocommit = autocommit
        self._remember_seconds = remember_seconds
        self._origins: frozenset[str] = frozenset()
        self._read_at: float | None = None
        # Bumped by each change made through this process: a read that began before a
        # change is used, but not remembered.
        self._changes = 0
        self._reading = asyncio.Lock()

    async def lists(self, origin: str) -> bool:
        """Whether some tenant lists ``origin``."""
        return origin in await self._current()

    async def forget_after_commit(self) -> None:
        """Read the origins again: a tenant's were changed through this process."""
        # async: Starlette would run a plain function as a background task in a thread.
        self._changes += 1
        self._read_at = None

    def _fresh(self) -> bool:
        return self._read_at is not None and (
            time.monotonic() - self._read_at < self._remember_seconds
        )

    async def _current(self) -> frozenset[str]:
        if self._fresh():
            return self._origins
        # One read at a time: preflights arriving meanwhile wait for it rather than each
        # reading the same set.
        async with self._reading:
            if self._fresh():
                return self._origins
            started, changes = time.monotonic(), self._changes
            async with self._autocommit() as db:
                origins = await TenantRepository(db).listed_origins()
            if changes == self._changes:
                self._origins, self._read_at = origins, started
        return origins
