"""Restricted API keys, a start rate per key, and the browser origins of each tenant.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 10:30:00+00:00

A key may be limited to some scopes (``scopes``; null: every scope, including any added
later) and to the profiles it may start (``profiles``; null: any). A key may also carry
a start rate, a token bucket of ``start_burst`` tokens refilled at ``start_rate_count``
per ``start_rate_seconds``, whose state (``start_tokens`` at ``start_tokens_at``) lives
on the key's row. A tenant lists the origins its browser frontends call from
(``cors_origins``).

``session_admission_gate`` takes a token from the caller's bucket under the tenant's
lock, in the statement that admits the session: the rate costs no round trip, and holds
across replicas. Only an admitted start spends a token; a start refused by the rate
withdraws its ``Idempotency-Key`` claim, as a start refused by the cap does.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Outcomes, as app/db/repositories/session_writes.py names them:
#   no_tenant         the tenant is gone (its keys with it)
#   key_revoked       the caller's API key was revoked since it was authenticated
#   profile_changed   the profile (or the tenant's default) is not the one resolved
#   key_exists        the Idempotency-Key was used before: nothing claimed, nothing counted
#   key_rate_limited  the caller's key has no start token left; retry_after says when one
#                     is back. The key's claim is withdrawn
#   full              the tenant is at its cap; the key's claim is withdrawn
#   admitted          the key is claimed and a token taken; the caller's statement
#                     inserts the session
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
) RETURNS TABLE (
    outcome text,
    live_sessions bigint,
    session_cap integer,
    tavus_key bytea,
    retry_after double precision
)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_cap integer;
    v_default text;
    v_tavus_key bytea;
    v_live bigint;
    v_rate_count integer;
    v_rate_seconds integer;
    v_burst integer;
    v_tokens double precision;
    v_tokens_at timestamptz;
    v_now timestamptz;
BEGIN
    -- NO KEY UPDATE serialises admissions per tenant without conflicting with the KEY
    -- SHARE locks that foreign keys to the tenant take.
    SELECT t.max_concurrent_sessions, t.default_profile, t.tavus_api_key_encrypted
      INTO v_cap, v_default, v_tavus_key
      FROM tenant t
     WHERE t.id = p_tenant_id
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'no_tenant'::text, NULL::bigint, NULL::integer, NULL::bytea,
                            NULL::double precision;
        RETURN;
    END IF;
    IF p_api_key_id IS NOT NULL THEN
        SELECT k.start_rate_count, k.start_rate_seconds, k.start_burst,
               k.start_tokens, k.start_tokens_at
          INTO v_rate_count, v_rate_seconds, v_burst, v_tokens, v_tokens_at
          FROM tenant_api_key k
         WHERE k.id = p_api_key_id AND k.tenant_id = p_tenant_id AND k.revoked_at IS NULL;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'key_revoked'::text, NULL::bigint, v_cap, NULL::bytea,
                                NULL::double precision;
            RETURN;
        END IF;
    END IF;
    -- The version the caller resolved under: a hash of the profile's config (jsonb's text
    -- form is canonical, so equal configs hash alike). SHA-256, not md5: md5() fails on
    -- servers in FIPS mode.
    IF (p_profile_is_default AND v_default IS DISTINCT FROM p_profile) OR NOT EXISTS (
        SELECT 1 FROM profile p
         WHERE p.tenant_id = p_tenant_id AND p.name = p_profile
           AND encode(sha256(convert_to(p.config::text, 'UTF8')), 'hex') = p_profile_version
    ) THEN
        RETURN QUERY SELECT 'profile_changed'::text, NULL::bigint, v_cap, NULL::bytea,
                            NULL::double precision;
        RETURN;
    END IF;
    IF p_claim_key IS NOT NULL THEN
        INSERT INTO idempotency_record
            (tenant_id, key, request_hash, session_id, locked_until, expires_at)
        VALUES (p_tenant_id, p_claim_key, p_claim_request_hash, p_claim_session_id,
                p_claim_locked_until, p_claim_expires_at)
        ON CONFLICT (tenant_id, key) DO NOTHING;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'key_exists'::text, NULL::bigint, v_cap, NULL::bytea,
                                NULL::double precision;
            RETURN;
        END IF;
    END IF;
    IF v_rate_count IS NOT NULL THEN
        -- The bucket as it stands now: full when never used, refilled since its last
        -- token was taken, never above its size. Every admission of this key runs under
        -- the tenant's lock, so the row cannot change between this read and the write
        -- below; a clock that steps back refills nothing.
        v_now := clock_timestamp();
        IF v_tokens IS NULL OR v_tokens_at IS NULL THEN
            v_tokens := v_burst;
        ELSE
            v_tokens := least(
                v_burst::double precision,
                v_tokens + greatest(0, extract(epoch FROM v_now - v_tokens_at))
                           * v_rate_count / v_rate_seconds
            );
        END IF;
        IF v_tokens < 1 THEN
            IF p_claim_key IS NOT NULL THEN
                DELETE FROM idempotency_record r
                 WHERE r.tenant_id = p_tenant_id AND r.key = p_claim_key;
            END IF;
            RETURN QUERY SELECT 'key_rate_limited'::text, NULL::bigint, v_cap, NULL::bytea,
                                (1 - v_tokens) * v_rate_seconds / v_rate_count;
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
        RETURN QUERY SELECT 'full'::text, v_live, v_cap, NULL::bytea, NULL::double precision;
        RETURN;
    END IF;
    IF v_rate_count IS NOT NULL THEN
        UPDATE tenant_api_key k
           SET start_tokens = v_tokens - 1, start_tokens_at = v_now
         WHERE k.id = p_api_key_id;
    END IF;
    RETURN QUERY SELECT 'admitted'::text, v_live, v_cap, v_tavus_key, NULL::double precision;
END;
$$
"""

