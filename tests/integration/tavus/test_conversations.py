"""Conversation endpoints: the real client against the simulator's /v2/conversations."""

from __future__ import annotations

import httpx
import pytest

from app.tavus.client import TavusClient
from app.tavus.errors import TavusInvalidRequest, TavusNotFound
from app.tavus.models import Conversation, ConversationEvent
from tests.integration.tavus.conftest import (
    API_KEY,
    ClientFactory,
    conversation_body,
    pal_body,
    statuses,
)
from tests.support.stack import FACE_ID, SimulatorHandle
from tests.support.wait import until

OTHER_FACE_ID = "r0000000000b"


async def _pal_id(tavus: TavusClient, name: str = "Host") -> str:
    return (await tavus.create_pal(pal_body(name))).pal_id


async def _faceless_pal_id(http: httpx.AsyncClient, simulator: SimulatorHandle) -> str:
    # /v2/pals insists on default_face_id, so only a legacy persona can lack one.
    response = await http.post(
        f"{simulator.url}/v2/personas",
        headers={"x-api-key": API_KEY},
        json={"persona_name": "Faceless", "system_prompt": "You have no face."},
    )
    assert response.status_code == 200, response.text
    pal_id: str = response.json()["persona_id"]
    return pal_id


def _event_types(conversation: Conversation) -> list[str]:
    return [event.event_type for event in conversation.events or []]


def _event(conversation: Conversation, event_type: str) -> ConversationEvent:
    return next(e for e in conversation.events or [] if e.event_type == event_type)


