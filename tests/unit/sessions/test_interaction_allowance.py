"""Palisade's allowance per conversation: never more than Tavus's limit in any window."""

from __future__ import annotations

import itertools

from app.domain.sessions.interactions import TAVUS_RATE_WINDOW_SECONDS, ConversationAllowance


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_tenth_of_the_limit_goes_at_once_then_one_waits() -> None:
    clock = Clock()
    allowance = ConversationAllowance(120, clock=clock)

    taken = [allowance.take("c1") for _ in range(13)]

    assert taken[:12] == [0.0] * 12
    assert 0 < taken[12] <= 1.0


def test_no_window_ever_sees_more_than_the_limit() -> None:
    clock = Clock()
    allowance = ConversationAllowance(120, clock=clock)
    sent: list[float] = []
    # A caller sending as fast as it is allowed, for five minutes, in 50 ms steps.
    for step in itertools.count():
        clock.now = step * 0.05
        if clock.now > 300:
            break
        if allowance.take("c1") == 0.0:
            sent.append(clock.now)

    for start in sent:
        in_window = [t for t in sent if start <= t < start + TAVUS_RATE_WINDOW_SECONDS]
        assert len(in_window) <= 120
    # And the allowance is used, not starved: close to the limit per minute.
    assert len(sent) >= 5 * 105


def test_each_conversation_has_its_own_bucket() -> None:
    allowance = ConversationAllowance(4, clock=Clock())

    assert allowance.take("c1") == 0.0
    assert allowance.take("c1") > 0
    assert allowance.take("c2") == 0.0


def test_the_wait_says_when_the_next_token_comes() -> None:
    clock = Clock()
    allowance = ConversationAllowance(4, clock=clock)
    allowance.take("c1")

    wait = allowance.take("c1")
    clock.now = wait

    assert allowance.take("c1") == 0.0


def test_zero_turns_it_off() -> None:
    allowance = ConversationAllowance(0, clock=Clock())

    assert all(allowance.take("c1") == 0.0 for _ in range(1000))
