"""The warm pool against a real database and the Tavus simulator: hits and misses,
bursts, refill, expiry, invalidation, crashes and two processes on one database."""

from __future__ import annotations

import asyncio
import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from app.db.models import PooledPal, Session
from app.domain.pool.claim import claim_pooled_pal
from app.domain.pool.fingerprint import pal_body_fingerprint
from app.domain.profiles.resolution import resolve
from app.domain.profiles.schemas import Profile
from app.domain.profiles.warm_pool import plan_pool
from app.domain.sessions import tags
from app.domain.sessions.moves import LeaseLost
from app.domain.sessions.schemas import SessionCreate
from app.domain.sessions.start import _plan
from app.domain.sessions.sweep import sweep
from app.tavus.models import PalCreate
from tavus_simulator import ErrorFault, LatencyFault, SucceedThenDropFault
from tests.conftest import PalisadeFactory
from tests.integration.api.test_webhooks import events, wait_status
from tests.integration.test_metrics import scrape
from tests.support.stack import PAL_TEMPLATE, Palisade, SimulatorHandle
from tests.support.wait import until

ALLOWED = ["layers.tts.external_voice_id", "system_prompt"]
VOICE_B = {"layers": {"tts": {"external_voice_id": "voice-b"}}}
# The pool works fast in tests; the rules are the same.
FAST_POOL = {"PALISADE_POOL_TICK_SECONDS": 0.05}


def pooled_profile(
    *, size: int = 2, variants: list[dict[str, Any]] | None = None, strategy: str = "ephemeral"
) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "strategy": strategy,
        "pal_template": copy.deepcopy(PAL_TEMPLATE),
        "allowed_overrides": ALLOWED,
        "warm_pool": {"size": size, "ttl_seconds": 600},
    }
    if variants is not None:
        profile["warm_pool"]["variants"] = variants
    return profile


async def make_tenant(
    palisade: Palisade,
    profile: dict[str, Any],
    *,
    tenant_id: str = "acme",
    cap: int = 50,
    tavus_api_key: str | None = None,
) -> str:
    body: dict[str, Any] = {
        "id": tenant_id,
        "name": tenant_id.title(),
        "max_concurrent_sessions": cap,
        "profiles": {"voices": profile},
        "default_profile": "voices",
    }
    if tavus_api_key is not None:
        body["tavus_api_key"] = tavus_api_key
    return await palisade.create_tenant(body)


async def start(palisade: Palisade, key: str, body: dict[str, Any]) -> httpx.Response:
    return await palisade.as_tenant(key, "POST", "/sessions", json=body)


async def pool_rows(palisade: Palisade) -> list[PooledPal]:
    async with palisade.runtime.sessionmaker() as db:
        return list((await db.scalars(select(PooledPal).order_by(PooledPal.created_at))).all())


def pool_pals(simulator: SimulatorHandle) -> list[dict[str, Any]]:
    """Live PALs on the simulator that carry the pool tag (pooled or taken by a session)."""
    return [p for p in simulator.live_pals() if tags.pool_id_from_name(p["pal_name"])]


def ever_created(simulator: SimulatorHandle) -> list[dict[str, Any]]:
    return [p for p in simulator.sim.snapshot()["pals"] if p["pal_type"] == "user"]


async def wait_ready(palisade: Palisade, count: int, **where: Any) -> list[PooledPal]:
    async def probe() -> list[PooledPal] | None:
        rows = [
            r
            for r in await pool_rows(palisade)
            if r.state == "ready" and all(getattr(r, k) == v for k, v in where.items())
        ]
        return rows if len(rows) == count else None

    return await until(probe, within=15, message=f"{count} ready pool PALs {where}")


async def wait_pool_pals(simulator: SimulatorHandle, count: int) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        found = pool_pals(simulator)
        return found if len(found) == count else None

    return await until(probe, within=15, message=f"{count} live pool PALs on Tavus")


def sim_pal(simulator: SimulatorHandle, row: PooledPal) -> Any:
    assert row.pal_id is not None
    return simulator.sim.pal(row.pal_id)


def no_orphans(simulator: SimulatorHandle, rows: list[PooledPal], held: set[str]) -> None:
    """Every live pool-tagged PAL is a pool row's or a session's, and vice versa."""
    live = {p["pal_id"] for p in pool_pals(simulator)}
    pooled = {r.pal_id for r in rows if r.pal_id}
    assert live == pooled | held


