from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Update, and_, func, or_, select, text, tuple_, union_all, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Session, SessionEvent, Tenant
from app.db.models.session import (
    CLEANUP_BACKLOG_SQL,
    NON_TERMINAL_STATES_SQL,
    SHUTDOWN_CLAIMED_SQL,
    SHUTDOWN_UNCONFIRMED_SQL,
    TERMINAL_STATES_SQL,
)
from app.db.repositories.leases import claim_due, claim_parameters


@dataclass(frozen=True)
class ProfileUsageRow:
    """A tenant's sessions of one profile and strategy that ended in a period."""

    profile: str
    strategy: str
    sessions: int
    billed_sessions: int
    billed_seconds: float
    idle_seconds: float


@dataclass(frozen=True)
class SessionCounts:
    """Sessions by internal state (live ones, and terminal ones ended within a window)
    and the cleanup backlog."""

    by_state: dict[str, int]
    cleanup_backlog: int
    # Seconds since the oldest owed cleanup became due (0 when nothing is owed).
    oldest_cleanup_age: float


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: Session) -> None:
        self.session.add(row)
        await self.session.flush()

    async def get(self, session_id: uuid.UUID) -> Session | None:
        return await self.session.get(Session, session_id)

    async def get_for_tenant(self, tenant_id: str, session_id: uuid.UUID) -> Session | None:
        query = select(Session).where(Session.id == session_id, Session.tenant_id == tenant_id)
        return (await self.session.scalars(query)).one_or_none()

    async def get_for_update(
        self, session_id: uuid.UUID, *, nowait: bool = False
    ) -> Session | None:
        # populate_existing: a row already in the identity map would otherwise keep the
        # values read before the lock was taken, and a decision made on them is stale.
        query = (
            select(Session)
            .where(Session.id == session_id)
            .with_for_update(nowait=nowait)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(query)).one_or_none()

    async def page(
        self,
        tenant_id: str,
        *,
        limit: int,
        states: Collection[str] | None = None,
        external_ref: str | None = None,
        before: tuple[datetime, uuid.UUID] | None = None,
    ) -> Sequence[Session]:
        """Newest first. A keyset cursor stays stable while rows are inserted: new rows
        sort before it and never shift later pages."""
        query = (
            select(Session)
            .where(Session.tenant_id == tenant_id)
            .order_by(Session.created_at.desc(), Session.id.desc())
            .limit(limit)
        )
        if states is not None:
            query = query.where(Session.state.in_(list(states)))
        if external_ref is not None:
            query = query.where(Session.external_ref == external_ref)
        if before is not None:
            created_at, session_id = before
            query = query.where(
                or_(
                    Session.created_at < created_at,
                    and_(Session.created_at == created_at, Session.id < session_id),
                )
            )
        return (await self.session.scalars(query)).all()

    async def add_event(
        self,
        session_id: uuid.UUID,
        *,
        kind: str,
        type: str,
        payload: dict[str, Any] | None = None,
        from_state: str | None = None,
        to_state: str | None = None,
        dedupe_key: str | None = None,
        occurred_at: datetime | None = None,
    ) -> int | None:
        """Append an event: its id, or None if an event with the same dedupe key was
        already stored."""
        statement = insert(SessionEvent).values(
            session_id=session_id,
            kind=kind,
            type=type,
            payload=payload or {},
            from_state=from_state,
            to_state=to_state,
            dedupe_key=dedupe_key,
            occurred_at=occurred_at,
        )
        if dedupe_key is not None:
            statement = statement.on_conflict_do_nothing(
                index_elements=[SessionEvent.session_id, SessionEvent.dedupe_key],
                index_where=SessionEvent.dedupe_key.isnot(None),
            )
        result = await self.session.execute(statement.returning(SessionEvent.id))
        return result.scalar_one_or_none()

    async def event(self, session_id: uuid.UUID, event_id: int) -> SessionEvent | None:
        query = select(SessionEvent).where(
            SessionEvent.id == event_id, SessionEvent.session_id == session_id
        )
        return (await self.session.scalars(query)).one_or_none()

    async def claim_due(
        self, *, owner: str, now: datetime, lease_until: datetime, limit: int
    ) -> Sequence[Session]:
        """Take up to ``limit`` due sessions for ``owner`` until ``lease_until``, the
        tenants in turn."""
        parameters = claim_parameters(owner=owner, now=now, lease_until=lease_until, limit=limit)
        return (await self.session.scalars(_claim_due(), parameters)).all()

    async def claim(
        self, session_id: uuid.UUID, *, owner: str, now: datetime, lease_until: datetime
    ) -> Session | None:
        """Take one session if it is due (or unclaimed), e.g. to clean up right away."""
        statement = (
            update(Session)
            .where(
                Session.id == session_id,
                Session.next_check_at.isnot(None),
                Session.next_check_at <= now,
            )
            .values(claimed_by=owner, next_check_at=lease_until)
            .returning(Session)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.scalars(statement)).one_or_none()

    async def make_due(self, session_id: uuid.UUID, now: datetime) -> None:
        """Have the reconciler look at an active session now, unless a process holds it
        (whose own result comes first)."""
        await self.session.execute(
            update(Session)
            .where(
                Session.id == session_id,
                Session.state == "active",
                Session.claimed_by.is_(None),
            )
            .values(next_check_at=now)
            .execution_options(synchronize_session=False)
        )

    async def release_claims(self, owner: str, now: datetime) -> int:
        """Hand back every lease ``owner`` holds, due at once (graceful shutdown)."""
        result = await self.session.execute(
            update(Session)
            .where(Session.claimed_by == owner)
            .values(claimed_by=None, next_check_at=now)
            .returning(Session.id)
        )
        return len(result.all())

    async def tenant_ids_with_own_keys(self) -> Sequence[str]:
        query = select(Tenant.id).where(Tenant.tavus_api_key_encrypted.isnot(None))
        return (await self.session.scalars(query)).all()

    async def get_many(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Session]:
        if not ids:
            return {}
        rows = await self.session.scalars(select(Session).where(Session.id.in_(list(ids))))
        return {row.id: row for row in rows}

    async def counts(self, *, ended_within: timedelta) -> SessionCounts:
        """Cheap at any table size: each part reads a partial index whose rows are
        bounded by live sessions, recent ends or the backlog, never the whole history.

        The state predicates are literal SQL so that the planner matches them against
        the partial indexes even with a generic prepared plan.
        """
        ended_since = func.now() - ended_within
        by_state = union_all(
            select(Session.state, func.count())
            .where(text(NON_TERMINAL_STATES_SQL))
            .group_by(Session.state),
            select(Session.state, func.count())
            .where(text(TERMINAL_STATES_SQL), Session.ended_at >= ended_since)
            .group_by(Session.state),
        )
        counted: dict[str, int] = {}
        for state, count in await self.session.execute(by_state):
            counted[state] = counted.get(state, 0) + int(count)
        oldest = func.min(func.coalesce(Session.ended_at, Session.created_at))
        backlog = select(
            func.count(),
            func.coalesce(func.extract("epoch", func.now() - oldest), 0),
        ).where(text(CLEANUP_BACKLOG_SQL))
        pending, age = (await self.session.execute(backlog)).one()
        return SessionCounts(counted, int(pending), max(float(age), 0.0))

    async def usage(
        self, tenant_id: str, *, since: datetime, until: datetime
    ) -> list[ProfileUsageRow]:
        """The tenant's sessions whose conversation ended in ``[since, until)``, by
        profile and strategy: how many, how many with a known cost, and their seconds.
        Reads ``ix_session_tenant_ended``: the cost follows the sessions in the period."""
        query = (
            select(
                Session.profile,
                Session.strategy,
                func.count(),
                func.count(Session.billed_seconds),
                func.coalesce(func.sum(Session.billed_seconds), 0.0),
                func.coalesce(func.sum(Session.idle_seconds), 0.0),
            )
            .where(
                Session.tenant_id == tenant_id,
                Session.ended_at.isnot(None),
                Session.ended_at >= since,
                Session.ended_at < until,
                # A start that failed before its conversation existed cost nothing.
                Session.conversation_id.isnot(None),
            )
            .group_by(Session.profile, Session.strategy)
            .order_by(Session.profile, Session.strategy)
        )
        return [
            ProfileUsageRow(
                profile, strategy, int(n), int(billed), float(seconds or 0), float(idle or 0)
            )
            for profile, strategy, n, billed, seconds, idle in await self.session.execute(query)
        ]

    async def webhook_events(self, session_id: uuid.UUID) -> Sequence[SessionEvent]:
        """The session's stored Tavus webhooks, in arrival order."""
        query = (
            select(SessionEvent)
            .where(SessionEvent.session_id == session_id, SessionEvent.kind == "webhook")
            .order_by(SessionEvent.id)
        )
        return (await self.session.scalars(query)).all()

    async def latest_webhook(self, session_id: uuid.UUID, type: str) -> SessionEvent | None:
        """The session's last stored webhook of ``type``."""
        query = (
            select(SessionEvent)
            .where(
                SessionEvent.session_id == session_id,
                SessionEvent.kind == "webhook",
                SessionEvent.type == type,
            )
            .order_by(SessionEvent.id.desc())
            .limit(1)
        )
        return (await self.session.scalars(query)).one_or_none()

    async def events(
        self, session_id: uuid.UUID, *, limit: int = 1000, after: int | None = None
    ) -> Sequence[SessionEvent]:
        """Oldest first, from the event after ``after`` (an event id)."""
        query = (
            select(SessionEvent)
            .where(SessionEvent.session_id == session_id)
            .order_by(SessionEvent.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(SessionEvent.id > after)
        return (await self.session.scalars(query)).all()

    # --- what operators read (the console) -----------------------------------------------
    # Each query reads an index bounded by what it shows (live sessions, the last hour, the
    # backlog, open claims) or stops after a page; bench/console.py checks the plans.

    async def page_all(
        self,
        *,
        limit: int,
        tenant_id: str | None = None,
        states: Collection[str] | None = None,
        strategy: str | None = None,
        external_ref: str | None = None,
        before: tuple[datetime, uuid.UUID] | None = None,
    ) -> Sequence[Session]:
        """Every tenant's sessions (or one's), newest first, a keyset page at a time."""
        query = select(Session).order_by(Session.created_at.desc(), Session.id.desc()).limit(limit)
        if tenant_id is not None:
            query = query.where(Session.tenant_id == tenant_id)
        if states is not None:
            query = query.where(Session.state.in_(sorted(states)))
        if strategy is not None:
            query = query.where(Session.strategy == strategy)
        if external_ref is not None:
            query = query.where(Session.external_ref == external_ref)
        if before is not None:
            query = query.where(tuple_(Session.created_at, Session.id) < tuple_(*before))
        return (await self.session.scalars(query)).all()

    async def live_by_tenant(self) -> dict[str, int]:
        query = (
            select(Session.tenant_id, func.count())
            .where(text(NON_TERMINAL_STATES_SQL))
            .group_by(Session.tenant_id)
        )
        return {tenant: int(n) for tenant, n in await self.session.execute(query)}

    async def started_by_tenant(self, since: datetime) -> dict[str, int]:
        query = (
            select(Session.tenant_id, func.count())
            .where(Session.created_at >= since)
            .group_by(Session.tenant_id)
        )
        return {tenant: int(n) for tenant, n in await self.session.execute(query)}

    async def failed_by_tenant(self, since: datetime) -> dict[str, int]:
        """Sessions that failed since ``since`` (a failure is recorded as its end)."""
        query = (
            select(Session.tenant_id, func.count())
            .where(text(TERMINAL_STATES_SQL), Session.state == "failed", Session.ended_at >= since)
            .group_by(Session.tenant_id)
        )
        return {tenant: int(n) for tenant, n in await self.session.execute(query)}

    async def cleanup_backlog_by_tenant(self) -> dict[str, tuple[int, datetime | None]]:
        """Per tenant: sessions over whose ephemeral PAL is still to delete, and the
        earliest end among them."""
        query = (
            select(Session.tenant_id, func.count(), func.min(Session.ended_at))
            .where(text(CLEANUP_BACKLOG_SQL))
            .group_by(Session.tenant_id)
        )
        return {t: (int(n), oldest) for t, n, oldest in await self.session.execute(query)}

    async def cleanup_backlog(self, *, limit: int) -> Sequence[Session]:
        """The sessions owing a PAL deletion, longest owed first."""
        query = (
            select(Session)
            .where(text(CLEANUP_BACKLOG_SQL))
            .order_by(Session.ended_at, Session.id)
            .limit(limit)
        )
        return (await self.session.scalars(query)).all()

    async def open_shutdown_claims(self, *, limit: int) -> Sequence[Session]:
        """Sessions whose shutdown webhook Tavus has not confirmed yet, oldest first."""
        query = (
            select(Session)
            .where(text(SHUTDOWN_CLAIMED_SQL))
            .order_by(Session.shutdown_claimed_at)
            .limit(limit)
        )
        return (await self.session.scalars(query)).all()

    async def unconfirmed_claims(self, since: datetime, *, limit: int) -> Sequence[SessionEvent]:
        """Shutdown webhooks Tavus contradicted, recorded since ``since``, newest first."""
        query = (
            select(SessionEvent)
            .where(text(SHUTDOWN_UNCONFIRMED_SQL), SessionEvent.created_at >= since)
            .order_by(SessionEvent.created_at.desc())
            .limit(limit)
        )
        return (await self.session.scalars(query)).all()

    async def count_unconfirmed_claims(self, since: datetime) -> int:
        query = select(func.count()).where(
            text(SHUTDOWN_UNCONFIRMED_SQL), SessionEvent.created_at >= since
        )
        return int(await self.session.scalar(query) or 0)

    async def count_open_shutdown_claims(self) -> int:
        query = select(func.count()).select_from(Session).where(text(SHUTDOWN_CLAIMED_SQL))
        return int(await self.session.scalar(query) or 0)

    async def latest_events_of(
        self, session_ids: Collection[uuid.UUID], types: Collection[str]
    ) -> dict[uuid.UUID, SessionEvent]:
        """Each session's last event of one of ``types`` (a page's worth of sessions)."""
        if not session_ids:
            return {}
        latest = (
            select(func.max(SessionEvent.id))
            .where(
                SessionEvent.session_id.in_(list(session_ids)),
                SessionEvent.type.in_(sorted(types)),
            )
            .group_by(SessionEvent.session_id)
        )
        query = select(SessionEvent).where(SessionEvent.id.in_(latest))
        return {event.session_id: event for event in await self.session.scalars(query)}


@cache
def _claim_due() -> Update:
    # Built once: see app.db.repositories.leases.
    return claim_due(Session, by_tenant=True)
