"""Moves after a session is active, shared by webhooks, explicit ends and the reconciler."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from app.db.models import Session
from app.db.repositories.sessions import SessionRepository
from app.domain.sessions.states import Cleanup, State, check_move
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


async def mark_ended(
    repo: SessionRepository,
    row: Session,
    *,
    reason: str,
    at: datetime,
    source: str,
    now: datetime,
) -> bool:
    """Move an active or ending session to ended; False if it was not in such a state.

    Only for an end Tavus has confirmed: this frees the tenant's slot and, for an
    ephemeral session, makes the PAL due for deletion at once. ``at`` (Tavus's time of
    the end) is kept between the session's creation and ``now``: another clock, or a
    forged event, never puts an end before the start or in the future. An explicit end
    keeps its own reason (the client asked first).
    """
    if row.state not in (State.ACTIVE, State.ENDING):
        return False
    source_state = row.state
    check_move(State(row.state), State.ENDED)
    row.state = State.ENDED
    row.ended_at = within(at, row.created_at, now)
    row.end_reason = row.end_reason or reason
    row.claimed_by = None
    row.next_check_at = now if row.cleanup == Cleanup.PENDING else None
    if row.shutdown_claimed_at is not None:
        row.shutdown_claimed_at = None
        metrics.shutdown_claim(confirmed=True)
    await repo.add_event(
        row.id,
        kind="transition",
        type="session.ended",
        from_state=source_state,
        to_state=State.ENDED,
        payload={"reason": reason, "source": source},
    )
    return True


def within(at: datetime, earliest: datetime | None, latest: datetime) -> datetime:
    """``at`` moved into ``[earliest, latest]``."""
    if earliest is not None and at < earliest:
        return earliest
    return min(at, latest)


async def mark_ending(
    repo: SessionRepository, row: Session, *, reason: str, now: datetime, recheck_at: datetime
) -> None:
    check_move(State(row.state), State.ENDING)
    source_state = row.state
    row.state = State.ENDING
    row.ending_at = now
    row.end_reason = reason
    row.next_check_at = recheck_at
    await repo.add_event(
        row.id,
        kind="transition",
        type="session.ending",
        from_state=source_state,
        to_state=State.ENDING,
        payload={"reason": reason},
    )
