"""What a session cost: billed_seconds against the simulator's own record of the
conversation's lifetime, the idle tail Tavus's shutdown reason reveals, the histogram,
and the per-tenant totals of the admin API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from app.settings import SIMULATOR_API_KEY
from tavus_simulator import DropFault
from tests.integration.api.test_artifacts import post_event, wait_for
from tests.integration.api.test_key_scopes import assert_problem
from tests.integration.api.test_sessions import setup_tenant, start
from tests.support.client import PalisadeClient
from tests.support.stack import Palisade, SimulatorHandle

# The profiles' default participant_left_timeout (docs/profiles.md).
LEFT_TIMEOUT = 60


def lifetime(simulator: SimulatorHandle, conversation_id: str) -> float:
    """The conversation's run as the simulator itself recorded it."""
    conversation = simulator.sim.conversation(conversation_id)
    assert conversation.ended_at is not None
    return (conversation.ended_at - conversation.created_at).total_seconds()


async def billed(api: PalisadeClient, session_id: str) -> dict[str, Any]:
    return await wait_for(
        api, session_id, lambda s: s["billed_seconds"] is not None, "billed_seconds known"
    )


def billed_count(tenant: str, profile: str, strategy: str) -> float:
    labels = {"tenant": tenant, "profile": profile, "strategy": strategy}
    return REGISTRY.get_sample_value("palisade_session_billed_seconds_count", labels) or 0.0


