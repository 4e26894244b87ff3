from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, CreatedAtMixin, TimestampsMixin

# States from which a session still holds (or may hold) a slot of its tenant. Admission's
# count is written into session_admission_gate too (migration 0005): a change here needs
# a migration that replaces the function (tests/unit/test_admission_gate.py checks).
NON_TERMINAL_STATES_SQL = "state NOT IN ('ended', 'failed')"
TERMINAL_STATES_SQL = "state IN ('ended', 'failed')"
FAILED_STATE_SQL = "state = 'failed'"
# Sessions that are over and still owe the deletion of their ephemeral PAL. (A live
# ephemeral session is `pending` too, but nothing is owed while its PAL is in use.)
CLEANUP_BACKLOG_SQL = f"cleanup = 'pending' AND {TERMINAL_STATES_SQL}"
EPHEMERAL_PAL_SQL = "pal_ephemeral"
# Shutdown webhooks still waiting for Tavus to confirm them.
SHUTDOWN_CLAIMED_SQL = "shutdown_claimed_at IS NOT NULL"
# A shutdown webhook Tavus contradicted for the whole claim window (the reconciler's event).
SHUTDOWN_UNCONFIRMED_EVENT = "shutdown.unconfirmed"
SHUTDOWN_UNCONFIRMED_SQL = f"type = '{SHUTDOWN_UNCONFIRMED_EVENT}'"


class Session(TimestampsMixin, Base):
    """One conversation lifecycle, with the recovery point its saga has reached."""

    __tablename__ = "session"
    __table_args__ = (
        # Admission counts a tenant's live sessions; only live rows are indexed.
        Index(
            "ix_session_tenant_live",
            "tenant_id",
            postgresql_where=text(NON_TERMINAL_STATES_SQL),
        ),
        # The reconciler's due queue: cost follows due rows, not table size.
        Index(
            "ix_session_due",
            "next_check_at",
            postgresql_where=text("next_check_at IS NOT NULL"),
        ),
        Index("ix_session_tenant_created", "tenant_id", "created_at", "id"),
        # The console lists every tenant's sessions newest first, and counts the starts
        # of the last hour.
        Index("ix_session_created", "created_at", "id"),
        # ...and lists the failed ones, a small share of the history, without reading
        # the rest of it.
        Index(
            "ix_session_failed_created",
            "created_at",
            "id",
            postgresql_where=text(FAILED_STATE_SQL),
        ),
        Index(
            "ix_session_tenant_external_ref",
            "tenant_id",
            "external_ref",
            postgresql_where=text("external_ref IS NOT NULL"),
        ),
        # The console finds a user's sessions across tenants.
        Index(
            "ix_session_external_ref",
            "external_ref",
            "created_at",
            "id",
            postgresql_where=text("external_ref IS NOT NULL"),
        ),
        Index(
            "ix_session_conversation_id",
            "conversation_id",
            postgresql_where=text("conversation_id IS NOT NULL"),
        ),
        # Metrics count the sessions that ended lately, by state, from the index alone.
        Index(
            "ix_session_ended_recent",
            "ended_at",
            "state",
            postgresql_where=text(TERMINAL_STATES_SQL),
        ),
        # The cleanup backlog stays small: metrics read it without touching the table.
        Index(
            "ix_session_cleanup_backlog",
            "ended_at",
            postgresql_where=text(CLEANUP_BACKLOG_SQL),
        ),
        # The orphan sweep finds the session holding a warm-pool PAL by the PAL's id
        # (its name carries the pool's tag, not the session's).
        Index(
            "ix_session_ephemeral_pal_id",
            "pal_id",
            postgresql_where=text(EPHEMERAL_PAL_SQL),
        ),
        # A tenant's usage over a period: its sessions by the time they ended.
        Index(
            "ix_session_tenant_ended",
            "tenant_id",
            "ended_at",
            postgresql_where=text("ended_at IS NOT NULL"),
        ),
        # The console's open shutdown claims: a handful at any time.
        Index(
            "ix_session_shutdown_claimed",
            "shutdown_claimed_at",
            postgresql_where=text(SHUTDOWN_CLAIMED_SQL),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="RESTRICT"))
    profile: Mapped[str] = mapped_column(String(64))
    # Internal recovery point; the API-visible status is derived from it.
    state: Mapped[str] = mapped_column(String(32))
    strategy: Mapped[str] = mapped_column(String(16))
    strategy_reason: Mapped[str] = mapped_column(Text)
    cleanup: Mapped[str] = mapped_column(String(16), server_default="not_needed")

    pal_id: Mapped[str | None] = mapped_column(String(64))
    pal_ephemeral: Mapped[bool] = mapped_column(server_default=text("false"))
    conversation_id: Mapped[str | None] = mapped_column(String(64))
    conversation_url: Mapped[str | None] = mapped_column(Text)

    external_ref: Mapped[str | None] = mapped_column(String(200))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # What the caller asked for, and what it resolved to when the session started:
    # later profile edits never change a running session.
    request: Mapped[dict[str, Any]]
    resolved: Mapped[dict[str, Any]]

    active_at: Mapped[datetime | None]
    # When the face joined the room (system.replica_joined): start → face is what users feel.
    joined_at: Mapped[datetime | None]
    ending_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    deadline_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(Text)
    error: Mapped[dict[str, Any] | None]
    # A shutdown webhook claimed the conversation ended; set until Tavus confirms it (the
    # session ends) or contradicts it for long enough (the claim is recorded as false).
    shutdown_claimed_at: Mapped[datetime | None]
    # Webhooks arrived before the conversation id was stored; whoever stores the id
    # applies them (``app.domain.sessions.webhooks.apply_stored_events``).
    early_events: Mapped[bool] = mapped_column(server_default=text("false"))

    # Tavus's own time of the conversation's creation: billing runs from it.
    conversation_created_at: Mapped[datetime | None]
    # From that creation to the end, both by Tavus's clock: what the session cost. None
    # while unknown.
    billed_seconds: Mapped[float | None]
    # The billed seconds the room ran with nobody in it, when Tavus's shutdown reason
    # tells (``app.domain.sessions.lifecycle.idle_seconds``).
    idle_seconds: Mapped[float | None]
    # What Tavus sent after the call, in short (``app.domain.sessions.artifacts``); the
    # transcript itself stays in its stored webhook.
    artifacts: Mapped[dict[str, Any] | None]

    # Background work: when the reconciler should next look at this row, and who holds it.
    next_check_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    claimed_by: Mapped[str | None] = mapped_column(String(64))


class SessionEvent(CreatedAtMixin, Base):
    """Append-only log of a session: transitions, Tavus calls and raw webhooks."""

    __tablename__ = "session_event"
    __table_args__ = (
        Index("ix_session_event_session_id_id", "session_id", "id"),
        # Tavus may deliver a webhook twice; the raw event is kept once.
        Index(
            "uq_session_event_session_id_dedupe_key",
            "session_id",
            "dedupe_key",
            unique=True,
            postgresql_where=text("dedupe_key IS NOT NULL"),
        ),
        # The console's recent unconfirmed shutdown claims, without reading every event.
        Index(
            "ix_session_event_shutdown_unconfirmed",
            "created_at",
            postgresql_where=text(SHUTDOWN_UNCONFIRMED_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("session.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str | None] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    dedupe_key: Mapped[str | None] = mapped_column(String(128))
    occurred_at: Mapped[datetime | None]
