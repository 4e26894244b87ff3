from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.sessions.webhooks import EVENT_CLOCK_SKEW, event_time, parse_event, without_token

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-11-23T09:59:00Z", datetime(2026, 11, 23, 9, 59, tzinfo=UTC)),
        ("2026-11-23T09:59:00.123456+00:00", datetime(2026, 11, 23, 9, 59, 0, 123456, tzinfo=UTC)),
        ("2026-11-23T11:59:00+02:00", datetime(2026, 11, 23, 9, 59, tzinfo=UTC)),
        ("2026-11-23T09:59:00", datetime(2026, 11, 23, 9, 59, tzinfo=UTC)),
        ("2020-01-01T00:00:00Z", datetime(2020, 1, 1, tzinfo=UTC)),
    ],
)
def test_usable_times_are_read_in_utc(timestamp: str, expected: datetime) -> None:
    found = event_time({"timestamp": timestamp}, now=NOW)
    assert found == expected
    assert found is not None
    assert found.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "timestamp",
    [
        None,
        12,
        "",
        "yesterday",
        "0001-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
        "1970-01-01T00:00:00Z",
        "2019-12-31T23:59:59Z",
        "3000-01-01T00:00:00Z",
        "+275760-09-13T00:00:00Z",
    ],
)
def test_times_outside_the_window_are_none(timestamp: object) -> None:
    assert event_time({"timestamp": timestamp}, now=NOW) is None


def test_a_clock_a_little_ahead_is_believed_and_far_ahead_is_not() -> None:
    near = (NOW + EVENT_CLOCK_SKEW).isoformat()
    far = (NOW + EVENT_CLOCK_SKEW + timedelta(seconds=1)).isoformat()
    assert event_time({"timestamp": near}, now=NOW) == NOW + EVENT_CLOCK_SKEW
    assert event_time({"timestamp": far}, now=NOW) is None


TOKEN = "EREewune2pVWUiKRPvrsNLtA-spB-Nqir8r6ko57240"
BASE = "https://palisade.example/webhooks/tavus/8e90c042"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{BASE}?token={TOKEN}", BASE),
        (f"{BASE}?v=2&token={TOKEN}&x=1", f"{BASE}?v=2&x=1"),
        (f"{BASE}?token={TOKEN}&x=1", f"{BASE}?x=1"),
        (f"{BASE}?x=1&token={TOKEN}", f"{BASE}?x=1"),
        (f"{BASE}?token={TOKEN}#part", f"{BASE}#part"),
        # Another session's token, or none: a token parameter is dropped whatever it holds.
        (f"{BASE}?token=other&token=", BASE),
        (f"sent to {BASE}?token={TOKEN} at noon", f"sent to {BASE} at noon"),
        (f"two: {BASE}?token={TOKEN} and {BASE}?a=b&token=x", f"two: {BASE} and {BASE}?a=b"),
        (f"plain {TOKEN} text", "plain [redacted] text"),
        (TOKEN, "[redacted]"),
        (f"{BASE}?mytoken=1&tokens=2", f"{BASE}?mytoken=1&tokens=2"),
        ("How are you? token=fine, thanks", "How are you? token=fine, thanks"),
        ("nothing to see", "nothing to see"),
    ],
)
def test_the_token_is_taken_out_of_text(text: str, expected: str) -> None:
    assert without_token(text, TOKEN) == expected


def test_a_parsed_event_carries_no_token_anywhere() -> None:
    url = f"{BASE}?token={TOKEN}"
    event = {
        "event_type": "system.shutdown",
        "conversation_id": "c1",
        "webhook_url": url,
        "properties": {TOKEN: [url, {"callback_url": url}], "note": "\x00"},
    }
    parsed = parse_event(json.dumps(event).encode(), token=TOKEN)
    assert TOKEN not in json.dumps(parsed)
    assert parsed["webhook_url"] == BASE
    assert parsed["properties"] == {"[redacted]": [BASE, {"callback_url": BASE}], "note": "\ufffd"}
