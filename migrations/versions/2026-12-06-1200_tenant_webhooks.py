"""Tenant webhooks: endpoints, the outbox of session events, deliveries and attempts.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 12:00:00+00:00

``webhook_endpoint`` holds a tenant's receivers with their secrets (sealed by the secret
box; the previous one kept until its overlap ends). ``webhook_event`` is the outbox: one
row per event of a session's life, each type at most once per session, numbered within
the session. An event is written only when an enabled endpoint of the
tenant subscribes to it, so a tenant without webhooks adds nothing to its sessions'
writes. ``webhook_delivery`` is an event for one endpoint, a leased queue like the
sessions' (``next_check_at``, ``claimed_by``); ``webhook_attempt`` records every request.
Events whose deliveries are all settled are pruned after a retention period, oldest
first (``ix_webhook_event_created_at``).

The events are written by ``session_webhook_events()``, an AFTER UPDATE trigger on
``session``, not by ``session_move()``: the trigger runs inside whichever statement
changes the row (a move, or the ORM flush that applies an artifact webhook), so an event
commits or rolls back with its change, and no writer of a session can forget it. It
snapshots the row as the change left it, which the sender renders as the session view;
and it adds a delivery for each of the tenant's enabled endpoints that subscribes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The session's UPDATE holds the row's lock until commit, so two changes of one session
# never number their events at once; the unique (session_id, type) makes a repeated
# change (a duplicate artifact, a re-applied state) write nothing.
EVENTS = """
CREATE FUNCTION session_webhook_events() RETURNS trigger
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_types text[] := ARRAY[]::text[];
    v_type text;
    v_event uuid;
    v_sequence integer;
    v_snapshot jsonb;
BEGIN
    IF NEW.state IS DISTINCT FROM OLD.state AND NEW.state IN ('active', 'ended', 'failed') THEN
        v_types := v_types || ('session.' || NEW.state);
    END IF;
    IF NEW.cleanup = 'done' AND OLD.cleanup IS DISTINCT FROM 'done' THEN
        v_types := v_types || 'session.cleanup_done'::text;
    END IF;
    IF NEW.artifacts ? 'transcript' AND NOT coalesce(OLD.artifacts ? 'transcript', false) THEN
        v_types := v_types || 'session.transcript_ready'::text;
    END IF;
    IF NEW.artifacts ? 'recording' AND NOT coalesce(OLD.artifacts ? 'recording', false) THEN
        v_types := v_types || 'session.recording_ready'::text;
    END IF;
    IF cardinality(v_types) = 0 THEN
        RETURN NULL;
    END IF;
    FOREACH v_type IN ARRAY v_types LOOP
        -- No endpoint to tell, no event: a tenant without webhooks pays nothing on its
        -- starts and keeps no outbox. An endpoint added later receives what happens after.
        CONTINUE WHEN NOT EXISTS (
            SELECT 1 FROM webhook_endpoint w
             WHERE w.tenant_id = NEW.tenant_id
               AND w.enabled
               AND (w.event_types IS NULL OR v_type = ANY (w.event_types)));
        v_snapshot := coalesce(v_snapshot,
                               to_jsonb(NEW) - 'request' - 'resolved' - 'idempotency_key');
        SELECT coalesce(max(e.sequence), 0) + 1 INTO v_sequence
          FROM webhook_event e WHERE e.session_id = NEW.id;
        v_event := NULL;
        INSERT INTO webhook_event (tenant_id, session_id, type, sequence, session)
        VALUES (NEW.tenant_id, NEW.id, v_type, v_sequence, v_snapshot)
        ON CONFLICT (session_id, type) DO NOTHING
        RETURNING id INTO v_event;
        IF v_event IS NOT NULL THEN
            INSERT INTO webhook_delivery (event_id, endpoint_id, tenant_id, session_id,
                                          event_type, next_check_at)
            SELECT v_event, w.id, NEW.tenant_id, NEW.id, v_type, now()
              FROM webhook_endpoint w
             WHERE w.tenant_id = NEW.tenant_id
               AND w.enabled
               AND (w.event_types IS NULL OR v_type = ANY (w.event_types));
        END IF;
    END LOOP;
    RETURN NULL;
