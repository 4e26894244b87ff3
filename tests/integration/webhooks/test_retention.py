"""Retention: expired idempotency keys and settled webhook events older than the retention
are deleted; a pending delivery, a recent event and a live key are kept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app.domain.retention import prune_expired
from tests.integration.api.test_sessions import setup_tenant, start
from tests.integration.webhooks.test_outbox import add_endpoint
from tests.support.stack import Palisade, SimulatorHandle

RETENTION = timedelta(days=30)


async def _event(
    palisade: Palisade,
    session_id: str,
    endpoint: uuid.UUID,
    *,
    sequence: int,
    age: timedelta,
    delivery: str | None,
) -> uuid.UUID:
    event_id = uuid.uuid4()
    created = datetime.now(UTC) - age
    async with palisade.runtime.sessionmaker.begin() as db:
        await db.execute(
            text(
                "INSERT INTO webhook_event (id, tenant_id, session_id, type, sequence, session,"
                " created_at) VALUES (:id, 'acme', :session, :type, :sequence, '{}', :created)"
            ),
            {
                "id": event_id,
                "session": uuid.UUID(session_id),
                "type": f"test.{sequence}",
                "sequence": sequence,
                "created": created,
            },
        )
        if delivery is not None:
            await db.execute(
                text(
                    "INSERT INTO webhook_delivery (event_id, endpoint_id, tenant_id, session_id,"
                    " event_type, status, next_check_at) VALUES (:event, :endpoint, 'acme',"
                    " :session, 'test', :status, :due)"
                ),
                {
                    "event": event_id,
                    "endpoint": endpoint,
                    "session": uuid.UUID(session_id),
                    "status": delivery,
                    # Never due while the test runs: the sender leaves it alone.
                    "due": created + timedelta(days=365) if delivery == "pending" else None,
                },
            )
    return event_id


async def _kept(palisade: Palisade, table: str, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    async with palisade.runtime.sessionmaker() as db:
        rows = await db.execute(
            text(f"SELECT id FROM {table} WHERE id = ANY(:ids)"),
            {"ids": ids},
        )
        return {i for (i,) in rows}


async def test_settled_old_events_go_pending_and_recent_ones_stay(
    palisade: Palisade, simulator: SimulatorHandle
) -> None:
    key, _ = await setup_tenant(palisade)
    endpoint = await add_endpoint(palisade.runtime.sessionmaker, "acme")
    session = (await start(palisade, key, {"profile": "coach"})).json()
    old = RETENTION + timedelta(days=1)
    delivered = await _event(
        palisade, session["id"], endpoint, sequence=101, age=old, delivery="delivered"
    )
    failed = await _event(
        palisade, session["id"], endpoint, sequence=102, age=old, delivery="failed"
    )
    unsent = await _event(palisade, session["id"], endpoint, sequence=103, age=old, delivery=None)
    pending = await _event(
        palisade, session["id"], endpoint, sequence=104, age=old, delivery="pending"
    )
    recent = await _event(
        palisade, session["id"], endpoint, sequence=105, age=timedelta(days=1), delivery="failed"
    )

    pruned = await prune_expired(
        palisade.runtime.sessionmaker, now=datetime.now(UTC), webhook_retention=RETENTION
    )

    assert pruned.webhook_events == 3
    everything = [delivered, failed, unsent, pending, recent]
    assert await _kept(palisade, "webhook_event", everything) == {pending, recent}


async def test_an_expired_key_is_forgotten_and_can_start_again(
    palisade: Palisade, simulator: SimulatorHandle
) -> None:
    key, _ = await setup_tenant(palisade)
    first = await start(palisade, key, {"profile": "coach"}, idempotency_key="k-expires")
    live = await start(palisade, key, {"profile": "coach"}, idempotency_key="k-live")
    assert first.status_code == live.status_code == 201
    async with palisade.runtime.sessionmaker.begin() as db:
        await db.execute(
            text(
                "UPDATE idempotency_record SET expires_at = now() - interval '1 minute'"
                " WHERE key = 'k-expires'"
            )
        )

    pruned = await prune_expired(
        palisade.runtime.sessionmaker, now=datetime.now(UTC), webhook_retention=RETENTION
    )

    assert pruned.idempotency_keys == 1
    # Forgotten: the key starts a new session, even with another body.
    again = await start(
        palisade, key, {"profile": "coach", "external_ref": "u2"}, idempotency_key="k-expires"
    )
    assert again.status_code == 201, again.text
    assert again.json()["id"] != first.json()["id"]
    replay = await start(palisade, key, {"profile": "coach"}, idempotency_key="k-live")
    assert replay.headers["idempotent-replayed"] == "true"
