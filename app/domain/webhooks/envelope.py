"""What a receiver gets: the event's envelope, rendered from the outbox row.

``data`` is the session view of ``GET /sessions/{id}`` as the change left the session
(the snapshot the trigger took), never the session as it is when the event is sent: a
retry a day later carries the same data, and a receiver reading ``session.active`` sees
an active session even if it ended meanwhile.
"""

from __future__ import annotations

import json
from typing import Any

from app.db.models import WebhookEvent
from app.domain.sessions.views import SessionSnapshot, session_view

EVENT_TYPES = (
    "session.active",
    "session.ended",
    "session.failed",
    "session.cleanup_done",
    "session.transcript_ready",
    "session.recording_ready",
)


def message_id(event: WebhookEvent) -> str:
    """The event's stable id: the ``webhook-id`` of every attempt, to every endpoint."""
    return f"evt_{event.id.hex}"


def envelope(event: WebhookEvent) -> dict[str, Any]:
    view = session_view(SessionSnapshot.model_validate(event.session))
    return {
        "id": message_id(event),
        "type": event.type,
        "timestamp": event.created_at.isoformat(),
        "sequence": event.sequence,
        "data": view.model_dump(mode="json"),
    }


def body(event: WebhookEvent) -> bytes:
    """The bytes sent and signed; the same for every attempt of the event."""
    return json.dumps(envelope(event), separators=(",", ":"), ensure_ascii=False).encode()
