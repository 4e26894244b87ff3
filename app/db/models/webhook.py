"""Tenant webhooks: where a tenant wants to hear about its sessions, the outbox of what
happened, and each endpoint's delivery of each event with every attempt at it.

Events are written by the trigger of migration 0012, in the statement that changes the
session (docs/webhooks.md); nothing in Python inserts one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, CreatedAtMixin, TimestampsMixin

DELIVERY_STATUSES = ("pending", "delivered", "failed")
PENDING_DELIVERY_SQL = "status = 'pending'"


class WebhookEndpoint(TimestampsMixin, Base):
    """A URL of a tenant's backend, with the secret its deliveries are signed with."""

    __tablename__ = "webhook_endpoint"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    # None: every event type, including any added later.
    event_types: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    # Fernet tokens (the secret box) of the `whsec_` secrets; never leave the process
    # decrypted except once, when made.
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    # The secret a rotation replaced, still signed with until it expires.
    previous_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expires_at: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(server_default=text("true"))
    # Why it was disabled (the receiver answered 410, or an operator said so).
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    # What production refuses unless the endpoint says so (docs/webhooks.md, SSRF).
    allow_http: Mapped[bool] = mapped_column(server_default=text("false"))
    allow_private: Mapped[bool] = mapped_column(server_default=text("false"))


class WebhookEvent(CreatedAtMixin, Base):
    """One event of the outbox: a snapshot of the session when the change happened."""

    __tablename__ = "webhook_event"
    __table_args__ = (
        # Each event happens once in a session's life: a repeated change writes nothing.
        UniqueConstraint("session_id", "type"),
        UniqueConstraint("session_id", "sequence"),
        # Retention prunes the oldest settled events first.
        Index("ix_webhook_event_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("session.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    # 1, 2, ... within the session, in the order the changes committed.
    sequence: Mapped[int]
    # The session row as the change left it (without the request and resolved bodies).
    session: Mapped[dict[str, Any]]


class WebhookDelivery(TimestampsMixin, Base):
    """One event for one endpoint: pending until the receiver takes it or the retries
    run out. Leased like the other background queues (``next_check_at``, ``claimed_by``):
    ``next_check_at`` is when the next attempt is due."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        UniqueConstraint("event_id", "endpoint_id"),
        Index(
            "ix_webhook_delivery_due",
            "next_check_at",
            postgresql_where=text("next_check_at IS NOT NULL"),
        ),
        Index("ix_webhook_delivery_tenant_created", "tenant_id", "created_at", "id"),
        # The age of the oldest pending delivery, read at every scrape.
        Index(
            "ix_webhook_delivery_pending_created",
            "created_at",
            postgresql_where=text(PENDING_DELIVERY_SQL),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_event.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), index=True
    )
    # Copied from the event, for the tenant's filtered list.
    tenant_id: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    next_check_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class WebhookAttempt(Base):
    """One request to a receiver, whatever came of it."""

    __tablename__ = "webhook_attempt"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_delivery.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None]
    latency_ms: Mapped[float]
    # The start of the receiver's answer (docs/webhooks.md says how much).
    response_body: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
