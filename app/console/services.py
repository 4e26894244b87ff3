"""What each console page shows, read through the repositories (all SQL lives there),
and its one write, an end, made by the service the API's end uses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from app.console.artifacts import SessionArtifacts, artifacts_of
from app.console.deliveries import DeliveryLedger, DeliveryLine
from app.db.models import Session, SessionEvent, SweepRun, Tenant
from app.db.repositories.sessions import SessionRepository
from app.db.repositories.sweeps import SweepRunRepository
from app.db.repositories.tenants import TenantRepository
from app.domain.pool.status import PoolFill, pool_fill
from app.domain.sessions import service as session_service
from app.domain.sessions.cursors import (
    decode_event_cursor,
    decode_session_cursor,
    encode_event_cursor,
    encode_session_cursor,
)
from app.domain.sessions.errors import SessionNotFound
from app.domain.sessions.states import STATES_OF, State, Status, status_of
from app.domain.storable_text import StorableStr
from app.runtime import Runtime
from app.security import pal_secrets

# The window of the overview's start and failure counts, and of unconfirmed claims.
RECENT: Final = timedelta(hours=1)
UNCONFIRMED_WINDOW: Final = timedelta(hours=24)
SESSIONS_PER_PAGE: Final = 50
EVENTS_PER_PAGE: Final = 200
CLAIMS_SHOWN: Final = 20
CLEANUP_SHOWN: Final = 100
SWEEPS_SHOWN: Final = 10
# Of a cleanup's retries, the last says why the PAL is not deleted yet.
CLEANUP_FAILURE_EVENTS: Final = ("cleanup.retry", "tavus.error")


# --- overview ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantLine:
    id: str
    name: str
    live: int
    cap: int
    started: int
    failed: int
    cleanup_backlog: int
    # The earliest end among the sessions still owing their PAL's deletion.
    cleanup_oldest: datetime | None

    @property
    def at_cap(self) -> bool:
        return self.live >= self.cap


@dataclass(frozen=True)
class Overview:
    now: datetime
    tenants: list[TenantLine]
    pools: list[PoolFill]
    open_claims: list[Session]
    open_claims_total: int
    unconfirmed_claims: list[SessionEvent]
    unconfirmed_claims_total: int
    deliveries_recorded: bool
    oldest_pending_delivery: DeliveryLine | None

    @property
    def cleanup_backlog(self) -> int:
        return sum(t.cleanup_backlog for t in self.tenants)


async def overview(
    db: AsyncSession, runtime: Runtime, deliveries: DeliveryLedger, now: datetime
) -> Overview:
    sessions = SessionRepository(db)
    tenants = await TenantRepository(db).list_all()
    live = await sessions.live_by_tenant()
    started = await sessions.started_by_tenant(now - RECENT)
    failed = await sessions.failed_by_tenant(now - RECENT)
    backlog = await sessions.cleanup_backlog_by_tenant()
    return Overview(
        now=now,
        tenants=[_tenant_line(t, live, started, failed, backlog) for t in tenants],
        pools=await pool_fill(db, runtime.secret_box),
        open_claims=list(await sessions.open_shutdown_claims(limit=CLAIMS_SHOWN)),
        open_claims_total=await sessions.count_open_shutdown_claims(),
        unconfirmed_claims=list(
            await sessions.unconfirmed_claims(now - UNCONFIRMED_WINDOW, limit=CLAIMS_SHOWN)
        ),
        unconfirmed_claims_total=await sessions.count_unconfirmed_claims(now - UNCONFIRMED_WINDOW),
        deliveries_recorded=deliveries.recorded,
        oldest_pending_delivery=await deliveries.oldest_pending(db),
    )


def _tenant_line(
    tenant: Tenant,
    live: dict[str, int],
    started: dict[str, int],
    failed: dict[str, int],
    backlog: dict[str, tuple[int, datetime | None]],
) -> TenantLine:
    owed, oldest = backlog.get(tenant.id, (0, None))
    return TenantLine(
        id=tenant.id,
        name=tenant.name,
        live=live.get(tenant.id, 0),
        cap=tenant.max_concurrent_sessions,
        started=started.get(tenant.id, 0),
        failed=failed.get(tenant.id, 0),
        cleanup_backlog=owed,
        cleanup_oldest=oldest,
    )


# --- sessions --------------------------------------------------------------------------------


class SessionFilters(BaseModel):
    """The sessions page's query: each filter optional, combined with AND."""

    model_config = ConfigDict(extra="ignore")

    tenant: Annotated[StorableStr | None, Field(max_length=64)] = None
    status: Status | None = None
    strategy: Literal["reuse", "ephemeral"] | None = None
    external_ref: Annotated[StorableStr | None, Field(max_length=200)] = None
    cursor: Annotated[str | None, Field(max_length=200)] = None

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_any(cls, value: Any) -> Any:
        # A filter form sends every field; an empty one means "any".
        return None if value == "" else value

    def query(self, **changes: str | None) -> dict[str, str]:
        """These filters (with ``changes``) as query parameters, empty ones left out."""
        values = {**self.model_dump(mode="json"), **changes}
        return {name: str(value) for name, value in values.items() if value}


