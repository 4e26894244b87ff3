"""Every field the client types is one Tavus documents for that endpoint, under its name;
every field it does not type is passed through as given.

The names below are transcribed from tavus-api.md (§2 POST /v2/pals and its layer
fields, §3 POST /v2/conversations and ``properties.*``). A model field missing from
these lists, or an undeclared open-ended object, fails the test.
"""

from __future__ import annotations

import types
from typing import Annotated, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from app.tavus.client import TavusClient
from app.tavus.models import (
    ConversationalFlowLayer,
    ConversationCreate,
    ConversationProperties,
    LLMLayer,
    PalCreate,
    PalLayers,
    PerceptionLayer,
    STTLayer,
    TransportLayer,
    TTSLayer,
    VoiceSettings,
)
from tests.unit.tavus.fake_tavus import FakeTavus, conversation_json, ok

DOCUMENTED: dict[str, set[str]] = {
    "POST /v2/pals": {
        "default_face_id",
        "pal_name",
        "system_prompt",
        "pipeline_mode",
        "context",
        "document_ids",
        "document_tags",
        "objectives_id",
        "guardrails_id",
        "languages",
        "disclosure_type",
        "verbal_disclosure",
        "visual_disclosure",
        "layers",
    },
    "POST /v2/pals.layers": {
        "perception",
        "stt",
        "conversational_flow",
        "llm",
        "tts",
        "conferencing",
        "transport",
    },
    "POST /v2/pals.layers.llm": {
        "model",
        "base_url",
        "api_key",
        "headers",
        "extra_body",
        "default_query",
        "speculative_inference",
        "tools",
    },
    "POST /v2/pals.layers.tts": {
        "tts_engine",
        "api_key",
        "external_voice_id",
        "tts_model_name",
        "tts_emotion_control",
        "voice_settings",
        "pronunciation_dictionary_id",
        "voice_id",
    },
    "POST /v2/pals.layers.tts.voice_settings": {
        "speed",
        "emotion",
        "stability",
        "similarity_boost",
        "style",
        "use_speaker_boost",
    },
    "POST /v2/pals.layers.stt": {"stt_engine", "hotwords"},
    "POST /v2/pals.layers.perception": {
        "perception_model",
        "visual_awareness_queries",
        "perception_analysis_queries",
        "visual_tool_prompt",
        "emotion_recognition",
    },
    "POST /v2/pals.layers.conversational_flow": {
        "turn_detection_model",
        "turn_taking_patience",
        "pal_interruptibility",
        "voice_isolation",
        "idle_engagement",
    },
    "POST /v2/pals.layers.transport": {"transport_type"},
    "POST /v2/conversations": {
        "pal_id",
        "face_id",
        "callback_url",
        "conversation_name",
        "conversational_context",
        "custom_greeting",
        "enable_dynamic_greeting",
        "audio_only",
        "memory_stores",
        "document_ids",
        "document_tags",
        "document_retrieval_strategy",
        "test_mode",
        "require_auth",
        "max_participants",
        "policy",
        "properties",
    },
    "POST /v2/conversations.properties": {
        "max_call_duration",
        "participant_left_timeout",
        "participant_absent_timeout",
        "enable_recording",
        "enable_closed_captions",
        "apply_greenscreen",
        "language",
        "languages",
        "recording_storage",
        "daily_room",
    },
}

# Objects tavus-api.md documents without listing their keys; anything may go inside.
OPEN_ENDED = {
    "POST /v2/pals.layers.llm.headers",
    "POST /v2/pals.layers.llm.extra_body",
    "POST /v2/pals.layers.llm.default_query",
    "POST /v2/pals.layers.llm.tools",
    "POST /v2/conversations.properties.recording_storage",
}


