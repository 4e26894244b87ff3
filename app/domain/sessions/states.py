"""The session state machine: one transition table, checked on every move.

Internal states are the saga's recovery points; the API shows a coarser ``status``.
A crash between two points leaves the row at the last one reached, and everything needed
to finish or compensate from there (the tags of what may exist on Tavus) is stored
before each Tavus call.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    # Slot taken and the plan stored; the first Tavus create may have been sent.
    ADMITTED = "admitted"
    # The ephemeral PAL exists on Tavus (its id is stored); the conversation may have been sent.
    PAL_CREATED = "pal_created"
    # The conversation exists on Tavus and is billed.
    ACTIVE = "active"
    # Palisade asked Tavus to end the conversation and waits for confirmation.
    ENDING = "ending"
    ENDED = "ended"
    # Creation could not complete; whatever was created is compensated.
    FAILED = "failed"


class Status(StrEnum):
    """What API clients see."""

    CREATING = "creating"
    ACTIVE = "active"
    ENDING = "ending"
    ENDED = "ended"
    FAILED = "failed"


class Cleanup(StrEnum):
    NOT_NEEDED = "not_needed"
    PENDING = "pending"
    DONE = "done"


STATUS_OF: dict[State, Status] = {
    State.ADMITTED: Status.CREATING,
    State.PAL_CREATED: Status.CREATING,
    State.ACTIVE: Status.ACTIVE,
    State.ENDING: Status.ENDING,
    State.ENDED: Status.ENDED,
    State.FAILED: Status.FAILED,
}

STATES_OF: dict[Status, frozenset[State]] = {
    status: frozenset(state for state, s in STATUS_OF.items() if s is status) for status in Status
}

TERMINAL: frozenset[State] = frozenset({State.ENDED, State.FAILED})

TRANSITIONS: dict[State, frozenset[State]] = {
    State.ADMITTED: frozenset({State.PAL_CREATED, State.ACTIVE, State.FAILED}),
    State.PAL_CREATED: frozenset({State.ACTIVE, State.FAILED}),
    # A shutdown may be reported before Palisade asked for an end.
    State.ACTIVE: frozenset({State.ENDING, State.ENDED}),
    State.ENDING: frozenset({State.ENDED}),
    State.ENDED: frozenset(),
    State.FAILED: frozenset(),
}


class InvalidTransition(ValueError):
    def __init__(self, current: State, target: State) -> None:
        super().__init__(f"a session cannot move from {current} to {target}")
        self.current = current
        self.target = target


def sources_of(target: State) -> frozenset[State]:
    """The states from which ``target`` may be reached: the guard of a compare-and-set."""
    return _SOURCES[target]


_SOURCES: dict[State, frozenset[State]] = {
    target: frozenset(state for state, targets in TRANSITIONS.items() if target in targets)
    for target in State
}


def can_move(current: State, target: State) -> bool:
    return target in TRANSITIONS[current]


def check_move(current: State, target: State) -> None:
    if not can_move(current, target):
        raise InvalidTransition(current, target)


def status_of(state: State | str) -> Status:
    return STATUS_OF[State(state)]


def is_terminal(state: State | str) -> bool:
    return State(state) in TERMINAL