END;
$$
"""

TRIGGER = """
CREATE TRIGGER session_webhook_events
AFTER UPDATE ON session
FOR EACH ROW
WHEN (OLD.state IS DISTINCT FROM NEW.state
      OR OLD.cleanup IS DISTINCT FROM NEW.cleanup
      OR OLD.artifacts IS DISTINCT FROM NEW.artifacts)
EXECUTE FUNCTION session_webhook_events()
"""


def upgrade() -> None:
    op.create_table(
        "webhook_endpoint",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event_types", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("previous_secret_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("allow_http", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("allow_private", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_webhook_endpoint_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoint")),
    )
    op.create_index(
        "ix_webhook_endpoint_tenant_id", "webhook_endpoint", ["tenant_id"], unique=False
    )
    op.create_table(
        "webhook_event",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("session", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["session.id"],
            name=op.f("fk_webhook_event_session_id_session"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_webhook_event_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_event")),
        sa.UniqueConstraint(
            "session_id", "sequence", name=op.f("uq_webhook_event_session_id_sequence")
        ),
        sa.UniqueConstraint("session_id", "type", name=op.f("uq_webhook_event_session_id_type")),
    )
    op.create_index("ix_webhook_event_created_at", "webhook_event", ["created_at"], unique=False)
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name=op.f("ck_webhook_delivery_status")
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoint.id"],
            name=op.f("fk_webhook_delivery_endpoint_id_webhook_endpoint"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["webhook_event.id"],
            name=op.f("fk_webhook_delivery_event_id_webhook_event"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_delivery")),
        sa.UniqueConstraint(
            "event_id", "endpoint_id", name=op.f("uq_webhook_delivery_event_id_endpoint_id")
        ),
    )
    op.create_index(
        "ix_webhook_delivery_due",
        "webhook_delivery",
        ["next_check_at"],
        unique=False,
        postgresql_where=sa.text("next_check_at IS NOT NULL"),
    )
    op.create_index(
        "ix_webhook_delivery_endpoint_id", "webhook_delivery", ["endpoint_id"], unique=False
    )
    op.create_index("ix_webhook_delivery_event_id", "webhook_delivery", ["event_id"], unique=False)
    op.create_index(
        "ix_webhook_delivery_pending_created",
        "webhook_delivery",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_webhook_delivery_tenant_created",
        "webhook_delivery",
        ["tenant_id", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "webhook_attempt",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_delivery.id"],
            name=op.f("fk_webhook_attempt_delivery_id_webhook_delivery"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempt")),
    )
    op.create_index(
        "ix_webhook_attempt_delivery_id", "webhook_attempt", ["delivery_id"], unique=False
    )
    op.execute(EVENTS)
    op.execute(TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER session_webhook_events ON session")
    op.execute("DROP FUNCTION session_webhook_events()")
    op.drop_index("ix_webhook_attempt_delivery_id", table_name="webhook_attempt")
    op.drop_table("webhook_attempt")
    for index in (
        "ix_webhook_delivery_tenant_created",
        "ix_webhook_delivery_pending_created",
        "ix_webhook_delivery_event_id",
        "ix_webhook_delivery_endpoint_id",
        "ix_webhook_delivery_due",
    ):
        op.drop_index(index, table_name="webhook_delivery")
    op.drop_table("webhook_delivery")
    op.drop_index("ix_webhook_event_created_at", table_name="webhook_event")
    op.drop_table("webhook_event")
    op.drop_index("ix_webhook_endpoint_tenant_id", table_name="webhook_endpoint")
    op.drop_table("webhook_endpoint")
