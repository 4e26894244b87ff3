from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.domain.sessions.webhooks import EVENT_CLOCK_SKEW, event_time

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
