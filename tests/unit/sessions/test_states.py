from __future__ import annotations

import itertools

import pytest

from app.domain.sessions.states import (
    STATES_OF,
    STATUS_OF,
    TERMINAL,
    TRANSITIONS,
    InvalidTransition,
    State,
    Status,
    can_move,
    check_move,
    is_terminal,
    status_of,
)

ALLOWED = {
    (State.ADMITTED, State.PAL_CREATED),
    (State.ADMITTED, State.ACTIVE),
    (State.ADMITTED, State.FAILED),
    (State.PAL_CREATED, State.ACTIVE),
    (State.PAL_CREATED, State.FAILED),
    (State.ACTIVE, State.ENDING),
    (State.ACTIVE, State.ENDED),
    (State.ENDING, State.ENDED),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(State, State)))
def test_every_pair_is_allowed_exactly_when_listed(current: State, target: State) -> None:
    assert can_move(current, target) == ((current, target) in ALLOWED)
    if (current, target) in ALLOWED:
        check_move(current, target)
    else:
        with pytest.raises(InvalidTransition):
            check_move(current, target)


def test_terminal_states_have_no_way_out() -> None:
    assert {State.ENDED, State.FAILED} == TERMINAL
    for state in TERMINAL:
        assert TRANSITIONS[state] == frozenset()
        assert is_terminal(state)
    assert not is_terminal("active")


def test_every_state_reaches_a_terminal_state() -> None:
    for start in State:
        seen, frontier = {start}, [start]
        while frontier:
            for nxt in TRANSITIONS[frontier.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        assert seen & TERMINAL, start


def test_status_mapping_covers_every_state_and_inverts() -> None:
    assert set(STATUS_OF) == set(State)
    assert status_of("pal_created") is Status.CREATING
    for status, states in STATES_OF.items():
        assert states
        assert all(STATUS_OF[s] is status for s in states)
