"""Strict request bodies and tolerant response parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from app.tavus.models import (
    Conversation,
    ConversationCreate,
    ConversationProperties,
    ConversationStatus,
    LLMLayer,
    Pal,
    PalCreate,
    PalLayers,
    TTSLayer,
)
from tests.unit.tavus.fake_tavus import conversation_json, pal_json


class TestPalCreate:
    def test_minimal_body_dumps_only_what_was_set(self) -> None:
        body = PalCreate(default_face_id="r90bbd427f71", system_prompt="Be kind.")

        assert body.model_dump(mode="json", exclude_none=True) == {
            "default_face_id": "r90bbd427f71",
            "system_prompt": "Be kind.",
        }

    def test_unknown_top_level_field_is_kept(self) -> None:
        # Tavus adds fields often; what a tenant may send is the profile catalog's call.
        body = {"default_face_id": "r1", "system_prompt": "x", "new_field": "kept"}

        assert PalCreate.model_validate(body).model_dump(mode="json", exclude_none=True) == body

    def test_unknown_layer_field_is_kept(self) -> None:
        body = {
            "default_face_id": "r1",
            "system_prompt": "x",
            "layers": {
                "llm": {"model": "tavus-glm-4.7", "temperature": 0.2},
                "conferencing": {"username": "anna"},
            },
        }

        assert PalCreate.model_validate(body).model_dump(mode="json", exclude_none=True) == body

    def test_known_fields_are_still_typed(self) -> None:
        with pytest.raises(ValidationError, match="pipeline_mode"):
            PalCreate.model_validate(
                {"default_face_id": "r1", "system_prompt": "x", "pipeline_mode": "loud"}
            )

    def test_open_ended_llm_objects_accept_any_keys(self) -> None:
        body = PalCreate.model_validate(
            {
                "default_face_id": "r1",
                "system_prompt": "x",
                "layers": {
                    "llm": {
                        "model": "my-model",
                        "base_url": "https://llm.example/v1",
                        "headers": {"X-Org": "acme"},
                        "extra_body": {"temperature": 0.2, "top_p": 0.9},
                    }
                },
            }
        )

        assert body.layers is not None
        assert body.layers.llm is not None
        assert body.layers.llm.extra_body == {"temperature": 0.2, "top_p": 0.9}

    def test_default_face_id_is_required(self) -> None:
        with pytest.raises(ValidationError, match="default_face_id"):
            PalCreate.model_validate({"system_prompt": "x"})

    def test_system_prompt_required_unless_echo(self) -> None:
        with pytest.raises(ValidationError, match="system_prompt is required"):
            PalCreate(default_face_id="r1")

        echo = PalCreate(default_face_id="r1", pipeline_mode="echo")
        assert echo.system_prompt is None

    def test_third_party_keys_masked_in_repr_but_sent(self) -> None:
        body = PalCreate(
            default_face_id="r1",
            system_prompt="x",
            layers=PalLayers(
                llm=LLMLayer(api_key="sk-llm-secret", headers={"Authorization": "Bearer hdr"}),
                tts=TTSLayer(api_key="el-tts-secret"),
            ),
        )

        shown = repr(body) + str(body)
        for secret in ("sk-llm-secret", "el-tts-secret", "Bearer hdr"):
            assert secret not in shown
        sent = body.model_dump(mode="json", exclude_none=True)
        assert sent["layers"]["llm"]["api_key"] == "sk-llm-secret"
        assert sent["layers"]["llm"]["headers"] == {"Authorization": "Bearer hdr"}
        assert sent["layers"]["tts"]["api_key"] == "el-tts-secret"


class TestConversationCreate:
    def test_unknown_field_is_kept(self) -> None:
        body = ConversationCreate.model_validate({"pal_id": "p1", "room_theme": "dark"})

        assert body.model_dump(mode="json", exclude_none=True) == {
            "pal_id": "p1",
            "room_theme": "dark",
        }

    def test_unknown_property_is_kept(self) -> None:
        properties = ConversationProperties.model_validate({"recording_s3_bucket": "b"})

        assert properties.model_dump(exclude_none=True) == {"recording_s3_bucket": "b"}

    def test_max_participants_is_at_least_two(self) -> None:
        with pytest.raises(ValidationError, match="max_participants"):
            ConversationCreate(max_participants=1)

    def test_callback_token_not_in_repr(self) -> None:
        body = ConversationCreate(pal_id="p1", callback_url="https://x.test/cb?token=tok-secret")

        assert "tok-secret" not in repr(body)
        assert body.model_dump(mode="json", exclude_none=True)["callback_url"].endswith(
            "tok-secret"
        )


class TestPal:
    def test_create_response(self) -> None:
        pal = Pal.model_validate(
            {
                "pal_id": "pcb7a34da5fe",
                "pal_name": "Life Coach",
                "conferencing_email": "acme-anna@tavusinvite.com",
                "created_at": "<string>",
            }
        )

        assert pal.pal_id == "pcb7a34da5fe"
        assert pal.pal_name == "Life Coach"
        assert pal.conferencing_email == "acme-anna@tavusinvite.com"
        assert pal.created_at is None

    def test_flat_and_wrapped_shapes_are_equal(self) -> None:
        flat = Pal.model_validate(pal_json())
        wrapped = Pal.model_validate({"data": [pal_json()]})

        assert flat == wrapped
        assert flat.default_face_id == "r90bbd427f71"

    def test_legacy_persona_names(self) -> None:
        pal = Pal.model_validate(
            {
                "persona_id": "p9",
                "persona_name": "Old",
                "default_replica_id": "r9",
                "persona_type": "user",
            }
        )

        assert (pal.pal_id, pal.pal_name, pal.default_face_id, pal.pal_type) == (
            "p9",
            "Old",
            "r9",
            "user",
        )

    def test_current_name_wins_over_legacy(self) -> None:
        pal = Pal.model_validate({"pal_id": "new", "persona_id": "old"})

        assert pal.pal_id == "new"

    def test_unknown_fields_are_ignored(self) -> None:
        pal = Pal.model_validate(pal_json(publish_url="https://x", brand_new_field={"a": 1}))

        assert pal.pal_id == "pcb7a34da5fe"

    def test_missing_id_is_invalid(self) -> None:
        with pytest.raises(ValidationError):
            Pal.model_validate({"pal_name": "no id"})

    def test_echoed_layers_are_not_in_repr(self) -> None:
        pal = Pal.model_validate(pal_json(layers={"llm": {"api_key": "sk-echoed"}}))

        assert "sk-echoed" not in repr(pal)
        assert pal.layers == {"llm": {"api_key": "sk-echoed"}}


class TestTimestamps:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            (
                "2025-07-11T06:45:47.472000Z",
                datetime(2025, 7, 11, 6, 45, 47, 472000, tzinfo=UTC),
            ),
            ("2026-07-14T17:00:00.000000", datetime(2026, 7, 14, 17, 0, tzinfo=UTC)),
            (
                "2024-08-28 15:27:40.824457",
                datetime(2024, 8, 28, 15, 27, 40, 824457, tzinfo=UTC),
            ),
            ("2025-07-11T08:45:47+02:00", datetime(2025, 7, 11, 6, 45, 47, tzinfo=UTC)),
            ("<string>", None),
            ("", None),
            ("yesterday", None),
            (None, None),
            ([], None),
        ],
    )
    def test_lenient(self, raw: object, expected: datetime | None) -> None:
        pal = Pal.model_validate({"pal_id": "p", "updated_at": raw})

        assert pal.updated_at == expected
        if pal.updated_at is not None:
            assert pal.updated_at.tzinfo is not None


class TestConversation:
    def test_create_response_with_meeting_token(self) -> None:
        conversation = Conversation.model_validate(
            {
                "conversation_id": "c123456",
                "conversation_name": "palisade-s-1",
                "conversation_url": "https://tavus.daily.co/c123456",
                "status": "active",
                "callback_url": "https://palisade.test/cb?token=t",
                "created_at": "<string>",
                "meeting_token": "eyJ.jwt.secret",
            }
        )

        assert conversation.is_active
        assert conversation.meeting_token == "eyJ.jwt.secret"
        assert "eyJ.jwt.secret" not in repr(conversation)
        assert "token=t" not in repr(conversation)

    def test_legacy_replica_and_persona_names(self) -> None:
        conversation = Conversation.model_validate(
            {"conversation_id": "c1", "replica_id": "r1", "persona_id": "p1"}
        )

        assert (conversation.face_id, conversation.pal_id) == ("r1", "p1")

    @pytest.mark.parametrize(
        ("status", "active", "terminal"),
        [
            ("active", True, False),
            ("ended", False, True),
            ("error", False, True),
            ("warming_up", False, False),
            (None, False, False),
        ],
    )
    def test_status_is_an_open_string(
        self, status: str | None, active: bool, terminal: bool
    ) -> None:
        conversation = Conversation.model_validate(conversation_json(status=status))

        assert conversation.status == status
        assert (conversation.is_active, conversation.is_terminal) == (active, terminal)

    def test_known_statuses(self) -> None:
        assert {s.value for s in ConversationStatus} == {"active", "ended", "error"}

    def test_verbose_events(self) -> None:
        conversation = Conversation.model_validate(
            conversation_json(
                status="ended",
                events=[
                    {
                        "event_type": "system.replica_joined",
                        "message_type": "system",
                        "timestamp": "2025-07-11T06:45:47.472000Z",
                        "properties": {"replica_id": "r90bbd427f71"},
                    },
                    {
                        "event_type": "system.shutdown",
                        "timestamp": "2025-07-11T06:48:37.564961Z",
                        "properties": {"shutdown_reason": "end_conversation_endpoint_hit"},
                    },
                    {"event_type": "application.perception_analysis", "properties": None},
                ],
            )
        )

        assert conversation.events is not None
        assert [e.event_type for e in conversation.events] == [
            "system.replica_joined",
            "system.shutdown",
            "application.perception_analysis",
        ]
        assert conversation.events[1].properties == {
            "shutdown_reason": "end_conversation_endpoint_hit"
        }
        assert conversation.events[2].properties == {}
        assert conversation.events[2].timestamp is None

    def test_odd_events_are_skipped_and_counted(self) -> None:
        # Integrators disagree on the shape of verbose events; one odd event must not
        # make the conversation (and the shutdown after it) unreadable.
        conversation = Conversation.model_validate(
            conversation_json(
                status="ended",
                events=[
                    {"timestamp": "2025-07-11T06:45:47Z", "properties": {}},
                    {"event_type": "system.replica_joined", "properties": "r90bbd427f71"},
                    "system.pal_joined",
                    {"event_type": 7},
                    {
                        "event_type": "system.shutdown",
                        "properties": {"shutdown_reason": "participant_left_timeout"},
                    },
                ],
            )
        )

        assert conversation.events is not None
        assert [e.event_type for e in conversation.events] == ["system.shutdown"]
        assert conversation.skipped_events == 4

    def test_events_not_a_list_are_skipped(self) -> None:
        conversation = Conversation.model_validate(conversation_json(events={"a": 1}))

        assert conversation.events == []
        assert conversation.skipped_events == 1

    def test_events_absent_when_not_verbose(self) -> None:
        assert Conversation.model_validate(conversation_json()).events is None
