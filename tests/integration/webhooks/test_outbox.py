"""The outbox: each event of a session's life is written once, by the statement that
changes the session, with a delivery for each enabled endpoint that subscribes."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tavus_simulator import ErrorFault
from tests.integration.api.test_artifacts import ended_session, post_event
from tests.integration.api.test_sessions import setup_tenant, start
from tests.support.stack import Palisade, SimulatorHandle
from tests.support.wait import until

EVENTS = (
    "SELECT type, sequence, session FROM webhook_event WHERE session_id = :id ORDER BY sequence"
)


async def events_of(
    sessionmaker: async_sessionmaker[AsyncSession], session_id: str
) -> list[dict[str, Any]]:
    async with sessionmaker() as db:
        rows = await db.execute(text(EVENTS), {"id": uuid.UUID(session_id)})
        return [{"type": t, "sequence": s, "session": snap} for t, s, snap in rows]


async def add_endpoint(
    sessionmaker: async_sessionmaker[AsyncSession],
    tenant_id: str,
    *,
    event_types: list[str] | None = None,
    enabled: bool = True,
) -> uuid.UUID:
    endpoint_id = uuid.uuid4()
    async with sessionmaker.begin() as db:
        await db.execute(
            text(
                "INSERT INTO webhook_endpoint (id, tenant_id, url, event_types, secret_encrypted,"
                " enabled) VALUES (:id, :tenant, 'http://127.0.0.1:9/hook', :types, '\\x00',"
                " :enabled)"
            ),
            {"id": endpoint_id, "tenant": tenant_id, "types": event_types, "enabled": enabled},
        )
    return endpoint_id


async def deliveries_of(
    sessionmaker: async_sessionmaker[AsyncSession], endpoint_id: uuid.UUID
) -> list[str]:
    async with sessionmaker() as db:
        rows = await db.execute(
            text(
                "SELECT d.event_type FROM webhook_delivery d JOIN webhook_event e"
                " ON e.id = d.event_id WHERE d.endpoint_id = :id ORDER BY e.sequence"
            ),
            {"id": endpoint_id},
        )
        return [str(t) for (t,) in rows]


class TestEventsOfASessionsLife:
    async def test_an_ephemeral_session_writes_each_event_once_in_order(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        db = palisade.runtime.sessionmaker
        _, session = await ended_session(
            palisade, simulator, before_start=lambda: add_endpoint(db, "acme")
        )

        async def complete() -> list[dict[str, Any]] | None:
            events = await events_of(db, session["id"])
            types = {e["type"] for e in events}
            wanted = {"session.cleanup_done", "session.transcript_ready"}
            return events if wanted <= types else None

        events = await until(complete, message="cleanup and transcript events")
        types = [e["type"] for e in events]
        # The transcript may come before Tavus confirmed the end: events follow the
        # order of the changes, not of the life story.
        assert types[0] == "session.active"
        assert types.index("session.ended") < types.index("session.cleanup_done")
        assert sorted(types) == sorted(set(types))
        assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
        ended = events[types.index("session.ended")]["session"]
        assert ended["state"] == "ended"
        assert ended["end_reason"] is not None
        assert "request" not in ended
        assert "resolved" not in ended

        # A transcript sent again changes nothing the receivers have heard of.
        before = len(events)
        await post_event(palisade, session, "application.transcription_ready", transcript=[])
        assert len(await events_of(db, session["id"])) == before

    async def test_deliveries_go_to_enabled_endpoints_that_subscribe(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        db = palisade.runtime.sessionmaker
        key, _ = await setup_tenant(palisade)
        everything = await add_endpoint(db, "acme")
        ends_only = await add_endpoint(db, "acme", event_types=["session.ended"])
        disabled = await add_endpoint(db, "acme", enabled=False)
        session = (await start(palisade, key, {"profile": "coach"})).json()
        response = await palisade.as_tenant(key, "POST", f"/sessions/{session['id']}/end")
        assert response.status_code == 202, response.text

        async def ended() -> list[str] | None:
            types = await deliveries_of(db, ends_only)
            return types or None

        assert await until(ended, message="the ended event") == ["session.ended"]
        assert {"session.active", "session.ended"} <= set(await deliveries_of(db, everything))
        assert await deliveries_of(db, disabled) == []

    async def test_a_tenant_without_endpoints_writes_no_event(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        db = palisade.runtime.sessionmaker
        key, _ = await setup_tenant(palisade)
        await add_endpoint(db, "acme", enabled=False)
        await add_endpoint(db, "acme", event_types=["session.failed"])
        session = (await start(palisade, key, {"profile": "coach"})).json()
        response = await palisade.as_tenant(key, "POST", f"/sessions/{session['id']}/end")
        assert response.status_code == 202, response.text

        async def ended() -> bool:
            view = await palisade.as_tenant(key, "GET", f"/sessions/{session['id']}")
            return bool(view.json()["status"] == "ended")

        await until(ended, message="the session ended")
        assert await events_of(db, session["id"]) == []

    async def test_a_change_rolled_back_leaves_no_event(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        db = palisade.runtime.sessionmaker
        key, _ = await setup_tenant(palisade)
        await add_endpoint(db, "acme")
        session = (await start(palisade, key, {"profile": "coach"})).json()
        async with db() as transaction:
            await transaction.execute(
                text("UPDATE session SET state = 'ended' WHERE id = :id"),
                {"id": uuid.UUID(session["id"])},
            )
            await transaction.rollback()

        assert [e["type"] for e in await events_of(db, session["id"])] == ["session.active"]

    async def test_a_failed_start_writes_session_failed_with_its_error(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        db = palisade.runtime.sessionmaker
        key, _ = await setup_tenant(palisade)
        await add_endpoint(db, "acme")
        simulator.sim.add_fault(
            "conversation.create", ErrorFault(status=400, body={"error": "bad"})
        )
        response = await start(palisade, key, {"profile": "coach"})
        assert response.status_code >= 400, response.text
        rows = await _sessions_of(db, "acme")
        assert len(rows) == 1

        events = await events_of(db, rows[0])
        assert [e["type"] for e in events] == ["session.failed"]
        assert events[0]["session"]["error"]["code"]


async def _sessions_of(sessionmaker: async_sessionmaker[AsyncSession], tenant: str) -> list[str]:
    async with sessionmaker() as db:
        rows = await db.execute(text("SELECT id FROM session WHERE tenant_id = :t"), {"t": tenant})
        return [str(i) for (i,) in rows]