@pytest.fixture
async def pooled(palisade_factory: PalisadeFactory) -> Palisade:
    return await palisade_factory(**FAST_POOL)


class TestRefill:
    async def test_each_key_is_filled_to_its_size_with_the_exact_body(
        self, pooled: Palisade, simulator: SimulatorHandle
    ) -> None:
        await make_tenant(
            pooled, pooled_profile(size=2, variants=[{"name": "b", "overrides": VOICE_B}])
        )
        rows = await wait_ready(pooled, 4)
        assert sorted((r.variant or "") for r in rows) == ["", "", "b", "b"]
        pals = await wait_pool_pals(simulator, 4)
        by_id = {p["pal_id"]: p for p in pals}
        for row in rows:
            pal = by_id[row.pal_id]
            assert pal["pal_name"] == row.pal_name
            assert tags.pool_id_from_name(pal["pal_name"]) == row.id
            assert pal_body_fingerprint(pal["request"]) == row.fingerprint
        voices = sorted(
            by_id[r.pal_id]["request"]["layers"]["tts"]["external_voice_id"] for r in rows
        )
        assert voices == ["voice-a", "voice-a", "voice-b", "voice-b"]
        # Full: later passes create nothing more.
        await asyncio.sleep(0.5)
        assert len(ever_created(simulator)) == 4

    async def test_the_tenant_cap_counts_pooled_pals_and_session_pals(
        self, palisade_factory: PalisadeFactory, simulator: SimulatorHandle
    ) -> None:
        palisade = await palisade_factory(**FAST_POOL, PALISADE_POOL_MAX_PALS_PER_TENANT=3)
        key = await make_tenant(
            palisade, pooled_profile(size=2, variants=[{"name": "b", "overrides": VOICE_B}])
        )
        await wait_pool_pals(simulator, 3)
        rows = await wait_ready(palisade, 3)
        # Shared round-robin: neither key is left empty.
        assert sorted(r.variant or "" for r in rows) in (["", "", "b"], ["", "b", "b"])
        # A session that creates its own PAL holds one of the tenant's three.
        await start(palisade, key, {"overrides": {"system_prompt": "Other."}})
        taken = await start(palisade, key, {"overrides": VOICE_B})
        assert taken.json()["pal_id"] in {r.pal_id for r in rows}
        # Two PALs held by sessions and two pooled: above the cap, so no refill.
        await asyncio.sleep(0.5)
        assert len(await pool_rows(palisade)) == 2
        assert len(ever_created(simulator)) == 4


