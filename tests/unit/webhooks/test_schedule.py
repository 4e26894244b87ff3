"""The retry schedule docs/webhooks.md states: about a day, with jitter."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pytest

from app.db.repositories.webhooks import FAILED, PENDING, AttemptRecord
from app.domain.leased_loop import utcnow
from app.domain.webhooks.sender import DEFAULT_RETRY_SCHEDULE, JITTER, SenderConfig, WebhookSender


def sender(config: SenderConfig) -> WebhookSender:
    unused = cast(Any, None)
    return WebhookSender(unused, unused, unused, unused, "owner", config)


def test_the_default_schedule_spans_about_a_day() -> None:
    waits = [w.total_seconds() for w in DEFAULT_RETRY_SCHEDULE]
    assert waits == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert 24 <= sum(waits) / 3600 <= 30


@pytest.mark.parametrize("attempts", range(1, len(DEFAULT_RETRY_SCHEDULE) + 1))
def test_each_wait_is_jittered_within_its_share(attempts: int) -> None:
    base = DEFAULT_RETRY_SCHEDULE[attempts - 1]
    waits = {sender(SenderConfig()).retry_wait(attempts) for _ in range(50)}
    assert all(base * (1 - JITTER) <= wait <= base * (1 + JITTER) for wait in waits)
    assert len(waits) > 1


def test_the_attempt_after_the_last_wait_fails_the_delivery() -> None:
    work = sender(SenderConfig(retry_schedule=(timedelta(seconds=1), timedelta(seconds=2))))
    attempt = AttemptRecord(utcnow(), 503, 1.0, None, None)
    outcomes = [work._retry_or_fail(n, attempt, "503").status for n in (1, 2, 3)]
    assert outcomes == [PENDING, PENDING, FAILED]


def test_the_lease_outlasts_an_attempt() -> None:
    assert SenderConfig(timeout=timedelta(seconds=10)).lease == timedelta(seconds=30)
    assert SenderConfig(timeout=timedelta(milliseconds=100)).lease == timedelta(seconds=3)
