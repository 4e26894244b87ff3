"""The orphan sweep removes only what it can attribute to a session that is over."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from app.db.models import Session
from app.db.repositories.sweeps import SweepRunRepository
from app.domain.sessions import sweep as sweep_module
from app.domain.sessions import tags
from app.domain.sessions.sweep import SweepReport, sweep
from app.tavus.models import ConversationCreate, PalCreate
from tests.integration.api.test_sessions import setup_tenant, start
from tests.support.stack import Palisade, SimulatorHandle


async def run(palisade: Palisade, *, dry_run: bool) -> SweepReport:
    runtime = palisade.runtime
    return await sweep(runtime.sessionmaker, runtime.accounts, dry_run=dry_run)


async def make_pal(palisade: Palisade, name: str) -> str:
    pal = await palisade.runtime.tavus.create_pal(
        PalCreate(default_face_id="r1", pal_name=name, system_prompt="x")
    )
    return pal.pal_id


class TestAttribution:
    async def test_orphan_of_an_unknown_session_is_found_then_removed(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        await setup_tenant(palisade)
        orphan = await make_pal(palisade, tags.pal_name("Coach", uuid.uuid4()))
        foreign = await make_pal(palisade, "Someone else's PAL")

        dry = await run(palisade, dry_run=True)
        assert [(a.object_id, a.decision) for a in dry.removed] == [(orphan, "delete")]
        assert simulator.sim.pal(orphan).deleted_at is None
        assert any("would delete pal" in line for line in dry.lines())

        real = await run(palisade, dry_run=False)
        assert [(a.object_id, a.done) for a in real.removed] == [(orphan, True)]
        assert simulator.sim.pal(orphan).deleted_at is not None
        assert simulator.sim.pal(foreign).deleted_at is None

    async def test_persistent_pals_are_never_touched_even_when_tagged(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        tagged = await make_pal(palisade, tags.pal_name("Persistent", uuid.uuid4()))
        body = {
            "id": "keep",
            "name": "Keep",
            "profiles": {"p": {"strategy": "reuse", "pal_id": tagged}},
        }
        await palisade.create_tenant(body)
        report = await run(palisade, dry_run=False)
        assert report.removed == []
        assert simulator.sim.pal(tagged).deleted_at is None

    async def test_a_running_sessions_objects_are_kept(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {"profile": "voices"})).json()
        report = await run(palisade, dry_run=False)
        assert report.removed == []
        assert simulator.sim.pal(session["pal_id"]).deleted_at is None
        assert simulator.sim.conversation(session["conversation_id"]).status == "active"

    async def test_an_ended_sessions_live_conversation_and_pal_are_removed(
        self, palisade_factory: object, simulator: SimulatorHandle
    ) -> None:
        palisade = await palisade_factory(PALISADE_RECONCILER=False)  # type: ignore[operator]
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {"profile": "voices"})).json()
        # The database says it is over, but Tavus still runs it (e.g. lost end call).
        async with palisade.runtime.sessionmaker.begin() as db:
            await db.execute(
                update(Session)
                .where(Session.id == uuid.UUID(session["id"]))
                .values(state="ended", cleanup="done", next_check_at=None)
            )
        report = await run(palisade, dry_run=False)
        decisions = sorted((a.kind, a.decision) for a in report.removed)
        assert decisions == [("conversation", "end"), ("pal", "delete")]
        assert simulator.sim.conversation(session["conversation_id"]).status == "ended"
        assert simulator.sim.pal(session["pal_id"]).deleted_at is not None
        events = (await palisade.as_tenant(key, "GET", f"/sessions/{session['id']}/events")).json()
        assert {"sweep.end_conversation", "sweep.delete_pal"} <= {
            e["type"] for e in events["items"]
        }

    async def test_untagged_conversations_are_left_alone(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        pal = await make_pal(palisade, "Plain")
        conv = await palisade.runtime.tavus.create_conversation(
            ConversationCreate(pal_id=pal, conversation_name="someone's call")
        )
        report = await run(palisade, dry_run=False)
        assert report.removed == []
        assert simulator.sim.conversation(conv.conversation_id).status == "active"


class TestProfileCheckPals:
    async def test_a_check_pal_left_behind_is_removed_once_no_check_can_be_running(
        self, palisade: Palisade, simulator: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        left = await make_pal(palisade, tags.check_pal_name("Coach", uuid.uuid4(), "Check"))

        young = await run(palisade, dry_run=False)
        [kept] = [a for a in young.actions if a.object_id == left]
        assert kept.decision == "keep: profile check may be running"
        assert simulator.sim.pal(left).deleted_at is None

        # Seen from a sweep that runs after any check would have finished.
        monkeypatch.setattr(sweep_module, "CHECK_PAL_MAX_AGE", timedelta(0))
        old = await run(palisade, dry_run=False)
        assert [(a.object_id, a.done) for a in old.removed] == [(left, True)]
        assert simulator.sim.pal(left).deleted_at is not None


class TestRecords:
    async def test_each_real_run_is_recorded_with_what_it_removed(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        await setup_tenant(palisade)
        session_id = uuid.uuid4()
        orphan = await make_pal(palisade, tags.pal_name("Coach", session_id))

        await run(palisade, dry_run=True)
        async with palisade.runtime.sessionmaker() as db:
            assert await SweepRunRepository(db).latest(10) == []

        report = await run(palisade, dry_run=False)
        async with palisade.runtime.sessionmaker() as db:
            [record] = await SweepRunRepository(db).latest(10)
        assert record.started_at == report.started_at
        assert record.finished_at >= record.started_at
        assert (record.accounts, record.removed, record.failed) == (1, 1, 0)
        assert record.pals_seen == report.pals_seen
        assert record.errors == []
        assert record.actions == [
            {
                "kind": "pal",
                "object_id": orphan,
                "name": tags.pal_name("Coach", session_id),
                "session_id": str(session_id),
                "decision": "delete",
                "done": True,
                "error": None,
            }
        ]

    async def test_records_older_than_the_retention_are_forgotten(
        self, palisade: Palisade, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await run(palisade, dry_run=False)
        monkeypatch.setattr(sweep_module, "SWEEP_RECORDS_KEPT_FOR", timedelta(0))
        await run(palisade, dry_run=False)
        async with palisade.runtime.sessionmaker() as db:
            records = await SweepRunRepository(db).latest(10)
        assert len(records) == 1
