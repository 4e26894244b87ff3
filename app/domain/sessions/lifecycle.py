"""The moves after a session is active, shared by explicit ends and the reconciler."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from app.db.models import Session
from app.domain.sessions.moves import Move, transition
from app.domain.sessions.states import Cleanup, State
from app.observability import metrics

# Tavus's documented shutdown reasons, matched by prefix: its own examples drop the
# " reached" suffix, and "internal error occurred at step x" varies in its tail.
SHUTDOWN_REASONS: Final = (
    ("max_call_duration", "max_call_duration"),
    ("participant_left_timeout", "participant_left_timeout"),
    ("participant_absent_timeout", "participant_absent_timeout"),
    ("end_conversation_endpoint_hit", "end_conversation_endpoint_hit"),
    ("bot_could_not_join_meeting", "bot_could_not_join_meeting"),
    ("daily_room_has_been_deleted", "daily_room_has_been_deleted"),
    ("exception_encountered_during_conversation_startup", "exception_during_startup"),
    ("internal error occurred", "tavus_internal_error"),
)


def normalise_shutdown_reason(raw: Any) -> str:
    text = str(raw or "").strip()
    lowered = text.lower()
    for prefix, reason in SHUTDOWN_REASONS:
        if lowered.startswith(prefix):
            return reason
    return f"tavus:{text[:100]}" if text else "tavus:unspecified"


def ended(
    row: Session,
    *,
    reason: str,
    at: datetime,
    source: str,
    now: datetime,
    joined_at: datetime | None = None,
) -> Move:
    """The move of an active or ending session to ended, once Tavus has confirmed the end.

    It frees the tenant's slot and, for an ephemeral session, makes the PAL due for
    deletion at once. ``at`` (Tavus's time of the end) is kept between the session's
    creation and ``now``: another clock, or a forged event, never puts an end before the
    start or in the future. An end asked for earlier keeps its own reason.
    """
    changes: dict[str, object] = {
        "ended_at": within(at, row.created_at, now),
        "end_reason": reason,
        "claimed_by": None,
        "next_check_at": now if row.cleanup == Cleanup.PENDING else None,
        "attempts": 0,
    }
    if row.shutdown_claimed_at is not None:
        changes["shutdown_claimed_at"] = None
    if joined_at is not None and row.joined_at is None:
        changes["joined_at"] = within(joined_at, row.created_at, now)
    confirmed_claim = row.shutdown_claimed_at is not None
    newly_joined = "joined_at" in changes

    def counted(moved: Session) -> None:
        if confirmed_claim:
            metrics.shutdown_claim(confirmed=True)
        if newly_joined:
            metrics.face_joined(moved)

    move = transition(State.ENDED, {"reason": reason, "source": source}, **changes)
    return Move(move.target, move.changes, move.event, counted)


def ending(reason: str, *, now: datetime, recheck_at: datetime) -> Move:
    """The move of an active session to ending: Palisade asked Tavus to end it and
    checks at ``recheck_at`` that it did."""
    return transition(
        State.ENDING,
        {"reason": reason},
        ending_at=now,
        end_reason=reason,
        next_check_at=recheck_at,
    )


def within(at: datetime, earliest: datetime | None, latest: datetime) -> datetime:
    """``at`` moved into ``[earliest, latest]``."""
    if earliest is not None and at < earliest:
        return earliest
    return min(at, latest)