GATE_ARGUMENTS = "text, text, text, text, boolean, text, text, uuid, timestamptz, timestamptz"

PREVIOUS_GATE_MIGRATION = "2026-11-24-0610_session_admission_gate.py"


def _previous_gate() -> str:
    # Released migrations never change: the definition this one replaces is read from
    # the revision that wrote it.
    path = Path(__file__).with_name(PREVIOUS_GATE_MIGRATION)
    spec = importlib.util.spec_from_file_location("previous_gate_migration", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    gate: str = module.GATE
    return gate


def upgrade() -> None:
    op.add_column(
        "tenant",
        sa.Column(
            "cors_origins",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
    )
    for column in (
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("profiles", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("start_rate_count", sa.Integer(), nullable=True),
        sa.Column("start_rate_seconds", sa.Integer(), nullable=True),
        sa.Column("start_burst", sa.Integer(), nullable=True),
        sa.Column("start_tokens", sa.Double(), nullable=True),
        sa.Column("start_tokens_at", sa.DateTime(timezone=True), nullable=True),
    ):
        op.add_column("tenant_api_key", column)
    op.create_check_constraint(
        op.f("ck_tenant_api_key_start_rate"),
        "tenant_api_key",
        "(start_rate_count IS NULL AND start_rate_seconds IS NULL AND start_burst IS NULL)"
        " OR (start_rate_count > 0 AND start_rate_seconds > 0 AND start_burst > 0)",
    )
    # The return type changes, which CREATE OR REPLACE cannot do. Migrations run in one
    # transaction: no admission sees the function missing.
    op.execute(f"DROP FUNCTION session_admission_gate({GATE_ARGUMENTS})")
    op.execute(GATE)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION session_admission_gate({GATE_ARGUMENTS})")
    op.execute(_previous_gate())
    op.drop_constraint(op.f("ck_tenant_api_key_start_rate"), "tenant_api_key", type_="check")
    for name in (
        "start_tokens_at",
        "start_tokens",
        "start_burst",
        "start_rate_seconds",
        "start_rate_count",
        "profiles",
        "scopes",
    ):
        op.drop_column("tenant_api_key", name)
    op.drop_column("tenant", "cors_origins")
