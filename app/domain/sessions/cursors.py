"""Keyset cursors of the tenant API's pages: opaque to clients, checked completely when
they come back.

A cursor is base64url (unpadded) of a JSON array naming the last item of a page. A
client is only ever meant to pass back a ``next_cursor`` unchanged, but whatever it
sends is decoded by the strict JSON decoder and checked member by member (type, shape
and range) before it reaches a query: anything else is 400 ``invalid_cursor``, never a
value the driver or PostgreSQL would refuse.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime
from typing import Any, Final

from app.domain import strict_json
from app.domain.sessions.errors import InvalidCursor

# Event ids are PostgreSQL bigints.
_MAX_EVENT_ID: Final = 2**63 - 1
_UNCHANGED: Final = "pass back the next_cursor of a previous page unchanged"


def encode_session_cursor(created_at: datetime, session_id: uuid.UUID) -> str:
    return _encode([created_at.isoformat(), str(session_id)])


def decode_session_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The ``(created_at, id)`` after which the next page of sessions starts."""
    members = _decode(cursor)
    if not (
        isinstance(members, list)
        and len(members) == 2
        and all(isinstance(member, str) for member in members)
    ):
        raise InvalidCursor(_UNCHANGED)
    created_at, session_id = members
    return _instant(created_at), _uuid(session_id)


def encode_event_cursor(event_id: int) -> str:
    return _encode([event_id])


def decode_event_cursor(cursor: str) -> int:
    """The id of the last event of the previous page."""
    members = _decode(cursor)
    if not (isinstance(members, list) and len(members) == 1):
        raise InvalidCursor(_UNCHANGED)
    [event_id] = members
    # bool is an int to Python; a float is not an id even when integral.
    if type(event_id) is not int or not 1 <= event_id <= _MAX_EVENT_ID:
        raise InvalidCursor(_UNCHANGED)
    return event_id


def _encode(members: list[Any]) -> str:
    raw = json.dumps(members, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> Any:
    try:
        padded = cursor.encode("ascii") + b"=" * (-len(cursor) % 4)
        # validate: characters outside the alphabet are an error, not skipped.
        raw = base64.b64decode(padded, altchars=b"-_", validate=True)
        return strict_json.loads(raw)
    except (UnicodeEncodeError, binascii.Error, strict_json.StrictJsonError):
        raise InvalidCursor(_UNCHANGED) from None


def _instant(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidCursor(_UNCHANGED) from None
    if parsed.tzinfo is None:
        raise InvalidCursor(_UNCHANGED)
    try:
        # A time near year 1 or 9999 with an offset has no UTC equivalent Python (or
        # the driver, which converts it) can represent.
        return parsed.astimezone(UTC)
    except OverflowError:
        raise InvalidCursor(_UNCHANGED) from None


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidCursor(_UNCHANGED) from None
