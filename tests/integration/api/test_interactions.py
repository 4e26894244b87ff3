"""POST /sessions/{id}/interactions: Palisade relays Tavus interactions to the live
conversation, under Tavus's size, rate and delivery rules, and logs each one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tavus_simulator import DropFault, ErrorFault
from tests.integration.api.test_key_scopes import assert_needs_scope, assert_problem, issue
from tests.integration.api.test_sessions import setup_tenant, start
from tests.support.client import InteractionCreate, PalisadeClient
from tests.support.stack import Palisade, SimulatorHandle
from tests.support.wait import until

OPERATION = "conversation.send_app_message"

EVERY_INTERACTION: list[InteractionCreate] = [
    {
        "event_type": "conversation.append_llm_context",
        "properties": {"context": "She is on the pricing page."},
    },
    {"event_type": "conversation.respond", "properties": {"text": "What plans are there?"}},
    {"event_type": "conversation.echo", "properties": {"modality": "text", "text": "One moment."}},
    {"event_type": "conversation.interrupt"},
    {
        "event_type": "conversation.sensitivity",
        "properties": {
            "participant_pause_sensitivity": "high",
            "participant_interrupt_sensitivity": "low",
        },
    },
    {"event_type": "conversation.overwrite_llm_context", "properties": {"context": "Start over."}},
]


def _append(context: str) -> InteractionCreate:
    return {"event_type": "conversation.append_llm_context", "properties": {"context": context}}


def _overwrite(context: str) -> InteractionCreate:
    return {"event_type": "conversation.overwrite_llm_context", "properties": {"context": context}}


async def live_session(
    palisade: Palisade, simulator: SimulatorHandle, *, profile: str = "coach"
) -> tuple[PalisadeClient, dict[str, Any]]:
    key, _ = await setup_tenant(palisade)
    session = (
        await start(palisade, key, {"profile": profile, "conversational_context": "Ana."})
    ).json()
    simulator.sim.join_face(session["conversation_id"])
    return palisade.api_as(key), session


def conversation(simulator: SimulatorHandle, session: dict[str, Any]) -> dict[str, Any]:
    return simulator.sim.conversation(session["conversation_id"]).control_json()


def sent_statuses(simulator: SimulatorHandle) -> list[int | None]:
    return [call.status for call in simulator.sim.call_log(OPERATION)]


async def interaction_events(api: PalisadeClient, session_id: str) -> list[dict[str, Any]]:
    response = await api.list_session_events(session_id)
    assert response.status_code == 200, response.text
    return [e for e in response.json()["items"] if e["kind"] == "interaction"]


class TestRelay:
    async def test_every_interaction_type_reaches_the_conversation_and_is_logged(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        api, session = await live_session(palisade, simulator)

        for body in EVERY_INTERACTION:
            response = await api.send_interaction(session["id"], body)
            assert response.status_code == 202, response.text
            accepted = response.json()
            assert accepted["event_type"] == body["event_type"]
            assert accepted["session_id"] == session["id"]
            assert accepted["conversation_id"] == session["conversation_id"]

        state = conversation(simulator, session)
        messages = state["app_messages"]
        assert [(m["event_type"], m["status"]) for m in messages] == [
            (b["event_type"], "delivered") for b in EVERY_INTERACTION
        ]
        for message in messages:
            # Palisade adds Tavus's envelope.
            assert message["message"]["message_type"] == "conversation"
            assert message["message"]["conversation_id"] == session["conversation_id"]
        assert messages[0]["message"]["properties"] == {"context": "She is on the pricing page."}
        assert messages[3]["message"]["properties"] == {}
        assert state["conversational_context"] == "Start over."

        logged = await interaction_events(api, session["id"])
        assert [e["type"] for e in logged] == [b["event_type"] for b in EVERY_INTERACTION]
        for event, message, accepted_body in zip(logged, messages, EVERY_INTERACTION, strict=True):
            assert event["payload"]["outcome"] == "accepted"
            assert event["payload"]["tavus_status"] == 200
            assert event["payload"]["size_bytes"] == len(_encoded(message["message"])), (
                accepted_body
            )
            # The words are the caller's business: the log keeps their size, not them.
            assert "pricing" not in str(event["payload"])
            assert "Start over" not in str(event["payload"])

    async def test_an_append_before_the_face_joins_waits_for_it(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {"profile": "coach"})).json()
        api = palisade.api_as(key)

        response = await api.send_interaction(session["id"], _append("queued"))

        assert response.status_code == 202, response.text
        assert [m["status"] for m in conversation(simulator, session)["app_messages"]] == ["queued"]
        simulator.sim.join_face(session["conversation_id"])
        assert conversation(simulator, session)["conversational_context"] == "queued"


class TestValidation:
    @pytest.mark.parametrize(
        ("body", "loc", "code"),
        [
            (
                {"event_type": "conversation.respond", "properties": {"text": "hi", "voice": "x"}},
                ["body", "conversation.respond", "properties", "voice"],
                "unknown_field",
            ),
            (
                {"event_type": "conversation.respond", "properties": {"text": "hi"}, "extra": 1},
                ["body", "conversation.respond", "extra"],
                "unknown_field",
            ),
            (
                {"event_type": "conversation.interrupt", "properties": {"now": True}},
                ["body", "conversation.interrupt", "properties", "now"],
                "unknown_field",
            ),
            (
                {"event_type": "conversation.tool_result", "properties": {}},
                ["body"],
                "invalid_choice",
            ),
            ({"properties": {"text": "hi"}}, ["body"], "missing_field"),
            (
                {"event_type": "conversation.respond", "properties": {}},
                ["body", "conversation.respond", "properties", "text"],
                "missing_field",
            ),
            (
                {"event_type": "conversation.echo", "properties": {"modality": "text"}},
                ["body", "conversation.echo", "properties"],
                "missing_field",
            ),
            (
                {
                    "event_type": "conversation.echo",
                    "properties": {"modality": "audio", "audio": "not base64!"},
                },
                ["body", "conversation.echo", "properties", "audio"],
                "invalid_format",
            ),
            (
                {"event_type": "conversation.sensitivity", "properties": {}},
                ["body", "conversation.sensitivity", "properties"],
                "missing_field",
            ),
            (
                {
                    "event_type": "conversation.sensitivity",
                    "properties": {"participant_pause_sensitivity": "loud"},
                },
                ["body", "conversation.sensitivity", "properties", "participant_pause_sensitivity"],
                "invalid_choice",
            ),
            (
                {"event_type": "conversation.append_llm_context", "properties": {"context": 7}},
                ["body", "conversation.append_llm_context", "properties", "context"],
                "invalid_type",
            ),
        ],
    )
    async def test_refused_with_where_and_why(
        self,
        palisade: Palisade,
        simulator: SimulatorHandle,
        body: dict[str, Any],
        loc: list[str],
        code: str,
    ) -> None:
        api, session = await live_session(palisade, simulator)

        response = await api.send_interaction(session["id"], body)  # type: ignore[arg-type]

        problem = assert_problem(response, 422, "validation_error")
        assert {"loc": loc, "code": code} in [
            {"loc": e["loc"], "code": e["code"]} for e in problem["errors"]
        ], problem
        assert simulator.sim.call_log(OPERATION) == []


class TestRefusals:
    async def test_a_session_that_is_not_active_is_409(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        api, session = await live_session(palisade, simulator)
        await api.end_session(session["id"])

        response = await api.send_interaction(session["id"], _append("too late"))

        problem = assert_problem(response, 409, "session_not_active")
        assert problem["status_now"] in ("ending", "ended")
        assert simulator.sim.call_log(OPERATION) == []
        assert await interaction_events(api, session["id"]) == []

    async def test_another_tenants_session_is_404(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        _, session = await live_session(palisade, simulator)
        other_key, _ = await setup_tenant(palisade, tenant_id="globex")

        response = await palisade.api_as(other_key).send_interaction(
            session["id"], _append("not yours")
        )

        assert_problem(response, 404, "session_not_found")
        assert simulator.sim.call_log(OPERATION) == []

    async def test_the_scope_is_sessions_interact(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        _, session = await live_session(palisade, simulator)
        reader = palisade.api_as(await issue(palisade, {"scopes": ["sessions:read"]}))

        assert_needs_scope(
            await reader.send_interaction(session["id"], _append("x")), "sessions:interact"
        )

    async def test_over_tavus_64_kib_is_413_and_nothing_is_sent(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        api, session = await live_session(palisade, simulator)
        empty = _encoded(_envelope(session, _append("")))
        fits = _append("x" * (65_536 - len(empty)))
        too_big = _append("x" * (65_536 - len(empty) + 1))

        refused = await api.send_interaction(session["id"], too_big)

        problem = assert_problem(refused, 413, "payload_too_large")
        assert problem["limit"] == 65_536
        assert problem["size"] == 65_537
        assert simulator.sim.call_log(OPERATION) == []

        accepted = await api.send_interaction(session["id"], fits)
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["size_bytes"] == 65_536

    async def test_a_conversation_tavus_ended_unseen_is_409_and_the_session_ends(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        api, session = await live_session(palisade, simulator)
        # The shutdown webhook is lost: only Tavus knows the conversation is over.
        simulator.sim.add_fault("webhook", DropFault())
        simulator.sim.shutdown_conversation(session["conversation_id"], "max_call_duration reached")

        response = await api.send_interaction(session["id"], _append("anyone?"))

        assert_problem(response, 409, "session_not_active")
        [logged] = await interaction_events(api, session["id"])
        assert logged["payload"]["outcome"] == "conversation_ended"
        assert logged["payload"]["tavus_status"] == 400

        async def ended() -> bool:
            status: str = (await api.get_session(session["id"])).json()["status"]
            return status == "ended"

        # Palisade checks with Tavus at once rather than at its next poll.
        await until(ended, within=5, message="the session ended")


class TestTavusDelivery:
    async def test_a_429_is_retried(self, palisade: Palisade, simulator: SimulatorHandle) -> None:
        api, session = await live_session(palisade, simulator)
        simulator.sim.add_fault(OPERATION, ErrorFault(preset="rate_limited", times=1))

        response = await api.send_interaction(session["id"], _append("after a wait"))

        assert response.status_code == 202, response.text
        assert sent_statuses(simulator) == [429, 200]
        assert conversation(simulator, session)["conversational_context"] == "Ana.\nafter a wait"

    async def test_a_502_is_retried(self, palisade: Palisade, simulator: SimulatorHandle) -> None:
        api, session = await live_session(palisade, simulator)
        simulator.sim.add_fault(OPERATION, ErrorFault(preset="bad_gateway", times=1))

        response = await api.send_interaction(session["id"], _append("once"))

        assert response.status_code == 202, response.text
        assert sent_statuses(simulator) == [502, 200]
        assert conversation(simulator, session)["conversational_context"] == "Ana.\nonce"

    async def test_a_504_on_an_append_is_not_resent_and_the_caller_decides(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        api, session = await live_session(palisade, simulator)
        simulator.sim.add_fault(
            OPERATION, ErrorFault(preset="gateway_timeout", apply_before_error=True, times=1)
        )

        response = await api.send_interaction(session["id"], _append("maybe"))

        problem = assert_problem(response, 504, "interaction_outcome_unknown")
        assert problem["resend_safe"] is False
        assert sent_statuses(simulator) == [504]
        # Tavus did take it: resending blindly would have appended it twice.
        assert conversation(simulator, session)["conversational_context"] == "Ana.\nmaybe"
        [logged] = await interaction_events(api, session["id"])
        assert logged["payload"]["outcome"] == "outcome_unknown"
        assert logged["payload"]["tavus_status"] == 504

    async def test_a_504_on_an_overwrite_is_resent(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        api, session = await live_session(palisade, simulator)
        simulator.sim.add_fault(
            OPERATION, ErrorFault(preset="gateway_timeout", apply_before_error=True, times=1)
        )

        response = await api.send_interaction(session["id"], _overwrite("same either way"))

        assert response.status_code == 202, response.text
        assert sent_statuses(simulator) == [504, 200]
        assert conversation(simulator, session)["conversational_context"] == "same either way"

    async def test_502s_that_never_end_are_502_and_nothing_was_delivered(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        api, session = await live_session(palisade, simulator)
        simulator.sim.add_fault(OPERATION, ErrorFault(preset="bad_gateway"))

        response = await api.send_interaction(session["id"], _append("never"))

        problem = assert_problem(response, 502, "upstream_error")
        assert problem["delivered"] is False
        assert sent_statuses(simulator) == [502, 502, 502]
        assert conversation(simulator, session)["app_messages"] == []
        [logged] = await interaction_events(api, session["id"])
        assert logged["payload"]["outcome"] == "not_delivered"

    async def test_tavus_rate_limit_that_lasts_is_429_with_retry_after(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        api, session = await live_session(palisade, simulator)
        simulator.sim.add_fault(OPERATION, ErrorFault(preset="rate_limited"))

        response = await api.send_interaction(session["id"], _append("never"))

        assert_problem(response, 429, "interaction_rate_limited")
        assert int(response.headers["retry-after"]) >= 1
        assert sent_statuses(simulator) == [429, 429, 429]


class TestPalisadeRate:
    async def test_palisade_holds_back_what_tavus_would_refuse(
        self, palisade_factory: Any, simulator: SimulatorHandle
    ) -> None:
        palisade = await palisade_factory(PALISADE_INTERACTIONS_PER_MINUTE=4)
        api, session = await live_session(palisade, simulator)

        first = await api.send_interaction(session["id"], _append("one"))
        second = await api.send_interaction(session["id"], _append("two"))

        assert first.status_code == 202, first.text
        assert_problem(second, 429, "interaction_rate_limited")
        assert int(second.headers["retry-after"]) >= 1
        # Refused before Tavus: it never saw the second one.
        assert sent_statuses(simulator) == [200]

    async def test_each_conversation_has_its_own_allowance(
        self, palisade_factory: Any, simulator: SimulatorHandle
    ) -> None:
        palisade = await palisade_factory(PALISADE_INTERACTIONS_PER_MINUTE=4)
        key, _ = await setup_tenant(palisade)
        api = palisade.api_as(key)
        sessions = [(await start(palisade, key, {"profile": "coach"})).json() for _ in range(2)]

        for session in sessions:
            response = await api.send_interaction(session["id"], _append("one each"))
            assert response.status_code == 202, response.text


def _envelope(session: dict[str, Any], body: InteractionCreate) -> dict[str, Any]:
    return {
        "message_type": "conversation",
        "event_type": body["event_type"],
        "conversation_id": session["conversation_id"],
        "properties": body.get("properties", {}),
    }


def _encoded(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
