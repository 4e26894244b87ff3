"""Reading and ending sessions. Services flush, never commit."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.raw import RawConnections
from app.db.repositories.sessions import SessionRepository
from app.domain.accounts import TavusAccounts
from app.domain.sessions.artifacts import (
    Artifact,
    Transcript,
    TranscriptItem,
    transcript_complete,
    transcript_entries,
)
from app.domain.sessions.cursors import (
    decode_event_cursor,
    decode_session_cursor,
    encode_event_cursor,
    encode_session_cursor,
)
from app.domain.sessions.errors import (
    SessionNotEndable,
    SessionNotFound,
    TranscriptNotAvailable,
)
from app.domain.sessions.lifecycle import ending
from app.domain.sessions.moves import make
from app.domain.sessions.states import STATES_OF, State, Status
from app.domain.sessions.views import (
    SessionEventList,
    SessionPage,
    SessionPublic,
    event_view,
    session_view,
)
from app.tavus.errors import TavusError, TavusNotFound

logger = logging.getLogger(__name__)

# Who asked for an end: the tenant's API, or an operator in the console.
ENDED_BY_CLIENT = "ended_by_client"
ENDED_BY_OPERATOR = "ended_by_operator"


def parse_session_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise SessionNotFound(f"session {raw!r} does not exist") from None


async def get_session(db: AsyncSession, tenant_id: str, session_id: uuid.UUID) -> SessionPublic:
    row = await SessionRepository(db).get_for_tenant(tenant_id, session_id)
    if row is None:
        raise SessionNotFound(f"session {session_id} does not exist")
    return session_view(row)


async def list_sessions(
    db: AsyncSession,
    tenant_id: str,
    *,
    status: Status | None,
    external_ref: str | None,
    limit: int,
    cursor: str | None,
) -> SessionPage:
    rows = await SessionRepository(db).page(
        tenant_id,
        limit=limit + 1,
        states=STATES_OF[status] if status is not None else None,
        external_ref=external_ref,
        before=decode_session_cursor(cursor) if cursor else None,
    )
    page = rows[:limit]
    last = page[-1] if len(rows) > limit and page else None
    return SessionPage(
        items=[session_view(r) for r in page],
        next_cursor=encode_session_cursor(last.created_at, last.id) if last else None,
    )


async def list_events(
    db: AsyncSession, tenant_id: str, session_id: uuid.UUID, *, limit: int, cursor: str | None
) -> SessionEventList:
    """The session's log, oldest first. Events are only ever appended, with growing ids,
    so a page never shifts: new events appear on the last page."""
    after = decode_event_cursor(cursor) if cursor else None
    repo = SessionRepository(db)
    if await repo.get_for_tenant(tenant_id, session_id) is None:
        raise SessionNotFound(f"session {session_id} does not exist")
    rows = await repo.events(session_id, limit=limit + 1, after=after)
    page = rows[:limit]
    return SessionEventList(
        items=[event_view(e) for e in page],
        next_cursor=encode_event_cursor(page[-1].id) if len(rows) > limit and page else None,
    )


async def get_transcript(db: AsyncSession, tenant_id: str, session_id: uuid.UUID) -> Transcript:
    """The transcript Tavus sent for the session (the latest, if it sent more than one),
    read from its stored event."""
    repo = SessionRepository(db)
    row = await repo.get_for_tenant(tenant_id, session_id)
    if row is None:
        raise SessionNotFound(f"session {session_id} does not exist")
    summary = (row.artifacts or {}).get(Artifact.TRANSCRIPT)
    event = await repo.event(session_id, summary["event_id"]) if summary else None
    if summary is None or event is None:
        raise TranscriptNotAvailable("Tavus has not sent this session's transcript yet")
    items, _ = transcript_entries(event.payload)
    return Transcript(
        items=[TranscriptItem.model_validate(item) for item in items],
        complete=transcript_complete(summary, ended=row.state == State.ENDED),
        received_at=summary["received_at"],
    )


async def end_session(
    sessionmaker: async_sessionmaker[AsyncSession],
    connections: RawConnections,
    accounts: TavusAccounts,
    tenant_id: str,
    session_id: uuid.UUID,
    *,
    confirm_after: timedelta,
    reason: str = ENDED_BY_CLIENT,
) -> SessionPublic:
    """Ask for the end of a session; idempotent. Moves an active session to ``ending``
    (stored before Tavus is called), then ends the conversation on Tavus. The shutdown
    webhook or the reconciler (``confirm_after`` from now, if no webhook has come) moves
    it to ``ended`` and cleans up. ``reason`` is the session's ``end_reason``: who asked."""
    async with sessionmaker() as db:
        row = await SessionRepository(db).get_for_tenant(tenant_id, session_id)
    if row is None:
        raise SessionNotFound(f"session {session_id} does not exist")
    if row.state in (State.ADMITTED, State.PAL_CREATED):
        raise SessionNotEndable(
            "the session is still being created; end it once it is active",
            headers={"Retry-After": "1"},
        )
    if row.state != State.ACTIVE:
        return session_view(row)  # ending, ended or failed: nothing more to do
    now = datetime.now(UTC)
    # Asked for by a client or an operator, this end supersedes any claim the reconciler
    # holds.
    move = ending(reason, now=now, recheck_at=now + confirm_after)
    moved = await make(connections, row, move.with_changes(claimed_by=None), lease=None)
    if moved is None:
        # It moved on meanwhile (a webhook's end confirmed, or another end): as it is now.
        async with sessionmaker() as db:
            current = await SessionRepository(db).get_for_tenant(tenant_id, session_id)
        assert current is not None
        return session_view(current)
    if moved.conversation_id is not None:
        tavus = await accounts.for_tenant(tenant_id)
        try:
            await tavus.end_conversation(moved.conversation_id)
        except TavusNotFound:
            pass  # already gone on Tavus: the reconciler confirms and finishes
        except TavusError as error:
            # Left ending: the reconciler retries the end until Tavus confirms.
            logger.warning("ending conversation failed: %s", error.message)
    return session_view(moved)