class TestHitsAndMisses:
    async def test_a_hit_creates_only_the_conversation_and_the_pool_refills(
        self, pooled: Palisade, simulator: SimulatorHandle
    ) -> None:
        key = await make_tenant(pooled, pooled_profile(size=1))
        [row] = await wait_ready(pooled, 1)
        creates_before = len(simulator.sim.call_log("pal.create"))
        response = await start(pooled, key, {"external_ref": "hit"})
        assert response.status_code == 201, response.text
        session = response.json()
        assert session["pal_id"] == row.pal_id
        assert session["pal_ephemeral"] is True
        assert session["cleanup"] == "pending"
        [conv] = simulator.conversations()
        assert conv["pal_id"] == row.pal_id
        moved = [
            e for e in await events(pooled, key, session["id"]) if e["to_state"] == "pal_created"
        ]
        assert moved[0]["payload"]["source"] == "warm_pool"
        assert moved[0]["payload"]["pool_id"] == str(row.id)
        # The start itself created no PAL; the refill made the replacement.
        [fresh] = await wait_ready(pooled, 1)
        assert fresh.id != row.id
        assert len(simulator.sim.call_log("pal.create")) == creates_before + 1
        # The session ends: its pooled PAL is deleted like any ephemeral PAL.
        simulator.sim.shutdown_conversation(session["conversation_id"], "max_call_duration")
        await wait_status(pooled, key, session["id"], "ended", cleanup="done")
        assert sim_pal(simulator, row).deleted_at is not None
        assert sim_pal(simulator, fresh).deleted_at is None

    async def test_a_variant_is_hit_by_the_overrides_it_declares(
        self, pooled: Palisade, simulator: SimulatorHandle
    ) -> None:
        # The template itself is not pooled (size 0); the variant is, at its own size.
        variant = {"name": "b", "overrides": VOICE_B, "size": 2}
        key = await make_tenant(pooled, pooled_profile(size=0, variants=[variant]))
        rows = await wait_ready(pooled, 2, variant="b")
        assert len(await pool_rows(pooled)) == 2
        hit = (await start(pooled, key, {"overrides": VOICE_B})).json()
        assert hit["pal_id"] in {r.pal_id for r in rows}
        assert simulator.sim.pal(hit["pal_id"]).request["layers"]["tts"]["external_voice_id"] == (
            "voice-b"
        )
        miss = (await start(pooled, key, {})).json()
        assert miss["pal_id"] not in {r.pal_id for r in rows}

    async def test_any_other_body_misses_and_creates_its_pal(
        self, pooled: Palisade, simulator: SimulatorHandle
    ) -> None:
        key = await make_tenant(pooled, pooled_profile(size=1))
        [row] = await wait_ready(pooled, 1)
        before = await scrape(pooled)
        response = await start(pooled, key, {"overrides": VOICE_B})
        assert response.status_code == 201, response.text
        session = response.json()
        assert session["pal_id"] != row.pal_id
        assert tags.session_id_from_name(simulator.sim.pal(session["pal_id"]).pal_name) == (
            uuid.UUID(session["id"])
        )
        [still] = await wait_ready(pooled, 1)
        assert still.id == row.id
        after = await scrape(pooled)
        labels = {"tenant": "acme", "profile": "voices"}
        miss = after.value("palisade_warm_pool_claims_total", **labels, outcome="miss")
        assert miss - before.value("palisade_warm_pool_claims_total", **labels, outcome="miss") == 1

    async def test_a_burst_beyond_the_pool_falls_back_and_never_shares_a_pal(
        self, palisade_factory: PalisadeFactory, simulator: SimulatorHandle
    ) -> None:
        # No background refill: the pool is filled once, and the burst cannot be served
        # by PALs made during it.
        palisade = await palisade_factory(PALISADE_RECONCILER=False)
        key = await make_tenant(palisade, pooled_profile(size=3))
        assert await palisade.runtime.warm_pool.refill() == 3
        rows = await wait_ready(palisade, 3)
        simulator.sim.add_fault("pal.create", LatencyFault(ms=200))
        responses = await asyncio.gather(
            *(start(palisade, key, {"external_ref": f"burst-{i}"}) for i in range(10))
        )
        assert [r.status_code for r in responses] == [201] * 10
        pal_ids = [r.json()["pal_id"] for r in responses]
        assert len(set(pal_ids)) == 10
        pooled_ids = {r.pal_id for r in rows}
        assert len(pooled_ids & set(pal_ids)) == 3
        assert len(simulator.conversations()) == 10

    async def test_the_refill_waits_until_the_burst_that_emptied_the_pool_is_over(
        self, pooled: Palisade, simulator: SimulatorHandle
    ) -> None:
        key = await make_tenant(pooled, pooled_profile(size=3))
        await wait_ready(pooled, 3)
        since = max((c.seq for c in simulator.sim.call_log()), default=0)
        # The burst's starts stay in flight long after the first hit wakes the refill.
        simulator.sim.add_fault("conversation.create", LatencyFault(ms=400))
        responses = await asyncio.gather(
            *(start(pooled, key, {"external_ref": f"burst-{i}"}) for i in range(6))
        )
        assert [r.status_code for r in responses] == [201] * 6
        last_start = max(c.seq for c in simulator.sim.call_log("conversation.create", since))
        await wait_ready(pooled, 3)
        refills = [
            c
            for c in simulator.sim.call_log("pal.create", since)
            if c.object_id and tags.pool_id_from_name(simulator.sim.pal(c.object_id).pal_name)
        ]
        assert len(refills) == 3
        assert all(c.seq > last_start for c in refills), "the refill competed with the burst"


