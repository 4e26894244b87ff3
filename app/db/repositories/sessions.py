from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, func, or_, select, text, union_all, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Session, SessionEvent, Tenant
from app.db.models.session import (
    CLEANUP_BACKLOG_SQL,
    NON_TERMINAL_STATES_SQL,
    TERMINAL_STATES_SQL,
)
from app.db.repositories import session_statements as statements
from app.db.repositories.leases import due_ids


@dataclass(frozen=True)
class SessionCounts:
    """Sessions by internal state (live ones, and terminal ones ended within a window)
    and the cleanup backlog."""

    by_state: dict[str, int]
    cleanup_backlog: int
    # Seconds since the oldest owed cleanup became due (0 when nothing is owed).
    oldest_cleanup_age: float


@dataclass(frozen=True)
class KeyClaim:
    """An idempotency key to claim for a request, as in flight until ``locked_until``."""

    key: str
    request_hash: str
    session_id: uuid.UUID
    locked_until: datetime
    expires_at: datetime


@dataclass(frozen=True)
class AdmissionGate:
    """What admission checks under the tenant's lock before it inserts a session."""

    tenant_id: str
    # The caller's key, checked to be still active (None: not checked).
    api_key_id: str | None
    # The profile the request was resolved under, at the version it was read in.
    profile: str
    profile_version: str
    # The request named no profile: the tenant's default must still be ``profile``.
    profile_is_default: bool
    claim: KeyClaim | None


class AdmissionOutcome(StrEnum):
    """The gate's answers (migration 0005)."""

    ADMITTED = statements.ADMITTED
    NO_TENANT = "no_tenant"
    KEY_REVOKED = "key_revoked"
    PROFILE_CHANGED = "profile_changed"
    KEY_EXISTS = "key_exists"
    FULL = "full"


@dataclass(frozen=True)
class Admission:
    """What admission decided. ``live`` is counted when the key was claimed (or there
    was none); ``created_at``/``updated_at`` are the inserted session's, when admitted."""

    outcome: AdmissionOutcome
    live: int | None
    cap: int | None
    tavus_api_key_encrypted: bytes | None
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True)
class EventRecord:
    """An event to append in the same statement as the write it describes."""

    kind: str
    type: str
    payload: dict[str, Any]
    from_state: str | None = None
    to_state: str | None = None


@dataclass(frozen=True)
class StoredResponse:
    """The final answer to an idempotent request, stored in the same statement."""

    tenant_id: str
    key: str
    status: int
    body: dict[str, Any]


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def admit(
        self, gate: AdmissionGate, values: dict[str, Any], event: EventRecord
    ) -> Admission:
        """Admit a session in one statement, on an autocommit session: lock the tenant,
        run the gate's checks (``AdmissionGate``), claim the key, count the live sessions
        and, below the cap, insert the session (``values``) and its first ``event``.

        Admission is serialised per tenant by the lock, and the count is taken after
        the lock is held (``session_admission_gate``, migration 0005), so a tenant never
        has more live sessions than its cap. The key is claimed under the tenant lock,
        so two requests with one key cannot deadlock.
        """
        if set(values) != set(statements.ADMISSION_COLUMNS):
            raise ValueError(
                f"admission writes {statements.ADMISSION_COLUMNS}, got {tuple(values)}"
            )
        claim = gate.claim
        params: dict[str, Any] = {
            "p_tenant_id": gate.tenant_id,
            "p_api_key_id": gate.api_key_id,
            "p_profile": gate.profile,
            "p_profile_version": gate.profile_version,
            "p_profile_is_default": gate.profile_is_default,
            "claim_key": claim.key if claim else None,
            "claim_request_hash": claim.request_hash if claim else None,
            "claim_session_id": claim.session_id if claim else None,
            "claim_locked_until": claim.locked_until if claim else None,
            "claim_expires_at": claim.expires_at if claim else None,
        }
        params |= {f"value_{name}": value for name, value in values.items()}
        params |= _event_params(event)
        row = (await self.session.execute(statements.admit(), params)).one()
        return Admission(
            outcome=AdmissionOutcome(row.outcome),
            live=row.live_sessions,
            cap=row.session_cap,
            tavus_api_key_encrypted=row.tavus_key,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    async def move(
        self,
        session_id: uuid.UUID,
        *,
        owner: str,
        lease_until: datetime | None,
        from_states: Collection[str],
        values: dict[str, Any],
        event: EventRecord,
        response: StoredResponse | None = None,
    ) -> datetime | None:
        """Compare-and-set: apply ``values`` only if ``owner`` still holds the lease that
        ends at ``lease_until`` and the session is in one of ``from_states``; append
        ``event`` and store ``response`` in the same statement. The new ``updated_at``,
        or None when nothing matched (the lease was lost or the state moved on).

        One statement, so it is atomic without a transaction of its own; the row lock
        the UPDATE takes re-checks the conditions against the latest committed row.
        """
        query = statements.move(
            tuple(values), lease_is_null=lease_until is None, store_response=response is not None
        )
        params: dict[str, Any] = {
            "p_session_id": session_id,
            "p_owner": owner,
            "p_from_states": list(from_states),
            **{f"value_{name}": value for name, value in values.items()},
            **_event_params(event),
        }
        if lease_until is not None:  # a null lease is matched with IS NULL, unbound
            params["p_lease_until"] = lease_until
        if response is not None:
            params |= {
                "stored_tenant_id": response.tenant_id,
                "stored_key": response.key,
                "stored_status": response.status,
                "stored_body": response.body,
            }
        updated_at: datetime | None = (
            await self.session.execute(query, params)
        ).scalar_one_or_none()
        return updated_at

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
    ) -> bool:
        """Append an event; False if an event with the same dedupe key was already stored."""
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
        return result.first() is not None

    async def claim_due(
        self, *, owner: str, now: datetime, lease_until: datetime, limit: int
    ) -> Sequence[Session]:
        """Take up to ``limit`` due sessions for ``owner`` until ``lease_until``."""
        due = due_ids(Session, now=now, limit=limit)
        statement = (
            update(Session)
            .where(Session.id == due.c.id)
            .values(claimed_by=owner, next_check_at=lease_until)
            .returning(Session)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.scalars(statement)).all()

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

    async def events(self, session_id: uuid.UUID, *, limit: int = 1000) -> Sequence[SessionEvent]:
        query = (
            select(SessionEvent)
            .where(SessionEvent.session_id == session_id)
            .order_by(SessionEvent.id)
            .limit(limit)
        )
        return (await self.session.scalars(query)).all()


def _event_params(event: EventRecord) -> dict[str, Any]:
    return {
        "event_kind": event.kind,
        "event_type": event.type,
        "event_from": event.from_state,
        "event_to": event.to_state,
        "event_payload": event.payload,
    }
