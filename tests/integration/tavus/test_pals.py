"""PAL endpoints: the real client against the simulator's /v2/pals over a socket."""

from __future__ import annotations

from datetime import UTC

import pytest

from app.tavus.client import TavusClient
from app.tavus.errors import TavusNotFound
from app.tavus.models import PalCreate
from tests.integration.tavus.conftest import (
    API_KEY,
    ClientFactory,
    Wire,
    pal_body,
    statuses,
)
from tests.support.stack import FACE_ID, SimulatorHandle

STOCK_PAL_ID = "pb87e71797da"


def _documented_pal() -> PalCreate:
    return PalCreate.model_validate(
        {
            "pal_name": "Life Coach",
            "default_face_id": FACE_ID,
            "system_prompt": "You are a calm life coach.",
            "pipeline_mode": "full",
            "context": "Legacy context.",
            "document_ids": ["d1234567890"],
            "document_tags": ["onboarding"],
            "objectives_id": "o12345",
            "guardrails_id": "g12345",
            "languages": ["en", "de"],
            "disclosure_type": "auto",
            "layers": {
                "llm": {
                    "model": "coach-llm",
                    "base_url": "https://llm.example/v1",
                    "api_key": "llm-secret",
                    "headers": {"x-team": "coaching"},
                    "extra_body": {"temperature": 0.3},
                    "speculative_inference": True,
                },
                "tts": {
                    "tts_engine": "elevenlabs",
                    "api_key": "tts-secret",
                    "external_voice_id": "voice-a",
                    "voice_settings": {"speed": 1.1, "stability": 0.4},
                },
                "stt": {"stt_engine": "tavus-parakeet"},
                "perception": {"perception_model": "raven-1", "emotion_recognition": "full"},
                "conversational_flow": {
                    "turn_detection_model": "sparrow-1",
                    "turn_taking_patience": "high",
                    "pal_interruptibility": "low",
                },
            },
        }
    )


