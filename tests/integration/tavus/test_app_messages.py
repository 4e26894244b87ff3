"""send_app_message against the simulator's send-app-message: what reaches the
conversation, and how many times each interaction was sent (the simulator's call log)."""

from __future__ import annotations

from typing import Any

import pytest

from app.tavus.client import TavusClient
from app.tavus.errors import (
    TavusConversationEnded,
    TavusNotFound,
    TavusPayloadTooLarge,
    TavusRateLimited,
    TavusServerError,
)
from app.tavus.models import Interaction
from tavus_simulator import ErrorFault
from tests.integration.tavus.conftest import conversation_body, pal_body, statuses
from tests.support.stack import SimulatorHandle

OPERATION = "conversation.send_app_message"


async def _live(tavus: TavusClient, simulator: SimulatorHandle, context: str = "") -> str:
    pal = await tavus.create_pal(pal_body())
    body = conversation_body(pal.pal_id, "relay", conversational_context=context or None)
    conversation_id = (await tavus.create_conversation(body)).conversation_id
    simulator.sim.join_face(conversation_id)
    return conversation_id


def _state(simulator: SimulatorHandle, conversation_id: str) -> dict[str, Any]:
    return simulator.sim.conversation(conversation_id).control_json()


def _delivered(simulator: SimulatorHandle, conversation_id: str) -> list[tuple[str, str]]:
    return [
        (m["event_type"], m["status"]) for m in _state(simulator, conversation_id)["app_messages"]
    ]


def _append(context: str) -> Interaction:
    return Interaction(
        event_type="conversation.append_llm_context", properties={"context": context}
    )


def _overwrite(context: str) -> Interaction:
    return Interaction(
        event_type="conversation.overwrite_llm_context", properties={"context": context}
    )


async def test_every_interaction_reaches_the_conversation(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    conversation_id = await _live(tavus, simulator, "Ana, first visit.")
    sent = [
        _append("She is on the pricing page."),
        Interaction(event_type="conversation.respond", properties={"text": "What is 2+2?"}),
        Interaction(
            event_type="conversation.echo", properties={"modality": "text", "text": "Hello"}
        ),
        Interaction(event_type="conversation.interrupt"),
        Interaction(
            event_type="conversation.sensitivity",
            properties={
                "participant_pause_sensitivity": "high",
                "participant_interrupt_sensitivity": "low",
            },
        ),
    ]

    for interaction in sent:
        await tavus.send_app_message(conversation_id, interaction)

    state = _state(simulator, conversation_id)
    assert state["conversational_context"] == "Ana, first visit.\nShe is on the pricing page."
    assert _delivered(simulator, conversation_id) == [(i.event_type, "delivered") for i in sent]

    await tavus.send_app_message(conversation_id, _overwrite("Start over."))

    assert _state(simulator, conversation_id)["conversational_context"] == "Start over."


async def test_a_504_on_an_append_is_not_sent_again(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    conversation_id = await _live(tavus, simulator)
    # Tavus took it and then timed out: the case its page warns about.
    simulator.sim.add_fault(
        OPERATION, ErrorFault(preset="gateway_timeout", apply_before_error=True, times=1)
    )

    with pytest.raises(TavusServerError) as caught:
        await tavus.send_app_message(conversation_id, _append("once"))

    assert caught.value.may_have_taken_effect
    assert statuses(simulator.sim.call_log(OPERATION)) == [504]
    assert _state(simulator, conversation_id)["conversational_context"] == "once"


async def test_a_504_on_an_overwrite_is_sent_again(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    conversation_id = await _live(tavus, simulator)
    simulator.sim.add_fault(
        OPERATION, ErrorFault(preset="gateway_timeout", apply_before_error=True, times=1)
    )

    await tavus.send_app_message(conversation_id, _overwrite("the same either way"))

    assert statuses(simulator.sim.call_log(OPERATION)) == [504, 200]
    assert _state(simulator, conversation_id)["conversational_context"] == "the same either way"


async def test_a_502_is_sent_again_and_delivered_once(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    conversation_id = await _live(tavus, simulator)
    simulator.sim.add_fault(OPERATION, ErrorFault(preset="bad_gateway", times=1))

    await tavus.send_app_message(conversation_id, _append("once"))

    assert statuses(simulator.sim.call_log(OPERATION)) == [502, 200]
    assert _state(simulator, conversation_id)["conversational_context"] == "once"


async def test_a_429_is_sent_again(tavus: TavusClient, simulator: SimulatorHandle) -> None:
    conversation_id = await _live(tavus, simulator)
    simulator.sim.add_fault(OPERATION, ErrorFault(preset="rate_limited", times=1))

    await tavus.send_app_message(conversation_id, _append("after the limit"))

    assert statuses(simulator.sim.call_log(OPERATION)) == [429, 200]
    assert _state(simulator, conversation_id)["conversational_context"] == "after the limit"


async def test_tavus_own_rate_limit_ends_the_retries_within_the_bound(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    conversation_id = await _live(tavus, simulator)
    simulator.sim.configure(app_message_rate_limit=1)
    await tavus.send_app_message(conversation_id, _append("first"))

    with pytest.raises(TavusRateLimited):
        await tavus.send_app_message(conversation_id, _append("second"))

    assert statuses(simulator.sim.call_log(OPERATION)) == [200, 429, 429, 429]
    assert _state(simulator, conversation_id)["conversational_context"] == "first"


async def test_an_ended_conversation_refuses(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    conversation_id = await _live(tavus, simulator)
    await tavus.end_conversation(conversation_id)

    with pytest.raises(TavusConversationEnded):
        await tavus.send_app_message(conversation_id, _append("too late"))

    assert statuses(simulator.sim.call_log(OPERATION)) == [400]


async def test_a_deleted_room_refuses(tavus: TavusClient, simulator: SimulatorHandle) -> None:
    conversation_id = await _live(tavus, simulator)
    simulator.sim.shutdown_conversation(conversation_id, "daily_room_has_been_deleted")

    with pytest.raises(TavusConversationEnded):
        await tavus.send_app_message(conversation_id, _append("too late"))

    assert statuses(simulator.sim.call_log(OPERATION)) == [410]


async def test_an_unknown_conversation_is_not_found(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    with pytest.raises(TavusNotFound):
        await tavus.send_app_message("c0000000000000", _append("anyone?"))


async def test_tavus_own_size_limit_is_recognised(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    conversation_id = await _live(tavus, simulator)
    simulator.sim.configure(app_message_max_bytes=200)

    with pytest.raises(TavusPayloadTooLarge):
        await tavus.send_app_message(conversation_id, _append("x" * 300))

    assert statuses(simulator.sim.call_log(OPERATION)) == [413]
    assert _state(simulator, conversation_id)["app_messages"] == []
