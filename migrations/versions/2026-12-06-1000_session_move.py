"""Session move: the one way a session's row changes under the transition table; a
start's answer stored as it was sent.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 10:00:00+00:00

``session_move`` is a compare-and-set on one session, in one call: it locks the row,
checks the lease its caller holds (``p_owner`` and ``p_lease_until``; no check when
``p_owner`` is null: an end asked for through the API supersedes any claim) and the
state the move starts from (``p_from_states``, the sources of the target in the Python
transition table; null for a write that keeps the state), then sets the columns named in
``p_changes``, appends the event, and stores or extends the session's Idempotency-Key
record. It answers one row (the new ``updated_at`` and ``early_events``) when it moved,
none when the lease or the state did not match.

``p_wait_for_disk = false`` makes the calling statement's transaction commit without
waiting for its WAL to reach disk (``SET LOCAL``: it ends with that transaction); see
``SessionStore.move`` for when that is allowed.

Every column a move may set is named once below, and ``SETTABLE`` in
``app/db/session_store.py`` lists the same (tests/unit/test_session_move.py checks).
An end keeps its first reason: ``end_reason`` is only ever written once.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOVE = """
CREATE FUNCTION session_move(
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

MOVE_ARGUMENTS = "uuid, text, timestamptz, text[], jsonb, jsonb, jsonb, timestamptz, boolean"


def upgrade() -> None:
    # A start's first answer is stored as sent, headers included, and replayed so.
    op.add_column("idempotency_record", sa.Column("response_text", sa.Text(), nullable=True))
    op.add_column(
        "idempotency_record",
        sa.Column("response_headers", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.execute(MOVE)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION session_move({MOVE_ARGUMENTS})")
    op.drop_column("idempotency_record", "response_headers")
    op.drop_column("idempotency_record", "response_text")