async def test_create_sends_the_documented_body_and_get_returns_it(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    body = _documented_pal()

    created = await tavus.create_pal(body)
    fetched = await tavus.get_pal(created.pal_id)

    wire_body = body.model_dump(mode="json", exclude_none=True)
    record = simulator.sim.pal(created.pal_id)
    assert record.request == wire_body
    # Secrets are masked in reprs but must reach Tavus in full.
    assert record.request["layers"]["llm"]["api_key"] == "llm-secret"
    assert record.account == API_KEY

    assert created.pal_name == "Life Coach"
    assert created.conferencing_email
    assert created.conferencing_email.endswith("@tavusinvite.com")
    assert created.created_at is not None
    assert created.created_at.tzinfo is UTC

    assert fetched.pal_id == created.pal_id
    assert fetched.pal_name == "Life Coach"
    assert fetched.default_face_id == FACE_ID
    assert fetched.system_prompt == "You are a calm life coach."
    assert fetched.pipeline_mode == "full"
    assert fetched.context == "Legacy context."
    assert fetched.document_ids == ["d1234567890"]
    assert fetched.document_tags == ["onboarding"]
    assert fetched.objectives_id == "o12345"
    assert fetched.guardrails_id == "g12345"
    assert fetched.conferencing_email == created.conferencing_email
    assert fetched.layers == wire_body["layers"]
    assert fetched.created_at == created.created_at
    assert fetched.updated_at is not None


async def test_echo_pal_needs_no_system_prompt(tavus: TavusClient) -> None:
    created = await tavus.create_pal(
        PalCreate(default_face_id=FACE_ID, pal_name="Echo", pipeline_mode="echo")
    )

    fetched = await tavus.get_pal(created.pal_id)

    assert fetched.pipeline_mode == "echo"
    assert fetched.system_prompt is None


@pytest.mark.parametrize("shape", ["flat", "wrapped"])
async def test_get_reads_both_response_shapes(
    tavus: TavusClient, simulator: SimulatorHandle, shape: str
) -> None:
    created = await tavus.create_pal(pal_body("Shape"))
    simulator.sim.configure(pal_get_shape=shape)

    fetched = await tavus.get_pal(created.pal_id)

    assert fetched.pal_id == created.pal_id
    assert fetched.pal_name == "Shape"
    assert fetched.default_face_id == FACE_ID


async def test_get_unknown_is_not_found_and_not_retried(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    with pytest.raises(TavusNotFound) as caught:
        await tavus.get_pal("p0123456789a")

    assert caught.value.status == 400
    assert caught.value.message == "Invalid pal_id"
    assert statuses(simulator.sim.call_log("pal.get")) == [400]


async def test_list_pages_through_user_pals_newest_first(tavus: TavusClient, wire: Wire) -> None:
    ids = [(await tavus.create_pal(pal_body(f"Coach {n}"))).pal_id for n in range(5)]
    newest_first = list(reversed(ids))

    first = await tavus.list_pals(page=1, limit=2, pal_type="user")
    second = await tavus.list_pals(page=2, limit=2, pal_type="user")
    last = await tavus.list_pals(page=3, limit=2, pal_type="user")
    beyond = await tavus.list_pals(page=4, limit=2, pal_type="user")

    assert [p.pal_id for p in first.data] == newest_first[:2]
    assert [p.pal_id for p in second.data] == newest_first[2:4]
    assert [p.pal_id for p in last.data] == newest_first[4:]
    assert beyond.data == []
    assert {first.total_count, second.total_count, last.total_count} == {5}
    assert (first.page, first.limit) == (1, 2)
    queries = [dict(r.url.params) for r in wire.sent if r.method == "GET"]
    assert queries == [
        {"page": str(page), "limit": "2", "pal_type": "user"} for page in (1, 2, 3, 4)
    ]


async def test_list_filters_by_pal_type(tavus: TavusClient) -> None:
    mine = await tavus.create_pal(pal_body("Mine"))

    system = await tavus.list_pals(pal_type="system")
    user = await tavus.list_pals(pal_type="user")
    everything = await tavus.list_pals()

    assert [p.pal_id for p in system.data] == [STOCK_PAL_ID]
    assert [p.pal_id for p in user.data] == [mine.pal_id]
    assert {p.pal_id for p in everything.data} == {STOCK_PAL_ID, mine.pal_id}
    assert everything.total_count == 2


@pytest.mark.parametrize(("count", "requests"), [(5, 3), (4, 3), (1, 1)])
async def test_iter_pals_visits_every_page_once(
    tavus: TavusClient, simulator: SimulatorHandle, count: int, requests: int
) -> None:
    ids = {(await tavus.create_pal(pal_body(f"Iter {n}"))).pal_id for n in range(count)}

    seen = [pal.pal_id async for pal in tavus.iter_pals(pal_type="user", limit=2)]

    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(set(seen))
    # A short page that reaches total_count ends the scan; a full page always gets a
    # follow-up, which is empty when the count is a multiple of the page size.
    assert len(simulator.sim.call_log("pal.list")) == requests


async def test_delete_removes_it_and_a_second_delete_is_not_found(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    pal = await tavus.create_pal(pal_body("Ephemeral"))

    await tavus.delete_pal(pal.pal_id)
    with pytest.raises(TavusNotFound) as again:
        await tavus.delete_pal(pal.pal_id)
    with pytest.raises(TavusNotFound):
        await tavus.get_pal(pal.pal_id)

    assert again.value.message == "Invalid pal_id"
    assert not again.value.may_have_taken_effect
    record = simulator.sim.pal(pal.pal_id)
    assert record.deleted_at is not None
    assert record.delete_calls == 2
    # The not-found answer ends the call: no retries of an idempotent write on a 400.
    assert statuses(simulator.sim.call_log("pal.delete")) == [204, 400]
    assert (await tavus.list_pals(pal_type="user")).data == []


async def test_stock_pal_cannot_be_deleted(tavus: TavusClient) -> None:
    with pytest.raises(TavusNotFound):
        await tavus.delete_pal(STOCK_PAL_ID)

    assert (await tavus.get_pal(STOCK_PAL_ID)).pal_name == "Tavus Stock PAL"


async def test_find_pal_by_name_scans_every_page(
    make_client: ClientFactory, simulator: SimulatorHandle
) -> None:
    tavus = make_client(page_size=2)
    wanted = await tavus.create_pal(pal_body("Wanted"))
    for n in range(4):
        await tavus.create_pal(pal_body(f"Other {n}"))

    found = await tavus.find_pal_by_name("Wanted")
    before = len(simulator.sim.call_log("pal.list"))
    missing = await tavus.find_pal_by_name("Nobody")

    assert found is not None
    assert found.pal_id == wanted.pal_id
    assert missing is None
    # Absence over three pages is read twice: one scan of several pages is not one
    # answer from the server.
    assert len(simulator.sim.call_log("pal.list")) - before == 6


async def test_find_pal_by_name_reads_only_the_accounts_own_pals(tavus: TavusClient) -> None:
    # A stock PAL's name is no tag of Palisade's: only user PALs are looked through.
    assert await tavus.find_pal_by_name("Tavus Stock PAL") is None