async def test_create_sends_the_documented_body_and_reads_the_reply(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    pal_id = await _pal_id(tavus)
    body = conversation_body(
        pal_id,
        "session-1",
        callback_url="https://palisade.example/hooks/tok",
        conversational_context="The user is on the pricing page.",
        custom_greeting="Welcome back!",
        audio_only=False,
        memory_stores=["anna"],
        document_retrieval_strategy="quality",
        require_auth=True,
        max_participants=2,
        properties={
            "max_call_duration": 600,
            "participant_left_timeout": 10,
            "participant_absent_timeout": 120,
            "enable_recording": False,
            "languages": ["en"],
        },
    )

    created = await tavus.create_conversation(body)

    record = simulator.sim.conversation(created.conversation_id)
    assert record.request == body.model_dump(mode="json", exclude_none=True)
    assert record.account == API_KEY
    assert record.face_id == FACE_ID
    assert (record.max_call_duration, record.participant_absent_timeout) == (600, 120)
    assert (record.participant_left_timeout, record.max_participants) == (10, 2)
    assert created.status == "active"
    assert created.is_active
    assert not created.is_terminal
    assert created.conversation_name == "session-1"
    assert created.conversation_url == f"https://tavus.daily.co/{created.conversation_id}"
    assert created.callback_url == "https://palisade.example/hooks/tok"
    assert created.meeting_token
    assert created.meeting_token.count(".") == 2
    assert created.created_at is not None

    fetched = await tavus.get_conversation(created.conversation_id)
    assert fetched.conversation_id == created.conversation_id
    assert fetched.pal_id == pal_id
    assert fetched.face_id == FACE_ID
    assert fetched.status == "active"
    assert fetched.created_at == created.created_at
    # The token is handed out once, at create time.
    assert fetched.meeting_token is None
    assert fetched.events is None


async def test_explicit_face_id_overrides_the_pal_default(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    pal_id = await _pal_id(tavus)

    created = await tavus.create_conversation(conversation_body(pal_id, face_id=OTHER_FACE_ID))

    assert (await tavus.get_conversation(created.conversation_id)).face_id == OTHER_FACE_ID
    assert simulator.sim.conversation(created.conversation_id).face_id == OTHER_FACE_ID


async def test_face_id_is_required_when_the_pal_has_no_default(
    tavus: TavusClient, http: httpx.AsyncClient, simulator: SimulatorHandle
) -> None:
    pal_id = await _faceless_pal_id(http, simulator)

    with pytest.raises(TavusInvalidRequest) as caught:
        await tavus.create_conversation(conversation_body(pal_id, "no-face"))
    with_face = await tavus.create_conversation(
        conversation_body(pal_id, "with-face", face_id=OTHER_FACE_ID)
    )

    assert caught.value.status == 400
    assert caught.value.message == "face_id is required"
    assert not caught.value.may_have_taken_effect
    assert statuses(simulator.sim.call_log("conversation.create")) == [400, 200]
    assert [c["conversation_name"] for c in simulator.conversations()] == ["with-face"]
    assert with_face.is_active


async def test_unknown_pal_is_not_found(tavus: TavusClient, simulator: SimulatorHandle) -> None:
    with pytest.raises(TavusNotFound) as caught:
        await tavus.create_conversation(conversation_body("p0123456789a"))

    assert caught.value.message == "Invalid pal_id"
    assert simulator.conversations() == []


async def test_verbose_get_reports_the_face_joining_and_the_shutdown(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    pal_id = await _pal_id(tavus)
    created = await tavus.create_conversation(
        conversation_body(pal_id, "verbose", custom_greeting="Hello from the coach.")
    )
    conversation_id = created.conversation_id

    assert (await tavus.get_conversation(conversation_id, verbose=True)).events == []

    simulator.sim.join_face(conversation_id)
    joined = await tavus.get_conversation(conversation_id, verbose=True)
    assert _event_types(joined) == ["system.replica_joined"]
    assert _event(joined, "system.replica_joined").properties == {"replica_id": FACE_ID}
    assert joined.is_active

    simulator.sim.shutdown_conversation(conversation_id, "participant_left_timeout reached")
    ended = await tavus.get_conversation(conversation_id, verbose=True)
    assert ended.status == "ended"
    assert ended.is_terminal
    assert _event_types(ended) == [
        "system.replica_joined",
        "system.shutdown",
        "application.transcription_ready",
    ]
    shutdown = _event(ended, "system.shutdown")
    assert shutdown.properties["shutdown_reason"] == "participant_left_timeout reached"
    assert shutdown.message_type == "system"
    assert shutdown.timestamp is not None
    transcript = _event(ended, "application.transcription_ready").properties["transcript"]
    assert transcript == [
        {"role": "system", "content": "You are a calm coach."},
        {"role": "assistant", "content": "Hello from the coach."},
    ]
    # Verbose is opt-in: a plain GET still carries no events.
    assert (await tavus.get_conversation(conversation_id)).events is None


async def test_an_error_shutdown_is_reported_as_terminal(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    created = await tavus.create_conversation(conversation_body(await _pal_id(tavus)))

    simulator.sim.shutdown_conversation(
        created.conversation_id, "internal error occurred at step 3", error=True
    )
    fetched = await tavus.get_conversation(created.conversation_id, verbose=True)

    assert fetched.status == "error"
    assert fetched.is_terminal
    assert not fetched.is_active
    assert "system.shutdown" in _event_types(fetched)


async def test_simulated_time_runs_the_lifecycle(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    simulator.sim.configure(replica_join_delay_s=2)
    created = await tavus.create_conversation(
        conversation_body(await _pal_id(tavus), properties={"max_call_duration": 60})
    )

    simulator.sim.advance(2)
    joined = await tavus.get_conversation(created.conversation_id, verbose=True)
    simulator.sim.advance(58)
    ended = await tavus.get_conversation(created.conversation_id, verbose=True)

    assert _event_types(joined) == ["system.replica_joined"]
    assert ended.status == "ended"
    shutdown = _event(ended, "system.shutdown")
    assert shutdown.properties["shutdown_reason"] == "max_call_duration reached"
    assert ended.created_at is not None
    assert shutdown.timestamp is not None
    assert (shutdown.timestamp - ended.created_at).total_seconds() == pytest.approx(60)


async def test_time_scale_runs_the_lifecycle_in_real_time(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    # 600 simulated seconds per real second: the face joins after about 2 ms and the
    # 120 s call ends after about 0.2 s.
    simulator.sim.configure(time_scale=600, replica_join_delay_s=1)
    created = await tavus.create_conversation(
        conversation_body(await _pal_id(tavus), properties={"max_call_duration": 120})
    )

    async def ended() -> Conversation | None:
        fetched = await tavus.get_conversation(created.conversation_id, verbose=True)
        return fetched if fetched.is_terminal else None

    conversation = await until(ended, within=5, message="conversation ended by its timer")

    assert _event_types(conversation) == [
        "system.replica_joined",
        "system.shutdown",
        "application.transcription_ready",
    ]
    reason = _event(conversation, "system.shutdown").properties["shutdown_reason"]
    assert reason == "max_call_duration reached"


async def test_list_filters_by_status_and_pages(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    pal_id = await _pal_id(tavus)
    active = [
        (await tavus.create_conversation(conversation_body(pal_id, f"live-{n}"))).conversation_id
        for n in range(3)
    ]
    born_ended = [
        (
            await tavus.create_conversation(conversation_body(pal_id, f"test-{n}", test_mode=True))
        ).conversation_id
        for n in range(2)
    ]
    await tavus.end_conversation(active[0])

    live = await tavus.list_conversations(status="active")
    first = await tavus.list_conversations(status="ended", page=1, limit=2)
    second = await tavus.list_conversations(status="ended", page=2, limit=2)
    everything = await tavus.list_conversations(limit=4)

    assert [c.conversation_id for c in live.data] == [active[2], active[1]]
    assert live.total_count == 2
    assert all(c.is_active for c in live.data)
    ended_ids = [c.conversation_id for c in [*first.data, *second.data]]
    # Newest first by creation, whatever order they ended in.
    assert ended_ids == [born_ended[1], born_ended[0], active[0]]
    assert (first.total_count, second.total_count) == (3, 3)
    assert all(c.status == "ended" for c in [*first.data, *second.data])
    assert len(everything.data) == 4
    assert everything.total_count == 5

    with pytest.raises(TavusInvalidRequest) as caught:
        await tavus.list_conversations(status="finished")
    assert caught.value.status == 400
    assert statuses(simulator.sim.call_log("conversation.list"))[-1] == 400


async def test_iter_conversations_crosses_pages(
    make_client: ClientFactory, simulator: SimulatorHandle
) -> None:
    tavus = make_client(page_size=2)
    pal_id = await _pal_id(tavus)
    ids = {
        (await tavus.create_conversation(conversation_body(pal_id, f"c-{n}"))).conversation_id
        for n in range(5)
    }

    seen = [c.conversation_id async for c in tavus.iter_conversations(status="active")]

    assert sorted(seen) == sorted(ids)
    assert len(simulator.sim.call_log("conversation.list")) == 3


async def test_end_frees_the_slot_and_ending_twice_is_harmless(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    simulator.sim.configure(max_concurrent_conversations=1)
    pal_id = await _pal_id(tavus)
    created = await tavus.create_conversation(conversation_body(pal_id, "first"))

    await tavus.end_conversation(created.conversation_id)
    await tavus.end_conversation(created.conversation_id)
    replacement = await tavus.create_conversation(conversation_body(pal_id, "second"))

    fetched = await tavus.get_conversation(created.conversation_id, verbose=True)
    assert fetched.status == "ended"
    assert _event_types(fetched).count("system.shutdown") == 1
    reason = _event(fetched, "system.shutdown").properties["shutdown_reason"]
    assert reason == "end_conversation_endpoint_hit"
    record = simulator.sim.conversation(created.conversation_id)
    assert record.end_calls == 2
    assert not record.holds_slot
    assert statuses(simulator.sim.call_log("conversation.end")) == [200, 200]
    assert replacement.is_active


async def test_end_and_get_of_an_unknown_conversation_are_not_found(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    with pytest.raises(TavusNotFound) as ending:
        await tavus.end_conversation("c0123456789abcde")
    with pytest.raises(TavusNotFound) as getting:
        await tavus.get_conversation("c0123456789abcde")

    assert ending.value.message == getting.value.message == "Invalid conversation_id"
    assert statuses(simulator.sim.call_log("conversation.end")) == [400]
    assert statuses(simulator.sim.call_log("conversation.get")) == [400]


async def test_test_mode_is_born_ended_without_a_slot(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    # No slots at all: a test-mode conversation must not need one.
    simulator.sim.configure(max_concurrent_conversations=0)
    pal_id = await _pal_id(tavus)

    created = await tavus.create_conversation(conversation_body(pal_id, "dry-run", test_mode=True))
    fetched = await tavus.get_conversation(created.conversation_id, verbose=True)

    assert created.status == "ended"
    assert created.is_terminal
    assert fetched.status == "ended"
    assert fetched.events == []
    record = simulator.sim.conversation(created.conversation_id)
    assert record.test_mode
    assert not record.holds_slot
    assert record.face_joined_at is None


async def test_find_conversation_by_name(
    make_client: ClientFactory, simulator: SimulatorHandle
) -> None:
    tavus = make_client(page_size=2)
    pal_id = await _pal_id(tavus)
    ended = await tavus.create_conversation(conversation_body(pal_id, "session-41"))
    for n in range(3):
        await tavus.create_conversation(conversation_body(pal_id, f"noise-{n}"))
    simulator.sim.advance(5)
    live = await tavus.create_conversation(conversation_body(pal_id, "session-42"))
    await tavus.end_conversation(ended.conversation_id)

    found_live = await tavus.find_conversation_by_name("session-42")
    found_ended = await tavus.find_conversation_by_name("session-41")
    missing = await tavus.find_conversation_by_name("session-43")

    assert found_live is not None
    assert found_live.conversation_id == live.conversation_id
    # A conversation that already ended is found in the ended listing, read second.
    assert found_ended is not None
    assert found_ended.conversation_id == ended.conversation_id
    assert missing is None
