"""The rows the suite writes and reads directly in Palisade's database: set-up work that
would take minutes through the API, and the checks that time the drain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.models.session import CLEANUP_BACKLOG_SQL, NON_TERMINAL_STATES_SQL

# Ends every live session without a Tavus call, so that each phase starts with none:
# admission counts a tenant's live sessions, and the benchmark's would otherwise pile up.
_RETIRE = f"""
UPDATE session
SET state = 'ended', ended_at = now(), end_reason = 'retired by the benchmark',
    cleanup = CASE WHEN cleanup = 'pending' THEN 'done' ELSE cleanup END,
    next_check_at = NULL, claimed_by = NULL
WHERE {NON_TERMINAL_STATES_SQL}
"""

# Sessions that ended with an ephemeral PAL still to delete, due now.
_CLEANUP_BACKLOG = """
INSERT INTO session (id, tenant_id, profile, state, strategy, strategy_reason, cleanup,
                     pal_id, pal_ephemeral, request, resolved, active_at, ended_at,
                     end_reason, next_check_at)
SELECT s.id::uuid, :tenant, :profile, 'ended', 'ephemeral', 'the profile is ephemeral',
       'pending', s.pal_id, true, '{}'::jsonb, jsonb_build_object('pal_name', s.pal_name),
       now(), now(), 'ended_by_client', now()
FROM unnest(CAST(:ids AS text[]), CAST(:pal_ids AS text[]), CAST(:pal_names AS text[]))
     AS s(id, pal_id, pal_name)
"""

# Terminal sessions spread over the past weeks: half reuse, half ephemeral (cleaned up),
# one in twenty failed.
_HISTORY = """
INSERT INTO session (id, tenant_id, profile, state, strategy, strategy_reason, cleanup,
                     pal_id, pal_ephemeral, conversation_id, conversation_url, external_ref,
                     request, resolved, created_at, updated_at, active_at, ended_at,
                     end_reason)
SELECT gen_random_uuid(), :tenant,
       CASE WHEN n % 2 = 0 THEN :reuse_profile ELSE :ephemeral_profile END,
       CASE WHEN n % 20 = 0 THEN 'failed' ELSE 'ended' END,
       CASE WHEN n % 2 = 0 THEN 'reuse' ELSE 'ephemeral' END,
       'historical session written by the benchmark',
       CASE WHEN n % 2 = 0 THEN 'not_needed' ELSE 'done' END,
       CASE WHEN n % 2 = 0 THEN :pal_id ELSE 'p' || lpad(to_hex(n), 11, '0') END,
       n % 2 = 1,
       'c' || lpad(to_hex(n), 15, '0'),
       'https://tavus.daily.co/c' || lpad(to_hex(n), 15, '0'),
       'user-' || (n % 100000),
       '{}'::jsonb, '{}'::jsonb,
       t.at, t.at, t.at, t.at + interval '10 minutes', 'ended_by_client'
FROM generate_series(1, :rows) AS n,
     LATERAL (SELECT now() - make_interval(secs => n * 2) AS at) AS t
"""


async def retire_live_sessions(conn: AsyncConnection) -> None:
    await conn.execute(text(_RETIRE))
    # Autovacuum re-analyses a table after such a mass change. Until it does, the
    # planner's statistics still say these sessions are live, and admission counts the
    # live ones with a scan of the whole table (1.7 ms at 12,000 sessions, and growing)
    # instead of the partial index of live sessions.
    await conn.execute(text("ANALYZE session"))


async def insert_cleanup_backlog(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    profile: str,
    session_ids: Sequence[str],
    pal_ids: Sequence[str],
    pal_names: Sequence[str],
) -> None:
    await conn.execute(
        text(_CLEANUP_BACKLOG),
        {
            "tenant": tenant_id,
            "profile": profile,
            "ids": list(session_ids),
            "pal_ids": list(pal_ids),
            "pal_names": list(pal_names),
        },
    )


async def cleanup_backlog(conn: AsyncConnection) -> int:
    statement = text(f"SELECT count(*) FROM session WHERE {CLEANUP_BACKLOG_SQL}")
    return int((await conn.execute(statement)).scalar_one())


async def remove_all_sessions(conn: AsyncConnection) -> None:
    """Back to no session at all; tenants and their keys stay."""
    await conn.execute(text("TRUNCATE session, idempotency_record CASCADE"))
    await conn.execute(text("ANALYZE session"))


async def insert_history(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    rows: int,
    reuse_profile: str,
    ephemeral_profile: str,
    pal_id: str,
) -> None:
    await conn.execute(
        text(_HISTORY),
        {
            "tenant": tenant_id,
            "rows": rows,
            "reuse_profile": reuse_profile,
            "ephemeral_profile": ephemeral_profile,
            "pal_id": pal_id,
        },
    )
    # A real database has statistics on its history; the planner should too.
    await conn.execute(text("ANALYZE session"))


# Live sessions of a tenant: active ones due for their next poll in a minute, as a busy
# deployment has them.
_LIVE = """
INSERT INTO session (id, tenant_id, profile, state, strategy, strategy_reason, cleanup,
                     pal_id, pal_ephemeral, conversation_id, conversation_url, external_ref,
                     request, resolved, created_at, updated_at, active_at, deadline_at,
                     next_check_at)
SELECT gen_random_uuid(), :tenant, :profile, :state, 'reuse',
       'live session written by the benchmark', 'not_needed', :pal_id, false,
       'l' || md5(random()::text), 'https://tavus.daily.co/live',
       'live-' || n, '{}'::jsonb, '{}'::jsonb, now() - make_interval(secs => n),
       now(), now() - make_interval(secs => n), now() + interval '30 minutes',
       now() + interval '1 minute'
FROM generate_series(1, :rows) AS n
"""

# Each session's log as a start and an end leave it: its transitions, and Tavus's shutdown
# for those that ended.
_EVENTS = """
INSERT INTO session_event (session_id, kind, type, from_state, to_state, payload,
                           occurred_at, created_at)
SELECT s.id, e.kind, e.type, e.from_state, e.to_state, e.payload, e.occurred_at, e.at
FROM session AS s
CROSS JOIN LATERAL (VALUES
    ('transition', 'session.admitted', NULL, 'admitted', '{}'::jsonb, NULL::timestamptz,
     s.created_at),
    ('transition', 'session.active', 'admitted', 'active', '{}'::jsonb, NULL, s.active_at),
    ('webhook', 'system.shutdown', NULL, NULL,
     jsonb_build_object('event_type', 'system.shutdown',
                        'properties', jsonb_build_object('shutdown_reason', 'participant left')),
     s.ended_at, s.ended_at),
    ('transition', 'session.' || s.state, 'active', s.state, '{}'::jsonb, NULL, s.ended_at)
) AS e(kind, type, from_state, to_state, payload, occurred_at, at)
WHERE e.at IS NOT NULL AND NOT (s.state = 'failed' AND e.kind = 'webhook')
  AND NOT (e.type = 'session.active' AND s.state = 'failed')
"""


async def insert_live(
    conn: AsyncConnection, *, tenant_id: str, profile: str, pal_id: str, rows: int, state: str
) -> None:
    await conn.execute(
        text(_LIVE),
        {"tenant": tenant_id, "profile": profile, "pal_id": pal_id, "rows": rows, "state": state},
    )


async def insert_events(conn: AsyncConnection) -> int:
    """The event log of every session written so far; the number of events."""
    result = await conn.execute(text(_EVENTS))
    return int(result.rowcount)
