"""Admission gate: the checks of a session start under its tenant's lock, in one call.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 06:10:00.000000+00:00

``session_admission_gate`` locks the tenant row, checks that the caller's API key is
still active and that the profile the request was resolved under is unchanged, claims
the ``Idempotency-Key`` and counts the tenant's live sessions. The statement that calls
it inserts the session when it answers ``admitted`` (``app/db/repositories/
session_statements.py``). so a start is admitted in one autocommit round trip.

It is a function, not a CTE, for one reason: under READ COMMITTED every statement of a
volatile PL/pgSQL function takes a fresh snapshot. The count runs after the lock is
held, so it sees every session admitted by whoever held the lock before; a single
statement's snapshot would be older than its lock wait, and admission would overshoot
the cap.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Outcomes, as app/db/repositories/sessions.py names them:
#   no_tenant        the tenant is gone (its keys with it)
#   key_revoked      the caller's API key was revoked since it was authenticated
#   profile_changed  the profile (or the tenant's default) is not the one resolved
#   key_exists       the Idempotency-Key was used before: nothing claimed, nothing counted
#   full             the tenant is at its cap; the key's claim is withdrawn
#   admitted         the key is claimed; the caller's statement inserts the session
GATE = """
CREATE FUNCTION session_admission_gate(
    p_tenant_id text,
    p_api_key_id text,
    p_profile text,
    p_profile_version text,
    p_profile_is_default boolean,
    p_claim_key text,
    p_claim_request_hash text,
    p_claim_session_id uuid,
    p_claim_locked_until timestamptz,
    p_claim_expires_at timestamptz
) RETURNS TABLE (outcome text, live_sessions bigint, session_cap integer, tavus_key bytea)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_cap integer;
    v_default text;
    v_tavus_key bytea;
    v_live bigint;
BEGIN
    -- NO KEY UPDATE serialises admissions per tenant without conflicting with the KEY
    -- SHARE locks that foreign keys to the tenant take.
    SELECT t.max_concurrent_sessions, t.default_profile, t.tavus_api_key_encrypted
      INTO v_cap, v_default, v_tavus_key
      FROM tenant t
     WHERE t.id = p_tenant_id
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'no_tenant'::text, NULL::bigint, NULL::integer, NULL::bytea;
        RETURN;
    END IF;
    IF p_api_key_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM tenant_api_key k
         WHERE k.id = p_api_key_id AND k.tenant_id = p_tenant_id AND k.revoked_at IS NULL
    ) THEN
        RETURN QUERY SELECT 'key_revoked'::text, NULL::bigint, v_cap, NULL::bytea;
        RETURN;
    END IF;
    -- The version the caller resolved under: a hash of the profile's config (jsonb's text
    -- form is canonical, so equal configs hash alike). SHA-256, not md5: md5() fails on
    -- servers in FIPS mode.
    IF (p_profile_is_default AND v_default IS DISTINCT FROM p_profile) OR NOT EXISTS (
        SELECT 1 FROM profile p
         WHERE p.tenant_id = p_tenant_id AND p.name = p_profile
           AND encode(sha256(convert_to(p.config::text, 'UTF8')), 'hex') = p_profile_version
    ) THEN
        RETURN QUERY SELECT 'profile_changed'::text, NULL::bigint, v_cap, NULL::bytea;
        RETURN;
    END IF;
    IF p_claim_key IS NOT NULL THEN
        INSERT INTO idempotency_record
            (tenant_id, key, request_hash, session_id, locked_until, expires_at)
        VALUES (p_tenant_id, p_claim_key, p_claim_request_hash, p_claim_session_id,
                p_claim_locked_until, p_claim_expires_at)
        ON CONFLICT (tenant_id, key) DO NOTHING;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'key_exists'::text, NULL::bigint, v_cap, NULL::bytea;
            RETURN;
        END IF;
    END IF;
    -- A fresh snapshot, taken with the lock held.
    SELECT count(*) INTO v_live
      FROM session s
     WHERE s.tenant_id = p_tenant_id AND s.state NOT IN ('ended', 'failed');
    IF v_live >= v_cap THEN
        IF p_claim_key IS NOT NULL THEN
            DELETE FROM idempotency_record r
             WHERE r.tenant_id = p_tenant_id AND r.key = p_claim_key;
        END IF;
        RETURN QUERY SELECT 'full'::text, v_live, v_cap, NULL::bytea;
        RETURN;
    END IF;
    RETURN QUERY SELECT 'admitted'::text, v_live, v_cap, v_tavus_key;
END;
$$
"""

GATE_ARGUMENTS = "text, text, text, text, boolean, text, text, uuid, timestamptz, timestamptz"


def upgrade() -> None:
    op.execute(GATE)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION session_admission_gate({GATE_ARGUMENTS})")