@dataclass(frozen=True)
class SessionsPage:
    filters: SessionFilters
    tenants: list[str]
    items: list[Session]
    next_cursor: str | None


async def sessions_page(db: AsyncSession, filters: SessionFilters) -> SessionsPage:
    before = decode_session_cursor(filters.cursor) if filters.cursor else None
    repo = SessionRepository(db)
    rows = await repo.page_all(
        limit=SESSIONS_PER_PAGE + 1,
        tenant_id=filters.tenant,
        states=STATES_OF[filters.status] if filters.status is not None else None,
        strategy=filters.strategy,
        external_ref=filters.external_ref,
        before=before,
    )
    page = list(rows[:SESSIONS_PER_PAGE])
    last = page[-1] if len(rows) > SESSIONS_PER_PAGE and page else None
    tenants = [t.id for t in await TenantRepository(db).list_all()]
    return SessionsPage(
        filters=filters,
        tenants=tenants,
        items=page,
        next_cursor=encode_session_cursor(last.created_at, last.id) if last else None,
    )


@dataclass(frozen=True)
class SessionDetail:
    row: Session
    status: Status
    # The PAL body sent (or to be sent) to Tavus, credentials redacted; None for reuse.
    pal_body: dict[str, Any] | None
    conversation_body: dict[str, Any] | None
    overrides: dict[str, Any] | None
    events: list[SessionEvent]
    # Passed back as ``after`` for the next page of the timeline.
    next_events_cursor: str | None
    artifacts: SessionArtifacts | None

    @property
    def endable(self) -> bool:
        return self.row.state == State.ACTIVE


async def session_detail(db: AsyncSession, raw_id: str, after: str | None) -> SessionDetail:
    session_id = session_service.parse_session_id(raw_id)
    repo = SessionRepository(db)
    row = await repo.get(session_id)
    if row is None:
        raise SessionNotFound(f"session {session_id} does not exist")
    rows = await repo.events(
        session_id,
        limit=EVENTS_PER_PAGE + 1,
        after=decode_event_cursor(after) if after else None,
    )
    events = list(rows[:EVENTS_PER_PAGE])
    more = len(rows) > EVENTS_PER_PAGE and events
    return SessionDetail(
        row=row,
        status=status_of(row.state),
        pal_body=_redacted(row.resolved.get("pal_body")),
        conversation_body=_plain(row.resolved.get("conversation_body")),
        overrides=_redacted(row.request.get("overrides")),
        events=events,
        next_events_cursor=encode_event_cursor(events[-1].id) if more else None,
        artifacts=await artifacts_of(db, row),
    )


def _redacted(body: Any) -> dict[str, Any] | None:
    return pal_secrets.redact(body) if isinstance(body, dict) and body else None


def _plain(body: Any) -> dict[str, Any] | None:
    return body if isinstance(body, dict) and body else None


async def end_session(runtime: Runtime, raw_id: str) -> None:
    """End the session as its tenant's API would, recorded as the operator's end."""
    session_id = session_service.parse_session_id(raw_id)
    async with runtime.sessionmaker() as db:
        row = await SessionRepository(db).get(session_id)
    if row is None:
        raise SessionNotFound(f"session {session_id} does not exist")
    await session_service.end_session(
        runtime.sessionmaker,
        runtime.connections,
        runtime.accounts,
        row.tenant_id,
        session_id,
        confirm_after=runtime.settings.end_recheck,
        reason=session_service.ENDED_BY_OPERATOR,
    )


# --- cleanup ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CleanupLine:
    session: Session
    # The last failed attempt to delete its PAL, if any.
    last_failure: SessionEvent | None


@dataclass(frozen=True)
class CleanupPage:
    now: datetime
    total: int
    lines: list[CleanupLine]
    sweeps: list[SweepRun]
    sweep_interval_seconds: float


async def cleanup_page(db: AsyncSession, runtime: Runtime, now: datetime) -> CleanupPage:
    repo = SessionRepository(db)
    owed = await repo.cleanup_backlog(limit=CLEANUP_SHOWN)
    failures = await repo.latest_events_of([s.id for s in owed], CLEANUP_FAILURE_EVENTS)
    total = sum(n for n, _ in (await repo.cleanup_backlog_by_tenant()).values())
    return CleanupPage(
        now=now,
        total=total,
        lines=[CleanupLine(s, failures.get(s.id)) for s in owed],
        sweeps=list(await SweepRunRepository(db).latest(SWEEPS_SHOWN)),
        sweep_interval_seconds=runtime.settings.sweep_interval_seconds,
    )


def session_link(session_id: uuid.UUID | str) -> str:
    return f"/console/sessions/{session_id}"