class TestClaim:
    async def test_the_pal_moves_to_the_session_only_while_it_holds_its_lease(
        self, palisade_factory: PalisadeFactory, simulator: SimulatorHandle
    ) -> None:
        palisade = await palisade_factory(PALISADE_RECONCILER=False)
        await make_tenant(palisade, pooled_profile(size=1))
        assert await palisade.runtime.warm_pool.refill() == 1
        [row] = await wait_ready(palisade, 1)
        session_id = uuid.uuid4()
        resolution = resolve(
            Profile.model_validate(pooled_profile(size=1)), SessionCreate(), profile_name="voices"
        )
        sessionmaker = palisade.runtime.sessionmaker
        box = palisade.runtime.secret_box
        async with sessionmaker.begin() as db:
            db.add(
                Session(
                    id=session_id,
                    tenant_id="acme",
                    profile="voices",
                    state="admitted",
                    strategy="ephemeral",
                    strategy_reason="test",
                    cleanup="not_needed",
                    pal_ephemeral=True,
                    request={},
                    resolved=_plan(resolution, session_id),
                    next_check_at=datetime.now(UTC) + timedelta(minutes=1),
                    claimed_by="the-holder",
                )
            )
        async with sessionmaker() as db:
            admitted = await db.get(Session, session_id)
        assert admitted is not None
        lease = timedelta(minutes=1)

        async def claim(owner: str) -> Session | None:
            return await claim_pooled_pal(
                palisade.runtime.connections, admitted, owner, lease=lease, secret_box=box
            )

        with pytest.raises(LeaseLost):
            await claim_pooled_pal(
                palisade.runtime.connections,
                admitted,
                "not-the-holder",
                lease=lease,
                secret_box=box,
            )
        # Rolled back: the PAL is still the pool's, and still ready.
        [still] = await pool_rows(palisade)
        assert (still.id, still.state) == (row.id, "ready")

        moved = await claim_pooled_pal(
            palisade.runtime.connections, admitted, "the-holder", lease=lease, secret_box=box
        )
        assert moved is not None
        assert (moved.state, moved.pal_id, moved.cleanup) == ("pal_created", row.pal_id, "pending")
        assert await pool_rows(palisade) == []
        # Nothing left to take: a second claim misses.
        async with sessionmaker.begin() as db:
            await db.execute(
                update(Session).where(Session.id == session_id).values(state="admitted")
            )
        assert (
            await claim_pooled_pal(
                palisade.runtime.connections, admitted, "the-holder", lease=lease, secret_box=box
            )
            is None
        )


class TestExpiryAndInvalidation:
    async def test_an_expired_pal_is_deleted_on_tavus_and_replaced(
        self, pooled: Palisade, simulator: SimulatorHandle
    ) -> None:
        await make_tenant(pooled, pooled_profile(size=2))
        old = await wait_ready(pooled, 2)
        async with pooled.runtime.sessionmaker.begin() as db:
            await db.execute(
                update(PooledPal)
                .where(PooledPal.id == old[0].id)
                .values(expires_at=datetime.now(UTC), next_check_at=datetime.now(UTC))
            )

        async def replaced() -> bool:
            ids = {r.id for r in await pool_rows(pooled) if r.state == "ready"}
            return len(ids) == 2 and old[0].id not in ids

        await until(replaced, within=15, message="expired PAL replaced")
        await until(
            lambda: _async(sim_pal(simulator, old[0]).deleted_at is not None),
            message="expired PAL deleted on Tavus",
        )
        assert sim_pal(simulator, old[1]).deleted_at is None

    async def test_a_template_change_deletes_the_old_pals_and_pools_the_new_body(
        self, pooled: Palisade, simulator: SimulatorHandle
    ) -> None:
        key = await make_tenant(pooled, pooled_profile(size=2))
        old = await wait_ready(pooled, 2)
        changed = pooled_profile(size=2)
        changed["pal_template"]["system_prompt"] = "You are a brisk coach."
        patch = await pooled.admin("PATCH", "/tenants/acme", json={"profiles": {"voices": changed}})
        assert patch.status_code == 200, patch.text

        async def renewed() -> list[PooledPal] | None:
            rows = await pool_rows(pooled)
            fresh = [r for r in rows if r.state == "ready" and r.fingerprint != old[0].fingerprint]
            return fresh if len(fresh) == 2 and len(rows) == 2 else None

        fresh = await until(renewed, within=15, message="pool renewed")
        for row in old:
            assert sim_pal(simulator, row).deleted_at is not None
        for row in fresh:
            assert sim_pal(simulator, row).system_prompt == "You are a brisk coach."
        # A session now gets a PAL of the new template, from the pool.
        session = (await start(pooled, key, {})).json()
        assert session["pal_id"] in {r.pal_id for r in fresh}

    async def test_removing_the_pool_deletes_every_pooled_pal(
        self, pooled: Palisade, simulator: SimulatorHandle
    ) -> None:
        await make_tenant(pooled, pooled_profile(size=2))
        old = await wait_ready(pooled, 2)
        plain = pooled_profile()
        del plain["warm_pool"]
        patch = await pooled.admin("PATCH", "/tenants/acme", json={"profiles": {"voices": plain}})
        assert patch.status_code == 200, patch.text
        await until(lambda: _async(not pool_pals(simulator)), message="pool emptied on Tavus")
        await until(lambda: _rows_empty(pooled), message="pool rows gone")
        for row in old:
            assert sim_pal(simulator, row).deleted_at is not None

    async def test_a_new_tavus_key_moves_the_pool_to_the_new_account(
        self, pooled: Palisade, simulator: SimulatorHandle
    ) -> None:
        key = await make_tenant(pooled, pooled_profile(size=1), tavus_api_key="account-one")
        [old] = await wait_ready(pooled, 1)
        assert sim_pal(simulator, old).account == "account-one"
        patch = await pooled.admin("PATCH", "/tenants/acme", json={"tavus_api_key": "account-two"})
        assert patch.status_code == 200, patch.text
        # Until the new PAL is ready, a start misses rather than take the old account's.

        async def moved() -> list[PooledPal] | None:
            rows = await pool_rows(pooled)
            return (
                rows
                if len(rows) == 1 and rows[0].id != old.id and rows[0].state == "ready"
                else None
            )

        [new] = await until(moved, within=15, message="pool on the new account")
        assert sim_pal(simulator, new).account == "account-two"
        assert sim_pal(simulator, old).deleted_at is not None
        session = (await start(pooled, key, {})).json()
        assert session["pal_id"] == new.pal_id


