"""What a session cost and what it left: Tavus's creation time of the conversation, the
billed and idle seconds, and the artifacts Tavus sends after the call.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 11:00:00+00:00

``conversation_created_at`` is Tavus's own time of the conversation's creation (its
create answer, or the lookup that found it); ``billed_seconds`` runs from it to Tavus's
time of the end, so both ends come from one clock. ``idle_seconds`` is the part of it
the room ran with nobody in it, when Tavus's shutdown reason tells. ``artifacts`` keeps
a short summary of the transcript, the recording and the perception analysis; the
transcript itself stays in the stored webhook, which the summary names.

``session_move`` is replaced to set the three columns a move writes (``artifacts`` is
written by webhooks, under the row's lock, never by a move). The usage totals of the
admin API read sessions by tenant and end time: ``ix_session_tenant_ended``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREVIOUS_MOVE_MIGRATION = "2026-12-06-1000_session_move.py"

MOVE = """
CREATE OR REPLACE FUNCTION session_move(
    p_session_id uuid,
    p_owner text,
    p_lease_until timestamptz,
    p_from_states text[],
    p_changes jsonb,
    p_event jsonb,
    p_answer jsonb,
    p_key_locked_until timestamptz,
    p_wait_for_disk boolean
) RETURNS TABLE (moved_at timestamptz, early_events boolean)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_from session.state%TYPE;
    v_tenant session.tenant_id%TYPE;
    v_key session.idempotency_key%TYPE;
    v_claimed_by session.claimed_by%TYPE;
    v_lease session.next_check_at%TYPE;
    v_to session.state%TYPE;
BEGIN
    SELECT s.state, s.tenant_id, s.idempotency_key, s.claimed_by, s.next_check_at
      INTO v_from, v_tenant, v_key, v_claimed_by, v_lease
      FROM session s
     WHERE s.id = p_session_id
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF p_owner IS NOT NULL
       AND (v_claimed_by IS DISTINCT FROM p_owner OR v_lease IS DISTINCT FROM p_lease_until) THEN
        RETURN;
    END IF;
    IF p_from_states IS NOT NULL AND NOT (v_from = ANY (p_from_states)) THEN
        RETURN;
    END IF;
    UPDATE session s SET
        state = CASE WHEN p_changes ? 'state' THEN p_changes->>'state' ELSE s.state END,
        cleanup = CASE WHEN p_changes ? 'cleanup' THEN p_changes->>'cleanup' ELSE s.cleanup END,
        pal_id = CASE WHEN p_changes ? 'pal_id' THEN p_changes->>'pal_id' ELSE s.pal_id END,
        conversation_id = CASE WHEN p_changes ? 'conversation_id'
            THEN p_changes->>'conversation_id' ELSE s.conversation_id END,
        conversation_url = CASE WHEN p_changes ? 'conversation_url'
            THEN p_changes->>'conversation_url' ELSE s.conversation_url END,
        active_at = CASE WHEN p_changes ? 'active_at'
            THEN (p_changes->>'active_at')::timestamptz ELSE s.active_at END,
        joined_at = CASE WHEN p_changes ? 'joined_at'
            THEN (p_changes->>'joined_at')::timestamptz ELSE s.joined_at END,
        ending_at = CASE WHEN p_changes ? 'ending_at'
            THEN (p_changes->>'ending_at')::timestamptz ELSE s.ending_at END,
        ended_at = CASE WHEN p_changes ? 'ended_at'
            THEN (p_changes->>'ended_at')::timestamptz ELSE s.ended_at END,
        deadline_at = CASE WHEN p_changes ? 'deadline_at'
            THEN (p_changes->>'deadline_at')::timestamptz ELSE s.deadline_at END,
        end_reason = CASE WHEN p_changes ? 'end_reason'
            THEN coalesce(s.end_reason, p_changes->>'end_reason') ELSE s.end_reason END,
        error = CASE WHEN p_changes ? 'error'
            THEN nullif(p_changes->'error', 'null'::jsonb) ELSE s.error END,
        next_check_at = CASE WHEN p_changes ? 'next_check_at'
            THEN (p_changes->>'next_check_at')::timestamptz ELSE s.next_check_at END,
        claimed_by = CASE WHEN p_changes ? 'claimed_by'
            THEN p_changes->>'claimed_by' ELSE s.claimed_by END,
        attempts = CASE WHEN p_changes ? 'attempts'
            THEN (p_changes->>'attempts')::integer ELSE s.attempts END,
        shutdown_claimed_at = CASE WHEN p_changes ? 'shutdown_claimed_at'
            THEN (p_changes->>'shutdown_claimed_at')::timestamptz ELSE s.shutdown_claimed_at END,
        conversation_created_at = CASE WHEN p_changes ? 'conversation_created_at'
            THEN (p_changes->>'conversation_created_at')::timestamptz
            ELSE s.conversation_created_at END,
        billed_seconds = CASE WHEN p_changes ? 'billed_seconds'
            THEN (p_changes->>'billed_seconds')::double precision ELSE s.billed_seconds END,
        idle_seconds = CASE WHEN p_changes ? 'idle_seconds'
            THEN (p_changes->>'idle_seconds')::double precision ELSE s.idle_seconds END,
        updated_at = now()
     WHERE s.id = p_session_id
    RETURNING s.updated_at, s.early_events, s.state INTO moved_at, early_events, v_to;
    IF p_event IS NOT NULL THEN
        INSERT INTO session_event (session_id, kind, type, from_state, to_state, payload)
        VALUES (
            p_session_id,
            p_event->>'kind',
            p_event->>'type',
            CASE WHEN v_to IS DISTINCT FROM v_from THEN v_from END,
            CASE WHEN v_to IS DISTINCT FROM v_from THEN v_to END,
            coalesce(p_event->'payload', '{}'::jsonb)
        );
    END IF;
    IF v_key IS NOT NULL AND p_answer IS NOT NULL THEN
        UPDATE idempotency_record r
           SET response_status = (p_answer->>'status')::integer,
               response_text = p_answer->>'text',
               response_headers = p_answer->'headers',
               locked_until = NULL
         WHERE r.tenant_id = v_tenant AND r.key = v_key;
    ELSIF v_key IS NOT NULL AND p_key_locked_until IS NOT NULL THEN
        UPDATE idempotency_record r
           SET locked_until = p_key_locked_until
         WHERE r.tenant_id = v_tenant AND r.key = v_key;
    END IF;
    IF NOT p_wait_for_disk THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    RETURN NEXT;
END;
$$
"""


def _previous_move() -> str:
    # Released migrations never change: the definition this one replaces is read from
    # the revision that wrote it.
    path = Path(__file__).with_name(PREVIOUS_MOVE_MIGRATION)
    spec = importlib.util.spec_from_file_location("previous_move_migration", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    move: str = module.MOVE
    return move.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def upgrade() -> None:
    op.add_column(
        "session", sa.Column("conversation_created_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("session", sa.Column("billed_seconds", sa.Float(), nullable=True))
    op.add_column("session", sa.Column("idle_seconds", sa.Float(), nullable=True))
    op.add_column(
        "session",
        sa.Column("artifacts", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.create_index(
        "ix_session_tenant_ended",
        "session",
        ["tenant_id", "ended_at"],
        postgresql_where=sa.text("ended_at IS NOT NULL"),
    )
    op.execute(MOVE)


def downgrade() -> None:
    op.execute(_previous_move())
    op.drop_index("ix_session_tenant_ended", table_name="session")
    for column in ("artifacts", "idle_seconds", "billed_seconds", "conversation_created_at"):
        op.drop_column("session", column)
