"""Tenant API keys: which tenant a request's key belongs to, what the key may do and the
tenant's browser origins, remembered for a few seconds.

Every tenant request presents its key, and looking it up cost a round trip and a pooled
connection per request. A key found active is remembered by each process for
``PALISADE_API_KEY_CACHE_SECONDS`` (default 5 s; 0 looks every key up). Unknown keys are
never remembered, so guessing fills nothing.

What remembering costs is a bound on revocation: a key revoked through one process is
forgotten by that process at once, and by the others within the window. A session start
is not subject to it: admission checks the key again under the tenant's lock
(``session_admission_gate``), so a revoked key never starts a session. A key's scopes and
profiles never change, so remembering them costs nothing; a change of the tenant's CORS
origins reaches the other processes within the same window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cachetools import TTLCache
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.tenants import LAST_USED_RESOLUTION, ActiveKey, ApiKeyRepository
from app.domain.tenants.access import effective_scopes
from app.security import api_keys

# Entries are a few dozen bytes; the bound only matters for a deployment with more keys
# in use within one window than this, which then looks the rest up.
DEFAULT_ENTRIES = 10_000


@dataclass(frozen=True)
class TenantCredentials:
    """The caller of a tenant endpoint, as established by its API key."""

    tenant_id: str
    key_id: str
    scopes: frozenset[str]
    # None: any of the tenant's profiles.
    profiles: frozenset[str] | None
    # Where the tenant's browser frontends call from (docs/frontends.md).
    cors_origins: frozenset[str]


@dataclass
class _Known:
    credentials: TenantCredentials
    last_used_at: datetime | None

    @classmethod
    def of(cls, row: ActiveKey) -> _Known:
        return cls(
            TenantCredentials(
                tenant_id=row.tenant_id,
                key_id=row.id,
                scopes=effective_scopes(row.scopes),
                profiles=frozenset(row.profiles) if row.profiles is not None else None,
                cors_origins=frozenset(row.tenant_cors_origins),
            ),
            row.last_used_at,
        )


class ApiKeyAuthenticator:
    def __init__(
        self,
        autocommit: async_sessionmaker[AsyncSession],
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        remember_seconds: float,
        entries: int = DEFAULT_ENTRIES,
    ) -> None:
        self._autocommit = autocommit
        self._sessionmaker = sessionmaker
        self._known: TTLCache[bytes, _Known] | None = (
            TTLCache(entries, remember_seconds) if remember_seconds > 0 else None
        )

    async def authenticate(self, raw_key: str) -> TenantCredentials | None:
        """The tenant ``raw_key`` belongs to, or None for an unknown or revoked key."""
        if not api_keys.looks_like_key(raw_key):
            return None
        digest = api_keys.hash_key(raw_key)
        known = self._known.get(digest) if self._known is not None else None
        if known is None:
            # Its own short session, returned to the pool before the handler runs: a
            # handler that opens units of work of its own (the start saga) must never
            # wait for a second connection while holding one, or a burst exhausts the
            # pool. One read: autocommit spares it a BEGIN and a ROLLBACK.
            async with self._autocommit() as db:
                row = await ApiKeyRepository(db).find_active(digest)
            if row is None:
                return None
            known = _Known.of(row)
            if self._known is not None:
                self._known[digest] = known
        await self._record_use(known)
        return known.credentials

    def forget(self, key_id: str) -> None:
        """Stop accepting ``key_id`` from memory (it was revoked through this process)."""
        self._forget_where(lambda credentials: credentials.key_id == key_id)

    async def forget_after_commit(self, key_id: str) -> None:
        # async: Starlette would run a plain function as a background task in a thread.
        self.forget(key_id)

    async def forget_tenant_after_commit(self, tenant_id: str) -> None:
        """Look the tenant's keys up again: what is remembered with them (its CORS
        origins) was changed through this process."""
        self._forget_where(lambda credentials: credentials.tenant_id == tenant_id)

    def _forget_where(self, matches: Callable[[TenantCredentials], bool]) -> None:
        if self._known is None:
            return
        for digest, known in list(self._known.items()):
            if matches(known.credentials):
                self._known.pop(digest, None)

    async def _record_use(self, known: _Known) -> None:
        # last_used_at is refreshed at most once a minute, outside the request's
        # transaction, so that concurrent requests with one key never queue on its row.
        now = datetime.now(UTC)
        if known.last_used_at is not None and now - known.last_used_at < LAST_USED_RESOLUTION:
            return
        known.last_used_at = now  # before the write: concurrent requests skip it
        async with self._sessionmaker.begin() as db:
            await ApiKeyRepository(db).touch(known.credentials.key_id, now)
