"""All SQL of the warm pool (``pooled_pal``), and the one session move it makes."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from functools import cache
from typing import Any, Final

from sqlalchemy import Select, Update, case, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import PooledPal, Profile, Session, Tenant
from app.db.models.session import (
    CLEANUP_BACKLOG_SQL,
    EPHEMERAL_PAL_SQL,
    NON_TERMINAL_STATES_SQL,
)
from app.db.repositories.leases import claim_due, claim_parameters

CREATING: Final = "creating"
READY: Final = "ready"
DELETING: Final = "deleting"
STATES: Final = (CREATING, READY, DELETING)

# pg_try_advisory_xact_lock(int, int): this class, and hashtext(tenant id) as the object.
# The two-integer key space never meets the sweep's single bigint key.
POOL_LOCK_CLASS: Final = 0x706F6F6C  # "pool"

# A profile has a pool when its stored config holds a `warm_pool` object (which `reuse`
# ignores).
_POOLED_SQL: Final = (
    "jsonb_typeof(profile.config -> 'warm_pool') = 'object' AND profile.strategy <> 'reuse'"
)


class PoolRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- a start takes a PAL -----------------------------------------------------------

    async def take_ready(
        self, tenant_id: str, profile: str, fingerprint: str, now: datetime
    ) -> PooledPal | None:
        """Delete and return one ready, unexpired PAL of this key on the tenant's current
        Tavus account (the one nearest to its expiry), or None.

        SKIP LOCKED: concurrent starts each take a different row, or none, never wait
        for each other; a row the background is retiring is skipped too.
        """
        account = (
            select(Tenant.tavus_api_key_encrypted).where(Tenant.id == tenant_id).scalar_subquery()
        )
        candidate = (
            select(PooledPal.id)
            .where(
                PooledPal.tenant_id == tenant_id,
                PooledPal.profile == profile,
                PooledPal.fingerprint == fingerprint,
                PooledPal.state == READY,
                PooledPal.expires_at > now,
                PooledPal.tavus_api_key_encrypted.is_not_distinct_from(account),
            )
            .order_by(PooledPal.expires_at)
            .limit(1)
            .with_for_update(skip_locked=True)
            .cte("candidate")
        )
        statement = (
            delete(PooledPal)
            .where(PooledPal.id == candidate.c.id)
            .returning(PooledPal)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.scalars(statement)).one_or_none()

    # --- refill ------------------------------------------------------------------------

    async def pooled_profiles(self) -> Sequence[tuple[str, str, dict[str, Any]]]:
        return [(t, n, c) for t, n, c in await self.session.execute(_pooled_profiles())]

    async def pooled_profile_names(self) -> Sequence[tuple[str, str]]:
        return [(t, n) for t, n in await self.session.execute(_pooled_profile_names())]

    async def tenants_with_rows(self) -> set[str]:
        return set(await self.session.scalars(_tenants_with_rows()))

    async def try_lock_tenant(self, tenant_id: str) -> bool:
        """Serialise refill decisions per tenant across processes, until commit."""
        got = await self.session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:class, hashtext(:tenant))"),
            {"class": POOL_LOCK_CLASS, "tenant": tenant_id},
        )
        return bool(got)

    async def rows_of_tenant(self, tenant_id: str) -> Sequence[PooledPal]:
        query = select(PooledPal).where(PooledPal.tenant_id == tenant_id)
        return (await self.session.scalars(query)).all()

    async def pals_held_by_sessions(self, tenant_id: str) -> int:
        """The tenant's ephemeral PALs that sessions hold or will hold: every live
        ephemeral session, and every ended one whose PAL is not yet deleted. Two
        queries, each on a partial index bounded by live sessions or the backlog."""
        live = select(func.count()).where(
            Session.tenant_id == tenant_id,
            text(NON_TERMINAL_STATES_SQL),
            text(EPHEMERAL_PAL_SQL),
        )
        owed = select(func.count()).where(
            text(CLEANUP_BACKLOG_SQL),
            Session.tenant_id == tenant_id,
            text(EPHEMERAL_PAL_SQL),
        )
        return int(await self.session.scalar(live) or 0) + int(await self.session.scalar(owed) or 0)

    def add_all(self, rows: Collection[PooledPal]) -> None:
        self.session.add_all(rows)

    async def retire(self, ids: Collection[uuid.UUID], now: datetime) -> int:
        """ready → deleting, due now. Rows a start is taking right now are skipped
        (they are about to be gone)."""
        if not ids:
            return 0
        target = (
            select(PooledPal.id)
            .where(PooledPal.id.in_(list(ids)), PooledPal.state == READY)
            .with_for_update(skip_locked=True)
            .cte("target")
        )
        result = await self.session.execute(
            update(PooledPal)
            .where(PooledPal.id == target.c.id)
            .values(state=DELETING, next_check_at=now, attempts=0, updated_at=func.now())
            .returning(PooledPal.id)
            .execution_options(synchronize_session=False)
        )
        return len(result.all())

    # --- background work on due rows ------------------------------------------------------

    async def claim_due(
        self, *, owner: str, now: datetime, lease_until: datetime, limit: int
    ) -> Sequence[PooledPal]:
        """Take up to ``limit`` due rows until ``lease_until``. A ready row falls due when
        it expires: it becomes ``deleting`` in the same statement, so no start can take
        it from then on."""
        parameters = claim_parameters(owner=owner, now=now, lease_until=lease_until, limit=limit)
        return (await self.session.scalars(_claim_due(), parameters)).all()

    def _held(self, row_id: uuid.UUID, owner: str, lease_until: datetime) -> Any:
        # A claim is ours only while both the owner and the lease expiry it set are
        # unchanged (as for sessions).
        return (
            (PooledPal.id == row_id)
            & (PooledPal.claimed_by == owner)
            & (PooledPal.next_check_at == lease_until)
        )

    async def mark_ready(
        self, row_id: uuid.UUID, pal_id: str, *, owner: str, lease_until: datetime
    ) -> bool:
        """creating → ready, due again at its expiry; False if the claim was lost."""
        result = await self.session.execute(
            update(PooledPal)
            .where(self._held(row_id, owner, lease_until), PooledPal.state == CREATING)
            .values(
                state=READY,
                pal_id=pal_id,
                claimed_by=None,
                next_check_at=PooledPal.expires_at,
                attempts=0,
                updated_at=func.now(),
            )
            .returning(PooledPal.id)
        )
        return result.first() is not None

    async def forget(self, row_id: uuid.UUID, *, owner: str, lease_until: datetime) -> bool:
        """Delete the row: its PAL was never made, or Tavus confirmed its deletion."""
        result = await self.session.execute(
            delete(PooledPal).where(self._held(row_id, owner, lease_until)).returning(PooledPal.id)
        )
        return result.first() is not None

    async def retry_later(
        self,
        row_id: uuid.UUID,
        *,
        owner: str,
        lease_until: datetime,
        at: datetime,
        pal_id: str | None = None,
    ) -> bool:
        values: dict[str, Any] = {
            "claimed_by": None,
            "next_check_at": at,
            "attempts": PooledPal.attempts + 1,
            "updated_at": func.now(),
        }
        if pal_id is not None:
            values["pal_id"] = pal_id
        result = await self.session.execute(
            update(PooledPal)
            .where(self._held(row_id, owner, lease_until))
            .values(**values)
            .returning(PooledPal.id)
        )
        return result.first() is not None

    async def release_claims(self, owner: str, now: datetime) -> int:
        """Hand back every lease ``owner`` holds, due at once (graceful shutdown)."""
        result = await self.session.execute(
            update(PooledPal)
            .where(PooledPal.claimed_by == owner)
            .values(claimed_by=None, next_check_at=now, updated_at=func.now())
            .returning(PooledPal.id)
        )
        return len(result.all())

    # --- reads ---------------------------------------------------------------------------

    async def get_many(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, PooledPal]:
        if not ids:
            return {}
        rows = await self.session.scalars(select(PooledPal).where(PooledPal.id.in_(list(ids))))
        return {row.id: row for row in rows}

    async def sessions_holding(self, pal_ids: Collection[str]) -> dict[str, Session]:
        """The session holding each of these ephemeral PALs (the newest, if several)."""
        if not pal_ids:
            return {}
        query = (
            select(Session)
            .where(text(EPHEMERAL_PAL_SQL), Session.pal_id.in_(list(pal_ids)))
            .order_by(Session.created_at)
        )
        return {row.pal_id: row for row in await self.session.scalars(query) if row.pal_id}

    async def counts(self) -> dict[tuple[str, str, str], int]:
        """Pool rows by tenant, profile and state (the pool is small: a full read)."""
        query = select(
            PooledPal.tenant_id, PooledPal.profile, PooledPal.state, func.count()
        ).group_by(PooledPal.tenant_id, PooledPal.profile, PooledPal.state)
        return {(t, p, s): int(n) for t, p, s, n in await self.session.execute(query)}

    async def counts_by_key(self) -> dict[tuple[str, str, str, str], int]:
        """Pool rows by tenant, profile, fingerprint and state."""
        columns = (PooledPal.tenant_id, PooledPal.profile, PooledPal.fingerprint, PooledPal.state)
        query = select(*columns, func.count()).group_by(*columns)
        return {(t, p, f, s): int(n) for t, p, f, s, n in await self.session.execute(query)}


@cache
def _claim_due() -> Update:
    # Built once: see app.db.repositories.leases.
    return claim_due(
        PooledPal,
        state=case((PooledPal.state == READY, DELETING), else_=PooledPal.state),
        updated_at=func.now(),
    )


# The reads of every warm-pool pass, built once as the claim is.
@cache
def _pooled_profiles() -> Select[str, str, dict[str, Any]]:
    return (
        select(Profile.tenant_id, Profile.name, Profile.config)
        .where(text(_POOLED_SQL))
        .order_by(Profile.tenant_id, Profile.name)
    )


@cache
def _pooled_profile_names() -> Select[str, str]:
    return select(Profile.tenant_id, Profile.name).where(text(_POOLED_SQL))


@cache
def _tenants_with_rows() -> Select[str]:
    return select(PooledPal.tenant_id).distinct()
