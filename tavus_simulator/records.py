from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from tavus_simulator.clock import iso_naive, iso_z
from tavus_simulator.listing import Listing
from tavus_simulator.timers import Timer

ConversationStatus = Literal["active", "ended", "error"]
# queued: waiting for the face to join; delivered: handed to the PAL; relayed: an
# event_type the PAL does not act on, passed into the room; dropped: the face never
# took it (the conversation ended, or it waited longer than Tavus queues).
AppMessageStatus = Literal["queued", "delivered", "relayed", "dropped"]


def _opt_iso(moment: datetime | None) -> str | None:
    return iso_z(moment) if moment is not None else None


@dataclass(eq=False)
class PalRecord:
    pal_id: str
    account: str
    pal_type: Literal["user", "system"]
    pal_name: str | None
    system_prompt: str | None
    default_face_id: str | None
    pipeline_mode: str
    conferencing_email: str
    created_at: datetime
    updated_at: datetime
    request: dict[str, Any]
    seq: int = 0
    deleted_at: datetime | None = None
    delete_calls: int = 0

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def control_json(self) -> dict[str, Any]:
        return {
            "pal_id": self.pal_id,
            "account": self.account,
            "pal_type": self.pal_type,
            "pal_name": self.pal_name,
            "default_face_id": self.default_face_id,
            "pipeline_mode": self.pipeline_mode,
            "system_prompt": self.system_prompt,
            "created_at": iso_naive(self.created_at),
            "updated_at": iso_naive(self.updated_at),
            "deleted_at": iso_naive(self.deleted_at) if self.deleted_at else None,
            "delete_calls": self.delete_calls,
            "request": self.request,
        }


@dataclass(eq=False, slots=True)
class AppMessage:
    seq: int
    accepted_at: datetime
    event_type: str
    message: dict[str, Any]
    status: AppMessageStatus
    handled_at: datetime | None = None

    def json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "accepted_at": iso_z(self.accepted_at),
            "event_type": self.event_type,
            "status": self.status,
            "handled_at": _opt_iso(self.handled_at),
            "message": self.message,
        }


@dataclass(eq=False)
class ConversationRecord:
    conversation_id: str
    account: str
    pal_id: str
    face_id: str
    conversation_name: str | None
    callback_url: str | None
    conversation_url: str
    system_prompt: str
    custom_greeting: str | None
    test_mode: bool
    meeting_token: str | None
    max_participants: int | None
    max_call_duration: float
    participant_left_timeout: float
    participant_absent_timeout: float
    created_at: datetime
    updated_at: datetime
    request: dict[str, Any]
    seq: int = 0
    conversational_context: str | None = None
    status: ConversationStatus = "active"
    shutdown_reason: str | None = None
    holds_slot: bool = False
    face_joined_at: datetime | None = None
    ended_at: datetime | None = None
    deleted_at: datetime | None = None
    participants: list[str] = field(default_factory=list)
    participant_joins: int = 0
    end_calls: int = 0
    delete_calls: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    timers: dict[str, Timer] = field(default_factory=dict)
    app_messages: list[AppMessage] = field(default_factory=list)
    app_message_window_start: float | None = None
    app_message_window_count: int = 0

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def control_json(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "account": self.account,
            "pal_id": self.pal_id,
            "face_id": self.face_id,
            "conversation_name": self.conversation_name,
            "callback_url": self.callback_url,
            "conversation_url": self.conversation_url,
            "status": self.status,
            "shutdown_reason": self.shutdown_reason,
            "test_mode": self.test_mode,
            "holds_slot": self.holds_slot,
            "created_at": iso_z(self.created_at),
            "updated_at": iso_z(self.updated_at),
            "face_joined_at": _opt_iso(self.face_joined_at),
            "ended_at": _opt_iso(self.ended_at),
            "deleted_at": _opt_iso(self.deleted_at),
            "participants": list(self.participants),
            "participant_joins": self.participant_joins,
            "end_calls": self.end_calls,
            "delete_calls": self.delete_calls,
            "properties": {
                "max_call_duration": self.max_call_duration,
                "participant_left_timeout": self.participant_left_timeout,
                "participant_absent_timeout": self.participant_absent_timeout,
            },
            "events": list(self.events),
            "conversational_context": self.conversational_context,
            "app_messages": [message.json() for message in self.app_messages],
            "request": self.request,
        }


@dataclass(eq=False, slots=True)
class CallRecord:
    seq: int
    at: datetime
    operation: str
    method: str
    path: str
    status: int | None
    latency_ms: float
    fault: str | None
    account: str | None = None
    object_id: str | None = None
    event_type: str | None = None
    error: str | None = None
    # The caller's W3C trace context, kept as sent: which trace made the call.
    traceparent: str | None = None

    def json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": iso_z(self.at),
            "operation": self.operation,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "latency_ms": round(self.latency_ms, 3),
            "fault": self.fault,
            "account": self.account,
            "object_id": self.object_id,
            "event_type": self.event_type,
            "error": self.error,
            "traceparent": self.traceparent,
        }


def _pal_listings() -> dict[str | None, Listing[PalRecord]]:
    return {None: Listing(), "user": Listing(), "system": Listing()}


def _conversation_listings() -> dict[str | None, Listing[ConversationRecord]]:
    return {None: Listing(), "active": Listing(), "ended": Listing(), "error": Listing()}


@dataclass(eq=False)
class Account:
    """One API key's objects by id, and what its list endpoints serve, by filter
    (None: unfiltered; else the ``pal_type`` or ``status`` value)."""

    api_key: str
    pals: dict[str, PalRecord] = field(default_factory=dict)
    conversations: dict[str, ConversationRecord] = field(default_factory=dict)
    active_slots: int = 0
    pal_listings: dict[str | None, Listing[PalRecord]] = field(default_factory=_pal_listings)
    conversation_listings: dict[str | None, Listing[ConversationRecord]] = field(
        default_factory=_conversation_listings
    )
