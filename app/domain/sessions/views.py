"""What API clients see of a session and its event log."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from app.db.models import Session, SessionEvent
from app.domain.sessions.errors import InvalidCursor
from app.domain.sessions.states import Cleanup, Status, status_of


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
    ending_at: datetime | None
    ended_at: datetime | None
    deadline_at: datetime | None
    end_reason: str | None
    error: dict[str, Any] | None


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


def session_view(row: Session) -> SessionPublic:
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
        ending_at=row.ending_at,
        ended_at=row.ended_at,
        deadline_at=row.deadline_at,
        end_reason=row.end_reason,
        error=row.error,
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


def encode_cursor(row: Session) -> str:
    raw = json.dumps([row.created_at.isoformat(), str(row.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, session_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(created_at), uuid.UUID(session_id)
    except (ValueError, TypeError) as exc:
        raise InvalidCursor("pass back the next_cursor of a previous page unchanged") from exc


def encode_event_cursor(event_id: int) -> str:
    raw = json.dumps(["event", event_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_event_cursor(cursor: str) -> int:
    """The id of the last event of the previous page."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        kind, event_id = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError) as exc:
        raise InvalidCursor("pass back the next_cursor of a previous page unchanged") from exc
    if kind != "event" or not isinstance(event_id, int) or event_id < 0:
        raise InvalidCursor("pass back the next_cursor of a previous page unchanged")
    return event_id
