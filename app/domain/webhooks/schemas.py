"""Admin API bodies for tenants' webhook endpoints and their deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.domain.storable_text import refuse_unstorable
from app.domain.webhooks.urls import MAX_URL_LENGTH

EventType = Literal[
    "session.active",
    "session.ended",
    "session.failed",
    "session.cleanup_done",
    "session.transcript_ready",
    "session.recording_ready",
]
DeliveryStatus = Literal["pending", "delivered", "failed"]


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_URL_LENGTH,
            description="Where the events are POSTed: https, to a public address, unless "
            "allowed below (docs/webhooks.md).",
            examples=["https://api.example.com/palisade/events"],
        ),
    ]
    events: Annotated[
        list[EventType] | None,
        Field(
            min_length=1,
            max_length=6,
            description="The event types sent to it; null or absent: all, including any "
            "added later.",
        ),
    ] = None
    allow_http: Annotated[
        bool, Field(description="Accept an http:// URL in production (not recommended).")
    ] = False
    allow_private: Annotated[
        bool,
        Field(
            description="Accept a private, loopback or link-local target in production "
            "(a receiver inside your own network)."
        ),
    ] = False

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        return refuse_unstorable(data)

    @model_validator(mode="after")
    def _distinct(self) -> WebhookEndpointCreate:
        if self.events is not None and len(set(self.events)) != len(self.events):
            raise ValueError("events lists an event type twice")
        return self


class WebhookEndpointPublic(BaseModel):
    id: uuid.UUID
    tenant_id: str
    url: str
    events: list[str] | None
    enabled: bool
    #: Why it no longer receives anything (e.g. its receiver answered 410).
    disabled_reason: str | None
    allow_http: bool
    allow_private: bool
    #: Until when the secret replaced by the last rotation still signs deliveries too.
    previous_secret_expires_at: datetime | None
    created_at: datetime


class WebhookEndpointCreated(WebhookEndpointPublic):
    #: The signing secret (`whsec_…`): shown in this response only.
    secret: str


class WebhookEndpointList(BaseModel):
    items: list[WebhookEndpointPublic]


class WebhookSecretRotated(BaseModel):
    id: uuid.UUID
    #: The new signing secret (`whsec_…`): shown in this response only.
    secret: str
    #: Until then deliveries carry a signature with the old secret too.
    previous_secret_expires_at: datetime | None


class WebhookDeliveryPublic(BaseModel):
    id: uuid.UUID
    tenant_id: str
    #: The event's id: the `webhook-id` header and the envelope's `id`.
    event_id: str
    event_type: str
    session_id: uuid.UUID
    endpoint_id: uuid.UUID
    status: DeliveryStatus
    attempts: int
    #: When the next attempt is due (pending deliveries).
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    created_at: datetime


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDeliveryPublic]
    next_cursor: str | None
