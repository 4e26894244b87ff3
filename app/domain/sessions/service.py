"""Reading and ending sessions. Services flush, never commit."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.sessions import SessionRepository
from app.db.repositories.tenants import TenantRepository
from app.domain.sessions.errors import SessionNotEndable, SessionNotFound
from app.domain.sessions.states import STATES_OF, State, Status, check_move
from app.domain.sessions.views import (
    SessionEventList,
    SessionPage,
    SessionPublic,
    decode_cursor,
    decode_event_cursor,
    encode_cursor,
    encode_event_cursor,
    event_view,
    session_view,
)
from app.security.secret_box import SecretBox
from app.tavus.client import TavusClient
from app.tavus.errors import TavusError, TavusNotFound

logger = logging.getLogger(__name__)


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
        before=decode_cursor(cursor) if cursor else None,
    )
    page = rows[:limit]
    return SessionPage(
        items=[session_view(r) for r in page],
        next_cursor=encode_cursor(page[-1]) if len(rows) > limit and page else None,
    )


async def list_events(
    db: AsyncSession, tenant_id: str, session_id: uuid.UUID, *, limit: int, cursor: str | None
) -> SessionEventList:
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


async def end_session(
    sessionmaker: async_sessionmaker[AsyncSession],
    tenant_id: str,
    session_id: uuid.UUID,
    *,
    tavus: TavusClient,
    secret_box: SecretBox,
    confirm_after: timedelta,
) -> SessionPublic:
    """Ask for the end of a session; idempotent. Moves an active session to ``ending``
    (stored before Tavus is called), then ends the conversation on Tavus. The shutdown
    webhook or the reconciler (``confirm_after`` from now, if no webhook has come) moves
    it to ``ended`` and cleans up."""
    now = datetime.now(UTC)
    async with sessionmaker.begin() as db:
        repo = SessionRepository(db)
        row = await repo.get_for_update(session_id)
        if row is None or row.tenant_id != tenant_id:
            raise SessionNotFound(f"session {session_id} does not exist")
        if row.state in (State.ADMITTED, State.PAL_CREATED):
            raise SessionNotEndable(
                "the session is still being created; end it once it is active",
                headers={"Retry-After": "1"},
            )
        if row.state != State.ACTIVE:
            return session_view(row)  # ending, ended or failed: nothing more to do
        check_move(State.ACTIVE, State.ENDING)
        row.state = State.ENDING
        row.ending_at = now
        row.end_reason = "ended_by_client"
        row.next_check_at = now + confirm_after
        await repo.add_event(
            row.id,
            kind="transition",
            type="session.ending",
            from_state=State.ACTIVE,
            to_state=State.ENDING,
            payload={"reason": "ended_by_client"},
        )
        tenant = await TenantRepository(db).get(tenant_id)
        encrypted = tenant.tavus_api_key_encrypted if tenant else None
        conversation_id = row.conversation_id
    client = tavus.with_api_key(secret_box.decrypt(encrypted)) if encrypted else tavus
    if conversation_id is not None:
        try:
            await client.end_conversation(conversation_id)
        except TavusNotFound:
            pass  # already gone on Tavus: the reconciler confirms and finishes
        except TavusError as error:
            # Left ending: the reconciler retries the end until Tavus confirms.
            logger.warning("ending conversation failed: %s", error.message)
    return session_view(row)