class TestCrashSafety:
    async def test_a_lost_create_answer_is_resolved_by_its_tag(
        self, pooled: Palisade, simulator: SimulatorHandle
    ) -> None:
        simulator.sim.add_fault("pal.create", SucceedThenDropFault(times=2))
        await make_tenant(pooled, pooled_profile(size=2))
        rows = await wait_ready(pooled, 2)
        # The two dropped answers were found by their tags: no PAL made twice, none lost.
        assert len(ever_created(simulator)) == 2
        no_orphans(simulator, rows, set())

    async def test_a_refused_create_leaves_no_row_and_is_retried_later(
        self, pooled: Palisade, simulator: SimulatorHandle
    ) -> None:
        simulator.sim.add_fault(
            "pal.create", ErrorFault(status=400, body={"message": "no"}, times=1)
        )
        await make_tenant(pooled, pooled_profile(size=1))
        [row] = await wait_ready(pooled, 1)
        assert len(ever_created(simulator)) == 1
        no_orphans(simulator, [row], set())

    async def test_rows_of_a_dead_process_are_resolved_by_lookup_never_by_a_create(
        self, palisade_factory: PalisadeFactory, simulator: SimulatorHandle
    ) -> None:
        # No refill in the first process: only the rows left by a "crashed" one exist.
        first = await palisade_factory(PALISADE_RECONCILER=False)
        await make_tenant(first, pooled_profile(size=2))
        profile_row = await _fingerprint_of_template(first)
        made, lost = uuid.uuid4(), uuid.uuid4()
        name_made = tags.pool_pal_name("Coach", made)
        # The dead process's create reached Tavus for one row, not for the other.
        created = await first.runtime.tavus.create_pal(
            PalCreate.model_validate({**PAL_TEMPLATE, "pal_name": name_made})
        )
        stale_lease = datetime.now(UTC) - timedelta(seconds=1)
        async with first.runtime.sessionmaker.begin() as db:
            for pool_id, name in ((made, name_made), (lost, tags.pool_pal_name("Coach", lost))):
                db.add(
                    PooledPal(
                        id=pool_id,
                        tenant_id="acme",
                        profile="voices",
                        fingerprint=profile_row,
                        pal_name=name,
                        state="creating",
                        expires_at=datetime.now(UTC) + timedelta(minutes=10),
                        next_check_at=stale_lease,
                        claimed_by="dead-process",
                    )
                )
        creates_before = len(simulator.sim.call_log("pal.create"))
        # A process with a pool of size 2 takes over: it finds one, drops the other, and
        # refills the gap.
        second = await palisade_factory(**FAST_POOL)
        rows = await wait_ready(second, 2)
        assert made in {r.id for r in rows}
        assert lost not in {r.id for r in rows}
        assert {r.pal_id for r in rows if r.id == made} == {created.pal_id}
        assert len(simulator.sim.call_log("pal.create")) == creates_before + 1
        no_orphans(simulator, rows, set())