class TestBilledSeconds:
    async def test_matches_the_conversation_lifetime_when_tavus_ends_it(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        api = palisade.api_as(key)
        session = (await start(palisade, key, {"profile": "voices"})).json()
        assert session["billed_seconds"] is None
        before = billed_count("acme", "voices", "ephemeral")
        conversation_id = session["conversation_id"]
        simulator.sim.join_face(conversation_id)
        simulator.sim.join_participant(conversation_id)
        simulator.sim.advance(437.25)
        simulator.sim.shutdown_conversation(conversation_id, "max_call_duration reached")

        ended = await billed(api, session["id"])

        assert ended["billed_seconds"] == pytest.approx(lifetime(simulator, conversation_id), abs=1)
        assert ended["billed_seconds"] == pytest.approx(437.25, abs=1)
        assert ended["idle_seconds"] is None
        # Observed once, when it became known.
        assert billed_count("acme", "voices", "ephemeral") == before + 1

    async def test_matches_when_the_client_ends_it(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        api = palisade.api_as(key)
        session = (await start(palisade, key, {"profile": "coach"})).json()
        simulator.sim.advance(95)

        await api.end_session(session["id"])

        ended = await billed(api, session["id"])
        assert ended["billed_seconds"] == pytest.approx(
            lifetime(simulator, session["conversation_id"]), abs=1
        )

    async def test_matches_when_only_the_poll_sees_the_end(
        self, palisade_factory: Any, simulator: SimulatorHandle
    ) -> None:
        palisade = await palisade_factory(PALISADE_POLL_INTERVAL_SECONDS=0.2)
        key, _ = await setup_tenant(palisade)
        api = palisade.api_as(key)
        session = (await start(palisade, key, {"profile": "coach"})).json()
        simulator.sim.add_fault("webhook", DropFault())
        simulator.sim.join_participant(session["conversation_id"])
        simulator.sim.advance(200)
        simulator.sim.shutdown_conversation(session["conversation_id"], "max_call_duration reached")

        ended = await billed(api, session["id"])

        assert ended["billed_seconds"] == pytest.approx(
            lifetime(simulator, session["conversation_id"]), abs=1
        )

    async def test_the_time_after_the_last_participant_left(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        api = palisade.api_as(key)
        session = (await start(palisade, key, {"profile": "coach"})).json()
        conversation_id = session["conversation_id"]
        simulator.sim.join_face(conversation_id)
        simulator.sim.join_participant(conversation_id)
        simulator.sim.advance(120)
        simulator.sim.leave_participant(conversation_id)
        # The room runs on for participant_left_timeout, then Tavus ends it.
        simulator.sim.advance(LEFT_TIMEOUT)

        ended = await billed(api, session["id"])

        assert ended["end_reason"] == "participant_left_timeout"
        assert ended["billed_seconds"] == pytest.approx(120 + LEFT_TIMEOUT, abs=1)
        assert ended["idle_seconds"] == LEFT_TIMEOUT

    async def test_nobody_joined_means_every_billed_second_was_idle(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        api = palisade.api_as(key)
        session = (await start(palisade, key, {"profile": "coach"})).json()
        simulator.sim.advance(600)

        ended = await billed(api, session["id"])

        assert ended["end_reason"] == "participant_absent_timeout"
        assert ended["idle_seconds"] == ended["billed_seconds"]
        assert ended["billed_seconds"] == pytest.approx(
            lifetime(simulator, session["conversation_id"]), abs=1
        )

    async def test_a_late_shutdown_webhook_makes_it_known(
        self, palisade_factory: Any, simulator: SimulatorHandle
    ) -> None:
        palisade = await palisade_factory(PALISADE_POLL_INTERVAL_SECONDS=0.2)
        key, _ = await setup_tenant(palisade)
        api = palisade.api_as(key)
        session = (await start(palisade, key, {"profile": "coach"})).json()
        conversation_id = session["conversation_id"]
        created = simulator.sim.conversation(conversation_id).created_at
        simulator.sim.add_fault("webhook", DropFault())
        simulator.sim.advance(50)
        # Deleted on Tavus before Palisade read its end: no time to bill to, yet.
        deleted = await palisade.client.delete(
            f"{simulator.url}/v2/conversations/{conversation_id}",
            headers={"x-api-key": SIMULATOR_API_KEY},
        )
        assert deleted.status_code == 204, deleted.text
        ended = await wait_for(api, session["id"], lambda s: s["status"] == "ended", "ended")
        assert ended["end_reason"] == "tavus:conversation_not_found"
        assert ended["billed_seconds"] is None

        await post_event(
            palisade,
            session,
            "system.shutdown",
            shutdown_reason="daily_room_has_been_deleted",
            timestamp=(created + timedelta(seconds=50)).isoformat() + "Z",
        )

        assert (await billed(api, session["id"]))["billed_seconds"] == pytest.approx(50, abs=1)


class TestUsage:
    async def test_per_tenant_totals_over_a_period(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        other_key, _ = await setup_tenant(palisade, tenant_id="globex")
        api = palisade.api_as(key)
        since = datetime.now(UTC) - timedelta(minutes=1)
        lengths = {"coach": 100.0, "voices": 250.0}
        for profile, seconds in lengths.items():
            session = (await start(palisade, key, {"profile": profile})).json()
            simulator.sim.join_participant(session["conversation_id"])
            simulator.sim.advance(seconds)
            simulator.sim.shutdown_conversation(session["conversation_id"], "max_call_duration")
            await billed(api, session["id"])
        live = (await start(palisade, key, {"profile": "coach"})).json()
        other = (await start(palisade, other_key, {"profile": "coach"})).json()
        simulator.sim.shutdown_conversation(other["conversation_id"], "max_call_duration")
        await billed(palisade.api_as(other_key), other["id"])

        response = await palisade.api.get_tenant_usage(
            "acme",
            since=since.isoformat(),
            until=(datetime.now(UTC) + timedelta(minutes=1)).isoformat(),
        )

        assert response.status_code == 200, response.text
        usage = response.json()
        assert usage["tenant_id"] == "acme"
        assert usage["sessions"] == 2
        assert usage["billed_sessions"] == 2
        assert usage["billed_seconds"] == pytest.approx(sum(lengths.values()), abs=2)
        by_profile = {row["profile"]: row for row in usage["by_profile"]}
        assert by_profile["coach"]["billed_seconds"] == pytest.approx(100, abs=1)
        assert by_profile["voices"]["strategy"] == "ephemeral"
        assert live["id"] not in str(usage)

    async def test_a_period_that_ends_before_it_starts_is_refused(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        await setup_tenant(palisade)
        now = datetime.now(UTC)

        response = await palisade.api.get_tenant_usage(
            "acme", since=now.isoformat(), until=(now - timedelta(days=1)).isoformat()
        )

        assert_problem(response, 422, "invalid_period")

    @pytest.mark.parametrize(
        ("since", "code"),
        [
            ("0001-01-01T00:00:00+23:59", "invalid_period"),
            ("9999-12-31T23:59:59-23:59", "invalid_period"),
            ("yesterday", "validation_error"),
        ],
    )
    async def test_times_outside_any_period_are_422_not_500(
        self, palisade: Palisade, since: str, code: str
    ) -> None:
        await setup_tenant(palisade)

        response = await palisade.api.get_tenant_usage("acme", since=since)

        assert_problem(response, 422, code)

    async def test_an_unknown_tenant_is_404(self, palisade: Palisade) -> None:
        assert_problem(await palisade.api.get_tenant_usage("nobody"), 404, "tenant_not_found")
