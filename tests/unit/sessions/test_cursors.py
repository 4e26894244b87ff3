from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.domain.sessions.cursors import (
    decode_event_cursor,
    decode_session_cursor,
    encode_event_cursor,
    encode_session_cursor,
)
from app.domain.sessions.errors import InvalidCursor


def test_a_session_cursor_comes_back_as_it_went_out() -> None:
    created_at = datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=UTC)
    session_id = uuid.uuid4()
    assert decode_session_cursor(encode_session_cursor(created_at, session_id)) == (
        created_at,
        session_id,
    )


def test_a_session_cursor_time_is_read_in_utc() -> None:
    east = datetime(2026, 11, 23, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    decoded, _ = decode_session_cursor(encode_session_cursor(east, uuid.uuid4()))
    assert decoded.utcoffset() == timedelta(0)
    assert decoded == east


@pytest.mark.parametrize("event_id", [1, 42, 2**63 - 1])
def test_an_event_cursor_comes_back_as_it_went_out(event_id: int) -> None:
    assert decode_event_cursor(encode_event_cursor(event_id)) == event_id


def test_cursors_of_one_list_are_refused_by_the_other() -> None:
    with pytest.raises(InvalidCursor):
        decode_event_cursor(encode_session_cursor(datetime.now(UTC), uuid.uuid4()))
    with pytest.raises(InvalidCursor):
        decode_session_cursor(encode_event_cursor(7))


@pytest.mark.parametrize("cursor", ["", "=", "é", "a b", "WyJ4Il0=="])
def test_text_that_is_not_a_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_session_cursor(cursor)
    with pytest.raises(InvalidCursor):
        decode_event_cursor(cursor)
