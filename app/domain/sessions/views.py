"""What API clients see of a session and its event log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from app.db.models import Session, SessionEvent
from app.domain.sessions.artifacts import Artifacts, artifacts_view
from app.domain.sessions.states import Cleanup, State, Status, status_of


class SessionPublic(BaseModel):
    id: uuid.UUID
    tenant_id: str
    profile: str
    strategy: Literal["reuse", "ephemeral"]
    strategy_reason: str
    status: Status
    cleanup: Cleanup
    pal_id: str | None
    pal_ephemeral: bool
    conversation_id: str | None
    conversation_url: str | None
    external_ref: str | None
    created_at: datetime
    active_at: datetime | None
    #: When the face joined the room.
    joined_at: datetime | None
    ending_at: datetime | None
    ended_at: datetime | None
    deadline_at: datetime | None
    end_reason: str | None
    error: dict[str, Any] | None
    #: The conversation's run on Tavus, from its creation to its end by Tavus's clock:
    #: what the session cost. None while unknown (the conversation runs, or Tavus told
    #: neither time).
    billed_seconds: float | None
    #: The billed seconds the room ran with nobody in it at the end, when Tavus's
    #: shutdown reason tells; None when it does not.
    idle_seconds: float | None
    #: What Tavus sent after the call (each None until it has).
    artifacts: Artifacts


class SessionPage(BaseModel):
    items: list[SessionPublic]
    next_cursor: str | None


class SessionEventPublic(BaseModel):
    id: int
    kind: str
    type: str
    from_state: str | None
    to_state: str | None
    payload: dict[str, Any]
    occurred_at: datetime | None
    created_at: datetime


class SessionEventList(BaseModel):
    items: list[SessionEventPublic]
    next_cursor: str | None


class SessionSnapshot(BaseModel):
    """A session row as JSON (``to_jsonb`` of the row, as the webhook outbox keeps it):
    the columns the view reads, so a snapshot renders exactly as the row did."""

    id: uuid.UUID
    tenant_id: str
    profile: str
    strategy: Literal["reuse", "ephemeral"]
    strategy_reason: str
    state: str
    cleanup: str
    pal_id: str | None
    pal_ephemeral: bool
    conversation_id: str | None
    conversation_url: str | None
    external_ref: str | None
    created_at: datetime
    active_at: datetime | None
    joined_at: datetime | None
    ending_at: datetime | None
    ended_at: datetime | None
    deadline_at: datetime | None
    end_reason: str | None
    error: dict[str, Any] | None
    billed_seconds: float | None
    idle_seconds: float | None
    artifacts: dict[str, Any] | None


def session_view(row: Session | SessionSnapshot) -> SessionPublic:
    return SessionPublic(
        id=row.id,
        tenant_id=row.tenant_id,
        profile=row.profile,
        strategy=row.strategy,
        strategy_reason=row.strategy_reason,
        status=status_of(row.state),
        cleanup=Cleanup(row.cleanup),
        pal_id=row.pal_id,
        pal_ephemeral=row.pal_ephemeral,
        conversation_id=row.conversation_id,
        conversation_url=row.conversation_url,
        external_ref=row.external_ref,
        created_at=row.created_at,
        active_at=row.active_at,
        joined_at=row.joined_at,
        ending_at=row.ending_at,
        ended_at=row.ended_at,
        deadline_at=row.deadline_at,
        end_reason=row.end_reason,
        error=row.error,
        billed_seconds=row.billed_seconds,
        idle_seconds=row.idle_seconds,
        artifacts=artifacts_view(row.artifacts, ended=row.state == State.ENDED),
    )


def event_view(row: SessionEvent) -> SessionEventPublic:
    return SessionEventPublic(
        id=row.id,
        kind=row.kind,
        type=row.type,
        from_state=row.from_state,
        to_state=row.to_state,
        payload=row.payload,
        occurred_at=row.occurred_at,
        created_at=row.created_at,
    )