class TestSeveralProcesses:
    async def test_two_processes_fill_once_and_never_hand_out_one_pal_twice(
        self, palisade_factory: PalisadeFactory, simulator: SimulatorHandle
    ) -> None:
        one = await palisade_factory(**FAST_POOL)
        two = await palisade_factory(**FAST_POOL)
        key = await make_tenant(one, pooled_profile(size=4))
        two.tenants["acme"] = key
        await wait_ready(one, 4)
        # Both keep passing over the same pool: it never grows past its size.
        for _ in range(10):
            rows = [r for r in await pool_rows(one) if r.state in ("creating", "ready")]
            assert len(rows) <= 4
            await asyncio.sleep(0.05)
        responses = await asyncio.gather(
            *(start(app, key, {"external_ref": f"s{i}"}) for i, app in enumerate([one, two] * 6))
        )
        assert [r.status_code for r in responses] == [201] * 12
        pal_ids = [r.json()["pal_id"] for r in responses]
        assert len(set(pal_ids)) == 12
        conversations = simulator.conversations()
        assert len({c["pal_id"] for c in conversations}) == 12
        rows = await wait_ready(one, 4)
        assert not {r.pal_id for r in rows} & set(pal_ids)
        assert len([r for r in await pool_rows(one) if r.state in ("creating", "ready")]) == 4


class TestSweep:
    async def test_a_pool_tagged_pal_with_no_row_and_no_session_is_an_orphan(
        self, pooled: Palisade, simulator: SimulatorHandle
    ) -> None:
        key = await make_tenant(pooled, pooled_profile(size=1))
        [row] = await wait_ready(pooled, 1)
        session = (await start(pooled, key, {})).json()
        assert session["pal_id"] == row.pal_id
        [kept] = await wait_ready(pooled, 1)
        orphan = await pooled.runtime.tavus.create_pal(
            PalCreate.model_validate(
                {**PAL_TEMPLATE, "pal_name": tags.pool_pal_name("C", uuid.uuid4())}
            )
        )
        runtime = pooled.runtime
        report = await sweep(runtime.sessionmaker, runtime.accounts, dry_run=False)
        decisions = {a.object_id: a.decision for a in report.actions if a.kind == "pal"}
        assert decisions[orphan.pal_id] == "delete"
        assert kept.pal_id is not None
        assert decisions[kept.pal_id] == "keep: pooled"
        assert decisions[session["pal_id"]] == "keep: session running"
        assert simulator.sim.pal(orphan.pal_id).deleted_at is not None
        assert sim_pal(simulator, kept).deleted_at is None
        assert simulator.sim.pal(session["pal_id"]).deleted_at is None


class TestMetrics:
    async def test_pool_size_hits_and_refill_latency_are_exposed(
        self, pooled: Palisade, simulator: SimulatorHandle
    ) -> None:
        key = await make_tenant(pooled, pooled_profile(size=1))
        await wait_ready(pooled, 1)
        before = await scrape(pooled)
        labels = {"tenant": "acme", "profile": "voices"}
        assert before.value("palisade_warm_pool_pals", **labels, state="ready") == 1
        assert (await start(pooled, key, {})).status_code == 201
        await wait_ready(pooled, 1)
        after = await scrape(pooled)
        hits = "palisade_warm_pool_claims_total"
        assert (
            after.value(hits, **labels, outcome="hit") - before.value(hits, **labels, outcome="hit")
            == 1
        )
        refills = "palisade_warm_pool_refill_duration_seconds_count"
        assert after.value(refills) - before.value(refills) >= 1


# --- helpers ----------------------------------------------------------------------------


async def _async(value: bool) -> bool:
    return value


async def _rows_empty(palisade: Palisade) -> bool:
    return not await pool_rows(palisade)


async def _fingerprint_of_template(palisade: Palisade) -> str:
    [key] = plan_pool(Profile.model_validate(pooled_profile(size=2)), "voices").keys
    return key.fingerprint
