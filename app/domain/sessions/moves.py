"""How a session moves: one ``Move``, checked against the transition table, made by the
session store in one statement (``app.db.session_store``).

The start saga, the warm pool's claim, the reconciler and an end asked for through the
API all move sessions this way and no other: the target is checked against
``states.TRANSITIONS`` here, and its sources become the store's compare-and-set guard,
so the table is the state machine in Python and in SQL alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.db.models import Session
from app.db.raw import RawConnections
from app.db.session_store import EventRecord, Lease, SessionStore
from app.domain.sessions.states import State, check_move, sources_of
from app.errors import Rendered
from app.observability import tracing


class LeaseLost(Exception):
    """Another process took over a session whose lease this one let run out, or the
    session moved on meanwhile: whatever was done on Tavus, the new holder finds it by
    its tag, and this process must not write over it."""

    def __init__(self, session_id: uuid.UUID) -> None:
        super().__init__(str(session_id))
        self.session_id = session_id


@dataclass(frozen=True)
class Move:
    """A change of one session: to ``target`` (None: it keeps its state) with
    ``changes`` to its columns and an ``event`` in its log. ``then`` runs with the
    session as the move left it, once the move has happened (metrics)."""

    target: State | None
    changes: Mapping[str, Any]
    event: EventRecord | None = None
    then: Callable[[Session], None] | None = field(default=None, compare=False)

    def with_changes(self, **more: Any) -> Move:
        return Move(self.target, {**self.changes, **more}, self.event, self.then)


def transition(target: State, payload: Mapping[str, Any] | None = None, **changes: Any) -> Move:
    """A move to ``target``, logged as ``session.<target>``."""
    event = EventRecord(kind="transition", type=f"session.{target}", payload=dict(payload or {}))
    return Move(target, changes, event)


def image_after(row: Session, move: Move) -> Session:
    """A detached copy of ``row`` with ``move`` applied, as the database will hold it."""
    values = {column.key: getattr(row, column.key) for column in Session.__table__.columns}
    values.update(move.changes)
    if move.target is not None:
        values["state"] = move.target
    if "end_reason" in move.changes and row.end_reason is not None:
        values["end_reason"] = row.end_reason  # an end keeps its first reason
    return Session(**values)


async def make(
    via: SessionStore | RawConnections,
    row: Session,
    move: Move,
    *,
    lease: Lease | None,
    answer: Rendered | None = None,
    key_locked_until: datetime | None = None,
    wait_for_disk: bool = True,
    image: Session | None = None,
) -> Session | None:
    """Make ``move`` on the session ``row`` is an image of: the session as the move left
    it, or None when it no longer matches (its state moved on, or, with a ``lease``,
    another process holds it now). ``row``'s state must allow the move.

    ``image``: ``image_after(row, move)`` if the caller built it already (for the
    answer); it becomes the session returned.

    ``via`` a store: the move joins what runs on its connection (a transaction);
    ``via`` the pool's connections: it commits by itself.
    """
    with tracing.span("session.move", lambda: _traced(row, move)):
        if isinstance(via, RawConnections):
            async with via.connect() as connection:
                return await _make(
                    SessionStore(connection),
                    row,
                    move,
                    lease=lease,
                    answer=answer,
                    key_locked_until=key_locked_until,
                    wait_for_disk=wait_for_disk,
                    image=image,
                )
        return await _make(
            via,
            row,
            move,
            lease=lease,
            answer=answer,
            key_locked_until=key_locked_until,
            wait_for_disk=wait_for_disk,
            image=image,
        )


def _traced(row: Session, move: Move) -> dict[str, str]:
    attributes = {"palisade.session_id": str(row.id), "palisade.move.from": str(row.state)}
    if move.target is not None:
        attributes["palisade.move.to"] = str(move.target)
    return attributes


async def _make(
    via: SessionStore,
    row: Session,
    move: Move,
    *,
    lease: Lease | None,
    answer: Rendered | None,
    key_locked_until: datetime | None,
    wait_for_disk: bool,
    image: Session | None,
) -> Session | None:
    changes = dict(move.changes)
    from_states = None
    if move.target is not None:
        check_move(State(row.state), move.target)
        from_states = sources_of(move.target)
        changes["state"] = move.target
    moved = await via.move(
        row.id,
        lease=lease,
        from_states=from_states,
        changes=changes,
        event=move.event,
        answer=answer,
        key_locked_until=key_locked_until,
        wait_for_disk=wait_for_disk,
    )
    if moved is None:
        return None
    image = image if image is not None else image_after(row, move)
    image.updated_at = moved.updated_at
    image.early_events = moved.early_events
    if move.then is not None:
        move.then(image)
    return image