def _nested_model(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _accepts_mapping(annotation: object) -> bool:
    origin = get_origin(annotation)
    if annotation is dict or origin is dict:
        return True
    if origin in (list, Union, types.UnionType, Annotated):
        return any(_accepts_mapping(arg) for arg in get_args(annotation))
    # JsonValue and similar aliases can hold objects.
    return "JsonValue" in repr(annotation)


def _check_model(model: type[BaseModel], path: str, visited: list[str]) -> None:
    visited.append(path)
    assert model.model_config.get("extra") == "allow", f"{path} must pass unknown keys through"
    documented = DOCUMENTED[path]
    for name, field in model.model_fields.items():
        where = f"{path}.{name}"
        assert name in documented, f"{where} is not documented for this endpoint"
        assert field.alias in (None, name), f"{where} is sent under another name"
        assert field.serialization_alias in (None, name), f"{where} is sent under another name"
        nested = _nested_model(field.annotation)
        if nested is not None:
            _check_model(nested, where, visited)
        elif where not in OPEN_ENDED:
            assert not _accepts_mapping(field.annotation), f"{where} would send free-form keys"


def _check_sent(value: object, path: str) -> None:
    if path in OPEN_ENDED or not isinstance(value, dict):
        return
    unknown = set(value) - DOCUMENTED[path]
    assert not unknown, f"{path} sent undocumented {sorted(unknown)}"
    for key, child in value.items():
        _check_sent(child, f"{path}.{key}")


def _sent_key_sets(value: object, path: str, into: dict[str, set[str]]) -> None:
    if path in OPEN_ENDED or not isinstance(value, dict):
        return
    into[path] = set(value)
    for key, child in value.items():
        _sent_key_sets(child, f"{path}.{key}", into)


def _model_field_sets(model: type[BaseModel], path: str) -> dict[str, set[str]]:
    found = {path: set(model.model_fields)}
    for name, field in model.model_fields.items():
        nested = _nested_model(field.annotation)
        if nested is not None:
            found.update(_model_field_sets(nested, f"{path}.{name}"))
    return found


def full_pal_body() -> PalCreate:
    """A PAL body with every field the model has set, so the capture covers all of them."""
    return PalCreate(
        default_face_id="r90bbd427f71",
        pal_name="palisade-eph-1",
        system_prompt="You are a life coach.",
        pipeline_mode="full",
        context="legacy context",
        document_ids=["d1234567890"],
        document_tags=["faq"],
        objectives_id="o12345",
        guardrails_id="g12345",
        languages=["en"],
        disclosure_type="auto",
        verbal_disclosure="I am an AI.",
        visual_disclosure=True,
        layers=PalLayers(
            perception=PerceptionLayer(
                perception_model="raven-1",
                visual_awareness_queries=["Is the user smiling?"],
                perception_analysis_queries=["Was the user engaged?"],
                visual_tool_prompt="Use tools when you see a document.",
                emotion_recognition="auto",
            ),
            stt=STTLayer(stt_engine="tavus-advanced", hotwords="Roey"),
            conversational_flow=ConversationalFlowLayer(
                turn_detection_model="sparrow-1",
                turn_taking_patience="medium",
                pal_interruptibility="low",
                voice_isolation="auto",
                idle_engagement="off",
            ),
            llm=LLMLayer(
                model="my-model",
                base_url="https://llm.example/v1",
                api_key="sk-llm",
                headers={"X-Org": "acme"},
                extra_body={"temperature": 0.2},
                default_query={"api-version": "2024-06-01"},
                speculative_inference=True,
                tools=[{"type": "function", "function": {"name": "lookup"}}],
            ),
            tts=TTSLayer(
                tts_engine="elevenlabs",
                api_key="el-key",
                external_voice_id="voice-1",
                tts_model_name="eleven_turbo_v2",
                tts_emotion_control=False,
                voice_settings=VoiceSettings(
                    speed=1.0,
                    emotion=["positivity:high"],
                    stability=0.5,
                    similarity_boost=0.7,
                    style=0.1,
                    use_speaker_boost=True,
                ),
                pronunciation_dictionary_id="pd-1",
                voice_id="v-1",
            ),
            transport=TransportLayer(transport_type="livekit"),
        ),
    )


def full_conversation_body() -> ConversationCreate:
    return ConversationCreate(
        pal_id="pcb7a34da5fe",
        face_id="r90bbd427f71",
        callback_url="https://palisade.test/webhooks/tavus/s-1?token=t",
        conversation_name="palisade-s-1",
        conversational_context="The user is Anna.",
        custom_greeting="Hi Anna!",
        enable_dynamic_greeting=False,
        audio_only=False,
        memory_stores=["anna"],
        document_ids=["d1234567890"],
        document_tags=["faq"],
        document_retrieval_strategy="balanced",
        test_mode=True,
        require_auth=True,
        max_participants=2,
        policy="eu",
        properties=ConversationProperties(
            max_call_duration=600,
            participant_left_timeout=30,
            participant_absent_timeout=120,
            enable_recording=False,
            enable_closed_captions=True,
            apply_greenscreen=False,
            language="english",
            languages=["en"],
            recording_storage={"provider": "s3", "bucket": "rec"},
            daily_room="https://acme.daily.co/room",
        ),
    )


class TestModelFieldsAreDocumented:
    def test_pal_create(self) -> None:
        visited: list[str] = []
        _check_model(PalCreate, "POST /v2/pals", visited)

        # Every layer model was reached, so no nested object escaped the check.
        assert set(visited) == set(DOCUMENTED) - {"POST /v2/conversations"} - {
            "POST /v2/conversations.properties"
        }

    def test_conversation_create(self) -> None:
        visited: list[str] = []
        _check_model(ConversationCreate, "POST /v2/conversations", visited)

        assert visited == ["POST /v2/conversations", "POST /v2/conversations.properties"]

    def test_the_check_catches_an_undocumented_field(self) -> None:
        class Drifted(BaseModel):
            model_config = {"extra": "allow"}
            pal_id: str
            persona_id: str

        with pytest.raises(AssertionError, match="persona_id is not documented"):
            _check_model(Drifted, "POST /v2/conversations", [])


class TestBodiesSentOnTheWire:
    async def test_create_pal_sends_only_documented_names(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(ok({"pal_id": "pcb7a34da5fe", "pal_name": "palisade-eph-1"}))

        await client.create_pal(full_pal_body())

        sent = fake.body()
        _check_sent(sent, "POST /v2/pals")
        by_path: dict[str, set[str]] = {}
        _sent_key_sets(sent, "POST /v2/pals", by_path)
        # The body carried every field the models define, so the check saw them all.
        assert by_path == _model_field_sets(PalCreate, "POST /v2/pals")

    async def test_create_conversation_sends_only_documented_names(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(ok(conversation_json()))

        await client.create_conversation(full_conversation_body())

        sent = fake.body()
        _check_sent(sent, "POST /v2/conversations")
        by_path: dict[str, set[str]] = {}
        _sent_key_sets(sent, "POST /v2/conversations", by_path)
        assert by_path == _model_field_sets(ConversationCreate, "POST /v2/conversations")

    async def test_fields_tavus_added_reach_it_unchanged(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        # Documented since the models were written (tavus-api.md §5b), or not yet known.
        added = {
            "default_face_id": "r90bbd427f71",
            "system_prompt": "You are a life coach.",
            "brand_new_field": {"nested": [1, 2]},
            "layers": {
                "conferencing": {"username": "acme-anna"},
                "perception": {
                    "perception_model": "raven-1",
                    "visual_tools": [{"type": "function", "function": {"name": "see"}}],
                    "audio_tools": [{"type": "function", "function": {"name": "hear"}}],
                    "audio_tool_prompt": "Call hear when you hear a bell.",
                },
            },
        }
        fake.reply(ok({"pal_id": "pcb7a34da5fe"}))

        await client.create_pal(PalCreate.model_validate(added))

        assert fake.body() == added

    async def test_other_calls_send_no_body(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(
            ok({"pal_id": "p1"}),
            ok({"data": [], "total_count": 0}),
            ok(status=204),
            ok(conversation_json()),
            ok({"data": [], "total_count": 0}),
            ok(),
        )

        await client.get_pal("p1")
        await client.list_pals()
        await client.delete_pal("p1")
        await client.get_conversation("c1", verbose=True)
        await client.list_conversations()
        await client.end_conversation("c1")

        assert [request.content for request in fake.requests] == [b""] * 6
        assert all("content-type" not in request.headers for request in fake.requests)
