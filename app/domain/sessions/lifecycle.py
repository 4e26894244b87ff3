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
    tavus_ended_at: datetime | None = None,
    tavus_created_at: datetime | None = None,
) -> Move:
    """The move of an active or ending session to ended, once Tavus has confirmed the end.

    It frees the tenant's slot and, for an ephemeral session, makes the PAL due for
    deletion at once. ``at`` (Tavus's time of the end) is kept between the session's
    creation and ``now``: another clock, or a forged event, never puts an end before the
    start or in the future. An end asked for earlier keeps its own reason.

    ``tavus_ended_at``, when Tavus told the end's time, makes the session's cost known
    (``billing``); ``tavus_created_at`` is the creation time Tavus reported with it.
    """
    changes: dict[str, object] = {
        "ended_at": within(at, row.created_at, now),
        "end_reason": reason,
        "claimed_by": None,
        "next_check_at": now if row.cleanup == Cleanup.PENDING else None,
        "attempts": 0,
    }
    cost = billing(row, reason=reason, ended_at=tavus_ended_at, created_at=tavus_created_at)
    changes.update(cost)
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
        metrics.session_billed(moved)

    move = transition(State.ENDED, {"reason": reason, "source": source}, **changes)
    return Move(move.target, move.changes, move.event, counted)


def billing(
    row: Session,
    *,
    reason: str,
    ended_at: datetime | None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """What the session cost, as columns to set: ``billed_seconds`` from the
    conversation's creation to ``ended_at``, both Tavus's times (the creation stored when
    the conversation was made, else ``created_at`` as a read of it reported, else the
    session's ``active_at`` by Palisade's clock), and ``idle_seconds``. Nothing when the
    end's time is unknown or the cost is known already."""
    if ended_at is None or row.billed_seconds is not None:
        return {}
    start = row.conversation_created_at or created_at or row.active_at
    if start is None:
        return {}
    seconds = (ended_at - start).total_seconds()
    if seconds < 0:
        return {}  # clocks or a forged time disagree: better unknown than wrong
    changes: dict[str, Any] = {
        "billed_seconds": seconds,
        "idle_seconds": idle_seconds(row, reason, seconds),
    }
    if row.conversation_created_at is None and created_at is not None:
        changes["conversation_created_at"] = created_at
    return changes


def idle_seconds(row: Session, reason: str, billed: float) -> float | None:
    """The billed seconds the room ran with nobody in it at the end, when Tavus's
    shutdown ``reason`` tells: after the last participant left, the profile's
    ``participant_left_timeout`` (Tavus waits that long, then ends it); when nobody ever
    joined, all of it. Tavus sends no webhook when a participant joins or leaves (those
    are events inside the room), so for any other end Palisade cannot tell."""
    if reason == "participant_absent_timeout":
        return billed
    if reason == "participant_left_timeout":
        properties = (row.resolved.get("conversation_body") or {}).get("properties") or {}
        timeout = properties.get("participant_left_timeout")
        if isinstance(timeout, int | float) and not isinstance(timeout, bool):
            return min(float(timeout), billed)
    return None


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
