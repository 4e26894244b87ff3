from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.domain.profiles.errors import validation_problems
from app.domain.profiles.paths import MAX_DEPTH
from app.domain.sessions.schemas import SessionCreate


def _codes(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        SessionCreate.model_validate(data)
    return [(".".join(map(str, p["loc"])), p["code"]) for p in validation_problems(caught.value)]


def _nested(depth: int) -> dict[str, Any]:
    value: Any = "x"
    for _ in range(depth - 1):
        value = {"k": value}
    return {"layers": value}


class TestValid:
    def test_an_empty_body_is_valid(self) -> None:
        session = SessionCreate.model_validate({})
        assert session.profile is None
        assert session.overrides == {}
        assert session.conversation.face_id is None
        assert session.conversation.properties.max_call_duration is None

    def test_a_full_body(self) -> None:
        session = SessionCreate.model_validate(
            {
                "profile": "coach",
                "external_ref": "user-42",
                "conversational_context": "Name: Ada",
                "custom_greeting": "Hi Ada",
                "overrides": {"layers": {"tts": {"external_voice_id": "v"}}},
                "conversation": {
                    "conversation_name": "Ada",
                    "face_id": "r1",
                    "audio_only": False,
                    "properties": {
                        "max_call_duration": 600,
                        "participant_left_timeout": 0,
                        "participant_absent_timeout": 60,
                        "enable_recording": False,
                        "enable_closed_captions": True,
                        "apply_greenscreen": False,
                        "language": "english",
                    },
                },
            }
        )
        assert session.conversation.properties.participant_left_timeout == 0

    def test_json_input(self) -> None:
        session = SessionCreate.model_validate_json(
            '{"profile": "coach", "conversation": {"properties": {"max_call_duration": 60}}}'
        )
        assert session.conversation.properties.max_call_duration == 60

    def test_frozen(self) -> None:
        session = SessionCreate()
        with pytest.raises(ValidationError):
            session.profile = "x"  # type: ignore[misc]


class TestUnknownFields:
    @pytest.mark.parametrize(
        ("data", "loc"),
        [
            ({"pal_id": "p1"}, "pal_id"),
            ({"callback_url": "http://x"}, "callback_url"),
            ({"conversation": {"pal_id": "p"}}, "conversation.pal_id"),
            ({"conversation": {"test_mode": True}}, "conversation.test_mode"),
            (
                {"conversation": {"properties": {"recording_storage": {}}}},
                "conversation.properties.recording_storage",
            ),
        ],
    )
    def test_refused(self, data: dict[str, Any], loc: str) -> None:
        assert _codes(data) == [(loc, "unknown_field")]


class TestLengthCaps:
    @pytest.mark.parametrize(
        ("field", "limit"),
        [
            ("profile", 64),
            ("external_ref", 200),
            ("conversational_context", 20_000),
            ("custom_greeting", 1_000),
        ],
    )
    def test_top_level_strings(self, field: str, limit: int) -> None:
        SessionCreate.model_validate({field: "x" * limit})
        assert _codes({field: "x" * (limit + 1)}) == [(field, "too_long")]

    @pytest.mark.parametrize(("field", "limit"), [("conversation_name", 200), ("face_id", 128)])
    def test_conversation_strings(self, field: str, limit: int) -> None:
        SessionCreate.model_validate({"conversation": {field: "x" * limit}})
        assert _codes({"conversation": {field: "x" * (limit + 1)}}) == [
            (f"conversation.{field}", "too_long")
        ]

    def test_length_counts_characters_not_bytes(self) -> None:
        SessionCreate.model_validate({"custom_greeting": "é" * 1_000})

    @pytest.mark.parametrize(
        ("data", "loc"),
        [
            ({"profile": ""}, "profile"),
            ({"external_ref": ""}, "external_ref"),
            ({"conversation": {"face_id": ""}}, "conversation.face_id"),
            ({"conversation": {"conversation_name": ""}}, "conversation.conversation_name"),
        ],
    )
    def test_identifiers_may_not_be_empty(self, data: dict[str, Any], loc: str) -> None:
        assert _codes(data) == [(loc, "too_short")]

    def test_free_texts_may_be_empty(self) -> None:
        SessionCreate.model_validate({"conversational_context": "", "custom_greeting": ""})


class TestProperties:
    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("max_call_duration", 0),
            ("max_call_duration", 3601),
            ("participant_left_timeout", -1),
            ("participant_left_timeout", 3601),
            ("participant_absent_timeout", 0),
            ("participant_absent_timeout", 86_400),
        ],
    )
    def test_out_of_range(self, name: str, value: int) -> None:
        assert _codes({"conversation": {"properties": {name: value}}}) == [
            (f"conversation.properties.{name}", "property_out_of_range")
        ]

    @pytest.mark.parametrize(
        "properties",
        [
            {"max_call_duration": "600"},
            {"max_call_duration": 60.5},
            {"max_call_duration": True},
            {"audio_only": 1},
        ],
    )
    def test_strict_types(self, properties: dict[str, Any]) -> None:
        codes = _codes({"conversation": {"properties": properties}})
        assert codes[0][1] in ("invalid_type", "unknown_field")

    def test_audio_only_must_be_a_boolean(self) -> None:
        assert _codes({"conversation": {"audio_only": "true"}}) == [
            ("conversation.audio_only", "invalid_type")
        ]


class TestOverrides:
    @pytest.mark.parametrize("value", [[], "x", None, 1])
    def test_must_be_an_object(self, value: Any) -> None:
        assert _codes({"overrides": value}) == [("overrides", "invalid_type")]

    def test_any_object_is_accepted_here(self) -> None:
        # Which fields are allowed depends on the profile and is decided at resolution.
        session = SessionCreate.model_validate({"overrides": {"anything": {"at": ["all"]}}})
        assert session.overrides == {"anything": {"at": ["all"]}}

    def test_nesting_is_bounded(self) -> None:
        SessionCreate.model_validate({"overrides": _nested(MAX_DEPTH - 1)})
        assert _codes({"overrides": _nested(MAX_DEPTH + 1)}) == [
            ("overrides", "overrides_too_deep")
        ]


@pytest.mark.parametrize("body", [[], "x", None, 3])
def test_body_must_be_an_object(body: Any) -> None:
    assert _codes(body) == [("", "invalid_type")]
