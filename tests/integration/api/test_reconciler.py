"""The reconciler converges sessions whatever Tavus, webhooks or processes did."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import select, update

from app.db.instrumentation import RoundTripCounter, install
from app.db.models import Session
from app.db.repositories.sessions import SessionRepository
from app.domain.sessions.schemas import SessionCreate
from bench.rows import insert_cleanup_backlog
from tavus_simulator import DropFault, ErrorFault
from tests.integration.api.test_sessions import setup_tenant, start
from tests.integration.api.test_webhooks import events, wait_status
from tests.support.stack import Palisade, SimulatorHandle
from tests.support.wait import until


async def rows(palisade: Palisade) -> list[Session]:
    async with palisade.runtime.sessionmaker() as db:
        return list((await db.scalars(select(Session))).all())


class TestDeadline:
    async def test_conversation_past_its_deadline_is_ended_with_all_webhooks_dropped(
        self, palisade_factory: Any, simulator: SimulatorHandle
    ) -> None:
        palisade = await palisade_factory(
            PALISADE_DEADLINE_GRACE_SECONDS=0, PALISADE_POLL_INTERVAL_SECONDS=0.2
        )
        key, _ = await setup_tenant(palisade)
        # Tavus's own clock barely moves: only Palisade's deadline can end the call.
        simulator.sim.configure(time_scale=0.001)
        simulator.sim.add_fault("webhook", DropFault())
        session = (
            await start(
                palisade,
                key,
                {"profile": "voices", "conversation": {"properties": {"max_call_duration": 1}}},
            )
        ).json()
        ended = await wait_status(palisade, key, session["id"], "ended", cleanup="done")
        assert ended["end_reason"] == "deadline_exceeded"
        conv = simulator.sim.conversation(session["conversation_id"])
        assert conv.status == "ended"
        assert conv.shutdown_reason == "end_conversation_endpoint_hit"
        assert simulator.sim.pal(session["pal_id"]).deleted_at is not None

    async def _running_past_its_deadline(
        self, palisade_factory: Any, simulator: SimulatorHandle
    ) -> tuple[Palisade, str, dict[str, Any]]:
        palisade = await palisade_factory(
            PALISADE_DEADLINE_GRACE_SECONDS=0, PALISADE_POLL_INTERVAL_SECONDS=0.2
        )
        key, _ = await setup_tenant(palisade)
        simulator.sim.configure(time_scale=0.001)
        simulator.sim.add_fault("webhook", DropFault())
        body = {"profile": "voices", "conversation": {"properties": {"max_call_duration": 1}}}
        session = (await start(palisade, key, body)).json()
        return palisade, key, session

    async def test_odd_verbose_events_do_not_stall_the_deadline(
        self, palisade_factory: Any, simulator: SimulatorHandle
    ) -> None:
        palisade, key, session = await self._running_past_its_deadline(palisade_factory, simulator)
        # Integrators disagree on the shape of verbose events; these would once have
        # made every status read fail, and the deadline end never ran.
        odd = {
            "conversation_id": session["conversation_id"],
            "conversation_name": "whatever",
            "status": "active",
            "events": [
                {"timestamp": "2026-12-06T10:00:00Z"},
                {"event_type": "system.replica_joined", "properties": "r90bbd427f71"},
                "application.perception_analysis",
            ],
        }
        simulator.sim.add_fault("conversation.get", ErrorFault(status=200, body=odd))
        skipped = REGISTRY.get_sample_value("palisade_tavus_events_skipped_total") or 0.0

        async def ended_on_tavus() -> bool:
            return simulator.sim.conversation(session["conversation_id"]).status == "ended"

        await until(ended_on_tavus, within=15, message="the conversation was ended on Tavus")
        assert (REGISTRY.get_sample_value("palisade_tavus_events_skipped_total") or 0) > skipped
        simulator.sim.clear_faults("conversation.get")
        ended = await wait_status(palisade, key, session["id"], "ended", cleanup="done")
        assert ended["end_reason"] == "deadline_exceeded"

    async def test_an_unreadable_status_does_not_stall_the_deadline(
        self, palisade_factory: Any, simulator: SimulatorHandle
    ) -> None:
        palisade, key, session = await self._running_past_its_deadline(palisade_factory, simulator)
        simulator.sim.add_fault("conversation.get", ErrorFault(preset="server_error"))

        async def ended_on_tavus() -> bool:
            return simulator.sim.conversation(session["conversation_id"]).status == "ended"

        await until(ended_on_tavus, within=15, message="the conversation was ended on Tavus")

        async def ending() -> bool:
            read = await palisade.as_tenant(key, "GET", f"/sessions/{session['id']}")
            return bool(read.json()["status"] in ("ending", "ended"))

        # The end is recorded once Tavus has answered it.
        await until(ending, within=15, message="the session is ending")
        simulator.sim.clear_faults("conversation.get")
        ended = await wait_status(palisade, key, session["id"], "ended", cleanup="done")
        assert ended["end_reason"] == "deadline_exceeded"


class TestExplicitEnd:
    async def test_an_end_whose_webhook_is_lost_is_confirmed_after_the_poll_interval(
        self, palisade_factory: Any, simulator: SimulatorHandle
    ) -> None:
        palisade = await palisade_factory(PALISADE_POLL_INTERVAL_SECONDS=0.2)
        key, _ = await setup_tenant(palisade)
        simulator.sim.add_fault("webhook", DropFault())
        session = (await start(palisade, key, {"profile": "voices"})).json()
        ending = await palisade.as_tenant(key, "POST", f"/sessions/{session['id']}/end")
        assert ending.json()["status"] == "ending"
        # Confirmed at the operator's pace (wait_status gives up after 15 s), not after a
        # fixed half minute.
        ended = await wait_status(palisade, key, session["id"], "ended", cleanup="done")
        assert ended["end_reason"] == "ended_by_client"
        assert simulator.sim.pal(session["pal_id"]).deleted_at is not None


class TestCleanupRetries:
    async def test_pal_deletion_is_retried_until_tavus_confirms(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {"profile": "voices"})).json()
        simulator.sim.add_fault("pal.delete", ErrorFault(preset="unavailable", times=8))
        simulator.sim.shutdown_conversation(session["conversation_id"], "max_call_duration reached")
        await wait_status(palisade, key, session["id"], "ended", cleanup="done")
        assert simulator.sim.pal(session["pal_id"]).deleted_at is not None
        retries = [
            e for e in await events(palisade, key, session["id"]) if e["type"] == "cleanup.retry"
        ]
        assert retries
        assert retries[-1]["payload"]["attempts"] == len(retries)

    async def test_a_rate_limited_deletion_waits_for_retry_after(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {"profile": "voices"})).json()
        simulator.sim.add_fault(
            "pal.delete", ErrorFault(preset="rate_limited", retry_after_s=1.5, times=1)
        )
        simulator.sim.shutdown_conversation(session["conversation_id"], "max_call_duration reached")
        await wait_status(palisade, key, session["id"], "ended", cleanup="done")
        limited, deleted = simulator.sim.call_log("pal.delete")
        assert (limited.status, deleted.status) == (429, 204)
        # Longer than any backoff of its own: only Retry-After explains the wait.
        assert (deleted.at - limited.at).total_seconds() >= 1.5

    async def test_an_already_gone_pal_counts_as_done(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {"profile": "voices"})).json()
        await palisade.runtime.tavus.delete_pal(session["pal_id"])
        simulator.sim.shutdown_conversation(session["conversation_id"], "max_call_duration reached")
        ended = await wait_status(palisade, key, session["id"], "ended", cleanup="done")
        assert ended["cleanup"] == "done"


class TestCrashedStart:
    async def test_a_start_abandoned_mid_saga_is_finished_by_the_reconciler(
        self, palisade_factory: Any, simulator: SimulatorHandle
    ) -> None:
        palisade = await palisade_factory(PALISADE_START_LEASE_SECONDS=5)
        key, _ = await setup_tenant(palisade)
        saga = palisade.runtime.start_saga
        # Admission happened, then the process "died" before any Tavus call.
        admitted = await saga._admit("acme", SessionCreate(profile="voices"), None, None)
        assert isinstance(admitted, tuple)
        session_id = admitted[0].id
        async with palisade.runtime.sessionmaker.begin() as db:
            await db.execute(
                update(Session)
                .where(Session.id == session_id)
                .values(next_check_at=datetime.now(UTC) - timedelta(seconds=1), claimed_by="dead")
            )
        session = await wait_status(palisade, key, str(session_id), "active")
        [conv] = simulator.conversations()
        assert conv["conversation_id"] == session["conversation_id"]


class TestReplicas:
    async def test_two_instances_never_claim_the_same_session(
        self, palisade: Palisade, second_palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade, cap=100)
        made = await asyncio.gather(
            *(start(palisade, key, {"profile": "voices"}) for _ in range(30))
        )
        sessions = [r.json() for r in made]
        for session in sessions:
            simulator.sim.shutdown_conversation(
                session["conversation_id"], "max_call_duration reached"
            )

        async def all_clean() -> bool:
            return all(r.cleanup == "done" for r in await rows(palisade))

        await until(all_clean, within=30, message="all cleaned")
        for session in sessions:
            assert simulator.sim.pal(session["pal_id"]).delete_calls == 1

    async def test_shutdown_releases_claims(self, palisade_factory: Any) -> None:
        # No loop of its own: a running loop would claim the released session again at
        # its next tick (in `palisade serve`, shutdown runs once the loop has stopped).
        palisade = await palisade_factory(PALISADE_RECONCILER=False)
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {"profile": "coach"})).json()
        reconciler = palisade.runtime.reconciler
        assert reconciler is not None
        async with palisade.runtime.sessionmaker.begin() as db:
            await db.execute(
                update(Session)
                .where(Session.id == uuid.UUID(session["id"]))
                .values(
                    claimed_by=reconciler.owner,
                    next_check_at=datetime.now(UTC) + timedelta(hours=1),
                )
            )
        await reconciler.release()
        [row] = await rows(palisade)
        assert row.claimed_by is None
        assert row.next_check_at is not None
        assert row.next_check_at <= datetime.now(UTC)


class TestIdleCost:
    """A tick runs every second in every process; with nothing due it is a single
    statement, with no transaction around it."""

    async def test_a_tick_with_nothing_due_is_one_round_trip(
        self, palisade_factory: Any, tmp_path: Path
    ) -> None:
        palisade = await palisade_factory(PALISADE_RECONCILER=False)
        runtime = palisade.runtime
        counter = RoundTripCounter(tmp_path / "round_trips.json", ping_round_trips=1)
        install(counter, runtime.engine, runtime.connections)

        assert await runtime.reconciler.tick() == 0
        assert await runtime.warm_pool.handle_due() == 0

        totals = counter.totals()
        assert totals["statement"] == 2, totals["sequence"]
        assert totals["begin"] == totals["commit"] == totals["rollback"] == 0, totals["sequence"]


class TestFairness:
    async def test_one_tenants_cleanup_storm_does_not_hold_back_anothers(
        self, palisade_factory: Any
    ) -> None:
        palisade = await palisade_factory(PALISADE_RECONCILER=False)
        for tenant_id in ("storm", "calm"):
            await setup_tenant(palisade, tenant_id=tenant_id)
        async with palisade.runtime.engine.begin() as conn:
            for tenant_id, count in (("storm", 200), ("calm", 2)):
                ids = [str(uuid.uuid4()) for _ in range(count)]
                await insert_cleanup_backlog(
                    conn,
                    tenant_id=tenant_id,
                    profile="voices",
                    session_ids=ids,
                    pal_ids=[f"p-{i}" for i in ids],
                    pal_names=[f"n-{i}" for i in ids],
                )
        # The calm tenant's deletions fell due after every one of the storm's.
        async with palisade.runtime.sessionmaker.begin() as db:
            await db.execute(
                update(Session)
                .where(Session.tenant_id == "calm")
                .values(next_check_at=Session.next_check_at + timedelta(milliseconds=1))
            )
        now = datetime.now(UTC) + timedelta(seconds=1)
        async with palisade.runtime.autocommit.begin() as db:
            claimed = await SessionRepository(db).claim_due(
                owner="test", now=now, lease_until=now + timedelta(minutes=1), limit=10
            )
        tenants = [r.tenant_id for r in claimed]
        assert len(tenants) == 10
        assert tenants.count("calm") == 2
