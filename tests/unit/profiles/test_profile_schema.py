from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.domain.profiles.errors import InvalidProfile, Problem, problem_code, validation_problems
from app.domain.profiles.fields import PROPERTY_RANGES
from app.domain.profiles.schemas import (
    ConversationProperties,
    Profile,
    PropertyCaps,
)
from app.domain.profiles.validation import validate_profile
from tests.unit.profiles.builders import PAL_ID, profile, profile_data, template


def _problems(data: dict[str, Any]) -> list[Problem]:
    with pytest.raises(ValidationError) as caught:
        Profile.model_validate(data)
    return validation_problems(caught.value)


def _codes(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(dotted loc, code) for every problem of ``data``."""
    return [(".".join(map(str, p["loc"])), p["code"]) for p in _problems(data)]


class TestValidProfiles:
    def test_reuse_needs_only_a_pal_id(self) -> None:
        result = Profile.model_validate({"strategy": "reuse", "pal_id": PAL_ID})
        assert result.pal_id == PAL_ID
        assert result.pal_template is None
        assert result.allowed_overrides == []

    def test_ephemeral_needs_only_a_template(self) -> None:
        result = Profile.model_validate({"strategy": "ephemeral", "pal_template": template()})
        assert result.pal_template == template()

    def test_auto_needs_both(self) -> None:
        result = profile("auto", allowed_overrides=["layers.tts", "system_prompt"])
        assert result.strategy == "auto"

    def test_fields_a_strategy_does_not_use_are_accepted(self) -> None:
        # A profile can switch strategy without other edits.
        profile("reuse", pal_template=template(), allowed_overrides=["layers.tts"])
        profile("ephemeral", pal_id=PAL_ID)

    def test_echo_template_needs_no_system_prompt(self) -> None:
        body = template(pipeline_mode="echo")
        del body["system_prompt"]
        profile("ephemeral", pal_template=body)

    def test_open_object_sub_paths_may_be_allowed(self) -> None:
        profile("ephemeral", allowed_overrides=["layers.llm.extra_body.temperature"])

    @pytest.mark.parametrize("strategy", ["reuse", "ephemeral", "auto"])
    def test_a_stored_profile_validates_back_to_itself(self, strategy: str) -> None:
        original = profile(
            strategy, allowed_overrides=["layers.tts"], caps={"max_call_duration": 600}
        )
        assert Profile.model_validate(original.model_dump()) == original
        assert Profile.model_validate(original.model_dump(exclude_none=True)) == original
        assert Profile.model_validate_json(original.model_dump_json()) == original

    def test_models_are_frozen(self) -> None:
        result = profile()
        with pytest.raises(ValidationError):
            result.strategy = "reuse"  # type: ignore[misc]


class TestDefaults:
    def test_conversation_defaults_protect_money(self) -> None:
        properties = profile().conversation.properties
        assert properties.max_call_duration == 1800
        assert properties.participant_left_timeout == 60
        assert properties.participant_absent_timeout == 180
        assert properties.enable_recording is None

    def test_default_caps(self) -> None:
        caps = profile().caps
        assert caps.max_call_duration == 3600
        assert caps.participant_left_timeout == 600
        assert caps.participant_absent_timeout == 600

    def test_defaults_sit_within_their_caps_and_ranges(self) -> None:
        properties, caps = ConversationProperties(), PropertyCaps()
        for name, (low, high) in PROPERTY_RANGES.items():
            assert low <= getattr(properties, name) <= getattr(caps, name) <= high
        assert caps.max_call_duration <= 3600

    def test_no_face_and_no_audio_only_by_default(self) -> None:
        conversation = profile().conversation
        assert conversation.face_id is None
        assert conversation.audio_only is None


class TestStrategyRequirements:
    def test_reuse_without_pal_id(self) -> None:
        assert _codes({"strategy": "reuse"}) == [("pal_id", "pal_id_required")]

    def test_ephemeral_without_template(self) -> None:
        assert _codes({"strategy": "ephemeral"}) == [("pal_template", "pal_template_required")]

    def test_auto_without_either(self) -> None:
        assert _codes({"strategy": "auto"}) == [
            ("pal_id", "pal_id_required"),
            ("pal_template", "pal_template_required"),
        ]

    def test_auto_without_template(self) -> None:
        assert _codes({"strategy": "auto", "pal_id": PAL_ID}) == [
            ("pal_template", "pal_template_required")
        ]

    def test_auto_without_pal_id(self) -> None:
        assert _codes({"strategy": "auto", "pal_template": template()}) == [
            ("pal_id", "pal_id_required")
        ]

    def test_unknown_strategy(self) -> None:
        assert _codes({"strategy": "hybrid", "pal_id": PAL_ID}) == [("strategy", "invalid_choice")]

    def test_missing_strategy(self) -> None:
        assert _codes({"pal_id": PAL_ID}) == [("strategy", "missing_field")]

    @pytest.mark.parametrize("pal_id", ["", "p" * 129])
    def test_pal_id_length(self, pal_id: str) -> None:
        (problem,) = _problems({"strategy": "reuse", "pal_id": pal_id})
        assert problem["loc"] == ["pal_id"]


class TestTemplate:
    def test_missing_default_face_id(self) -> None:
        body = template()
        del body["default_face_id"]
        assert _codes(profile_data("ephemeral", pal_template=body)) == [
            ("pal_template.default_face_id", "pal_template_invalid")
        ]

    def test_missing_system_prompt(self) -> None:
        body = template()
        del body["system_prompt"]
        assert _codes(profile_data("ephemeral", pal_template=body)) == [
            ("pal_template.system_prompt", "pal_template_invalid")
        ]

    def test_unknown_top_level_field(self) -> None:
        problems = _problems(profile_data("ephemeral", pal_template=template(persona_name="x")))
        assert [(p["loc"], p["code"]) for p in problems] == [
            (["pal_template", "persona_name"], "pal_template_invalid")
        ]
        assert "persona_name" in problems[0]["msg"]

    def test_unknown_layer_field(self) -> None:
        body = template(layers={"tts": {"voice": "v"}})
        assert _codes(profile_data("ephemeral", pal_template=body)) == [
            ("pal_template.layers.tts.voice", "pal_template_invalid")
        ]

    def test_wrong_types_are_all_reported(self) -> None:
        body = template(system_prompt=5, document_ids="d1", layers={"llm": {"model": 4}})
        assert _codes(profile_data("ephemeral", pal_template=body)) == [
            ("pal_template.system_prompt", "pal_template_invalid"),
            ("pal_template.layers.llm.model", "pal_template_invalid"),
            ("pal_template.document_ids", "pal_template_invalid"),
        ]

    def test_template_must_be_an_object(self) -> None:
        assert _codes(profile_data("ephemeral", pal_template=["x"])) == [
            ("pal_template", "invalid_type")
        ]

    def test_template_is_checked_whatever_the_strategy(self) -> None:
        assert _codes(profile_data("reuse", pal_template={"nope": 1})) == [
            ("pal_template.nope", "pal_template_invalid"),
            ("pal_template.default_face_id", "pal_template_invalid"),
            ("pal_template.system_prompt", "pal_template_invalid"),
        ]

    def test_messages_name_the_path_and_the_defect(self) -> None:
        body = template(pipeline_mode="turbo")
        (problem,) = _problems(profile_data("ephemeral", pal_template=body))
        assert problem["msg"] == "pipeline_mode: must be one of: echo, full"


class TestAllowedOverrides:
    def test_unknown_paths_are_refused_with_their_index(self) -> None:
        data = profile_data(
            "auto", allowed_overrides=["layers.tts", "layers.voice", "system_prompt", ""]
        )
        problems = _problems(data)
        assert [(p["loc"], p["code"]) for p in problems] == [
            (["allowed_overrides", 1], "unknown_override_path"),
            (["allowed_overrides", 3], "unknown_override_path"),
        ]
        assert problems[0]["msg"] == "'layers.voice' is not a PAL field that can be overridden"

    def test_must_be_a_list_of_strings(self) -> None:
        assert _codes(profile_data("auto", allowed_overrides="layers.tts")) == [
            ("allowed_overrides", "invalid_type")
        ]
        assert _codes(profile_data("auto", allowed_overrides=[1])) == [
            ("allowed_overrides.0", "invalid_type")
        ]


class TestPropertiesAndCaps:
    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("max_call_duration", 0),
            ("max_call_duration", 3601),
            ("participant_left_timeout", -1),
            ("participant_left_timeout", 3601),
            ("participant_absent_timeout", 0),
            ("participant_absent_timeout", 3601),
        ],
    )
    def test_property_out_of_range(self, name: str, value: int) -> None:
        data = profile_data(conversation={"properties": {name: value}})
        assert _codes(data) == [(f"conversation.properties.{name}", "property_out_of_range")]

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("max_call_duration", 0),
            ("max_call_duration", 7200),
            ("participant_left_timeout", -1),
            ("participant_absent_timeout", 0),
        ],
    )
    def test_cap_out_of_range(self, name: str, value: int) -> None:
        assert _codes(profile_data(caps={name: value})) == [
            (f"caps.{name}", "property_out_of_range")
        ]

    @pytest.mark.parametrize(("name", "low_high"), list(PROPERTY_RANGES.items()))
    def test_range_bounds_are_inclusive(self, name: str, low_high: tuple[int, int]) -> None:
        low, high = low_high
        for value in (low, high):
            profile(caps={name: high}, conversation={"properties": {name: value}})

    @pytest.mark.parametrize("name", list(PROPERTY_RANGES))
    def test_default_above_its_cap(self, name: str) -> None:
        data = profile_data(caps={name: 100}, conversation={"properties": {name: 101}})
        assert _codes(data) == [(f"conversation.properties.{name}", "property_cap_exceeded")]

    @pytest.mark.parametrize("name", list(PROPERTY_RANGES))
    def test_an_unset_default_follows_a_lower_cap(self, name: str) -> None:
        result = profile(caps={name: 30})
        assert getattr(result.conversation.properties, name) == 30

    def test_an_unset_default_below_the_cap_is_kept(self) -> None:
        result = profile(caps={"max_call_duration": 2400})
        assert result.conversation.properties.max_call_duration == 1800

    def test_a_cap_out_of_range_does_not_move_the_default(self) -> None:
        assert _codes(profile_data(caps={"participant_absent_timeout": 0})) == [
            ("caps.participant_absent_timeout", "property_out_of_range")
        ]

    def test_default_equal_to_its_cap_is_fine(self) -> None:
        profile(
            caps={"max_call_duration": 600}, conversation={"properties": {"max_call_duration": 600}}
        )

    def test_other_properties(self) -> None:
        result = profile(
            conversation={
                "face_id": "r1",
                "audio_only": True,
                "properties": {
                    "enable_recording": False,
                    "enable_closed_captions": True,
                    "apply_greenscreen": False,
                    "language": "multilingual",
                },
            }
        )
        assert result.conversation.properties.language == "multilingual"

    @pytest.mark.parametrize(
        ("properties", "expected"),
        [
            ({"max_call_duration": "600"}, "invalid_type"),
            ({"max_call_duration": True}, "invalid_type"),
            ({"max_call_duration": 600.0}, "invalid_type"),
            ({"enable_recording": "yes"}, "invalid_type"),
            ({"enable_recording": 1}, "invalid_type"),
            ({"language": ""}, "too_short"),
            ({"recording_storage": {}}, "unknown_field"),
        ],
    )
    def test_strict_types(self, properties: dict[str, Any], expected: str) -> None:
        (problem,) = _problems(profile_data(conversation={"properties": properties}))
        assert problem["code"] == expected


class TestUnknownFields:
    @pytest.mark.parametrize(
        ("data", "loc"),
        [
            (profile_data(name="x"), "name"),
            (profile_data(conversation={"face": "r1"}), "conversation.face"),
            (
                profile_data(conversation={"properties": {"max_duration": 1}}),
                "conversation.properties.max_duration",
            ),
            (profile_data(caps={"enable_recording": True}), "caps.enable_recording"),
        ],
    )
    def test_extra_fields_are_forbidden(self, data: dict[str, Any], loc: str) -> None:
        assert _codes(data) == [(loc, "unknown_field")]


class TestValidateProfile:
    def test_returns_the_profile(self) -> None:
        result = validate_profile("coach", profile_data())
        assert isinstance(result, Profile)

    def test_wraps_failures_in_an_app_error(self) -> None:
        with pytest.raises(InvalidProfile) as caught:
            validate_profile("coach", {"strategy": "reuse"})
        error = caught.value
        assert error.status_code == 422
        assert error.code == "invalid_profile"
        assert error.extra["profile"] == "coach"
        assert error.extra["errors"] == [
            {
                "loc": ["pal_id"],
                "code": "pal_id_required",
                "msg": "strategy 'reuse' needs pal_id (the persistent PAL)",
            }
        ]

    @pytest.mark.parametrize("name", ["", "Coach", "-coach", "a b", "x" * 65, "coach!"])
    def test_refuses_invalid_names(self, name: str) -> None:
        with pytest.raises(InvalidProfile) as caught:
            validate_profile(name, profile_data())
        assert caught.value.extra["errors"][0]["code"] == "invalid_profile_name"

    @pytest.mark.parametrize("name", ["coach", "a", "sales-demo_2", "0", "x" * 64])
    def test_accepts_valid_names(self, name: str) -> None:
        validate_profile(name, profile_data())

    def test_problems_never_echo_input_values(self) -> None:
        secret = "sk-very-secret"
        body = template(layers={"llm": {"api_key": secret, "model": 3}})
        with pytest.raises(InvalidProfile) as caught:
            validate_profile("coach", profile_data("ephemeral", pal_template=body))
        assert secret not in repr(caught.value.extra)


class TestProblemCodes:
    @pytest.mark.parametrize(
        ("pydantic_type", "code"),
        [
            ("pal_template_invalid", "pal_template_invalid"),
            ("property_out_of_range", "property_out_of_range"),
            ("extra_forbidden", "unknown_field"),
            ("missing", "missing_field"),
            ("string_too_long", "too_long"),
            ("string_too_short", "too_short"),
            ("literal_error", "invalid_choice"),
            ("string_pattern_mismatch", "invalid_format"),
            ("less_than_equal", "out_of_range"),
            ("int_type", "invalid_type"),
            ("int_parsing", "invalid_type"),
            ("dict_type", "invalid_type"),
            ("value_error", "invalid_value"),
        ],
    )
    def test_mapping(self, pydantic_type: str, code: str) -> None:
        assert problem_code(pydantic_type) == code

    def test_loc_prefix(self) -> None:
        with pytest.raises(ValidationError) as caught:
            Profile.model_validate({"strategy": "reuse"})
        (problem,) = validation_problems(caught.value, loc_prefix=("profiles", "coach"))
        assert problem["loc"] == ["profiles", "coach", "pal_id"]

    def test_nested_in_a_larger_document_the_loc_is_complete(self) -> None:
        from pydantic import BaseModel

        class Tenant(BaseModel):
            profiles: dict[str, Profile]

        with pytest.raises(ValidationError) as caught:
            Tenant.model_validate(
                {"profiles": {"coach": profile_data("ephemeral", pal_template={"x": 1})}}
            )
        locs = [p["loc"] for p in validation_problems(caught.value)]
        assert ["profiles", "coach", "pal_template", "x"] in locs
