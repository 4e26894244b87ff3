from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from app.domain.profiles.errors import (
    OverrideInvalid,
    OverrideNotAllowed,
    OverridesNotAllowed,
    ProfileRequired,
    PropertyCapExceeded,
    UnknownProfile,
)
from app.domain.profiles.fields import PROPERTY_RANGES
from app.domain.profiles.resolution import Resolution, resolve, select_profile
from app.domain.profiles.schemas import Profile
from app.errors import AppError
from tests.unit.profiles.builders import FACE_ID, PAL_ID, profile, request, template

VOICE = {"layers": {"tts": {"external_voice_id": "voice-b"}}}
PROMPT = {"system_prompt": "Be brief."}
ALLOWED = ["layers.tts", "system_prompt"]


def _resolve(strategy: str = "auto", *, overrides: Any = None, **profile_fields: Any) -> Resolution:
    profile_fields.setdefault("allowed_overrides", ALLOWED)
    return resolve(
        profile(strategy, **profile_fields),
        request(overrides=overrides or {}),
        profile_name="coach",
    )


class TestReuse:
    def test_no_overrides_uses_the_persistent_pal(self) -> None:
        result = _resolve("reuse")
        assert result.strategy == "reuse"
        assert result.requested_strategy == "reuse"
        assert result.pal_id == PAL_ID
        assert result.pal_body is None
        assert result.override_paths == ()
        assert result.strategy_reason == "profile 'coach' is reuse: persistent PAL p123"

    @pytest.mark.parametrize("overrides", [VOICE, PROMPT, {"nope": 1}, {"layers": {}}])
    def test_any_override_is_refused(self, overrides: dict[str, Any]) -> None:
        with pytest.raises(OverridesNotAllowed) as caught:
            _resolve("reuse", overrides=overrides)
        assert caught.value.code == "overrides_not_allowed"
        assert caught.value.status_code == 422
        assert "coach" in caught.value.detail

    def test_the_error_names_every_path(self) -> None:
        with pytest.raises(OverridesNotAllowed) as caught:
            _resolve("reuse", overrides={**VOICE, **PROMPT})
        assert caught.value.extra == {
            "path": "layers.tts.external_voice_id",
            "paths": ["layers.tts.external_voice_id", "system_prompt"],
        }


class TestEphemeral:
    def test_no_overrides_builds_the_template_as_is(self) -> None:
        result = _resolve("ephemeral")
        assert result.strategy == "ephemeral"
        assert result.requested_strategy == "ephemeral"
        assert result.pal_id is None
        assert result.pal_body == template()
        assert (
            result.strategy_reason
            == "profile 'coach' is ephemeral: PAL from template, no overrides"
        )

    def test_allowed_overrides_are_merged_into_the_template(self) -> None:
        result = _resolve("ephemeral", overrides={**VOICE, **PROMPT})
        expected = template(system_prompt="Be brief.")
        expected["layers"]["tts"]["external_voice_id"] = "voice-b"
        assert result.pal_body == expected
        assert result.override_paths == ("layers.tts.external_voice_id", "system_prompt")
        assert result.strategy_reason == (
            "profile 'coach' is ephemeral: PAL from template, "
            "overrides layers.tts.external_voice_id, system_prompt"
        )

    def test_a_path_outside_allowed_overrides_is_refused(self) -> None:
        with pytest.raises(OverrideNotAllowed) as caught:
            _resolve("ephemeral", overrides={"objectives_id": "o9", **PROMPT})
        error = caught.value
        assert error.code == "override_not_allowed"
        assert error.status_code == 422
        assert error.extra == {
            "path": "objectives_id",
            "paths": ["objectives_id"],
            "reason": "not_in_allowed_overrides",
        }
        assert "objectives_id" in error.detail

    def test_a_field_that_is_not_a_pal_field_is_refused(self) -> None:
        with pytest.raises(OverrideNotAllowed) as caught:
            _resolve("ephemeral", overrides={"layers": {"tts": {"voice": "v"}}, "pal_id": "x"})
        assert caught.value.extra == {
            "path": "layers.tts.voice",
            "paths": ["layers.tts.voice", "pal_id"],
            "reason": "unknown_field",
        }

    def test_unknown_fields_are_refused_even_under_an_allowed_prefix(self) -> None:
        with pytest.raises(OverrideNotAllowed) as caught:
            _resolve(
                "ephemeral",
                overrides={"layers": {"tts": {"speed": 1}}},
                allowed_overrides=["layers"],
            )
        assert caught.value.extra["reason"] == "unknown_field"

    def test_free_keys_below_an_open_object_are_pal_fields(self) -> None:
        result = _resolve(
            "ephemeral",
            overrides={"layers": {"llm": {"extra_body": {"top_p": 0.5}}}},
            allowed_overrides=["layers.llm.extra_body"],
        )
        assert result.pal_body is not None
        assert result.pal_body["layers"]["llm"]["extra_body"] == {"temperature": 0.4, "top_p": 0.5}

    @pytest.mark.parametrize(
        ("allowed", "overrides", "ok"),
        [
            (["layers.tts"], {"layers": {"tts": {"voice_settings": {"speed": 0.5}}}}, True),
            (
                ["layers.tts.voice_settings"],
                {"layers": {"tts": {"voice_settings": {"speed": 0.5}}}},
                True,
            ),
            (
                ["layers.tts.voice_settings.speed"],
                {"layers": {"tts": {"voice_settings": {"speed": 0.5}}}},
                True,
            ),
            (["layers"], {"layers": {"llm": {"model": "tavus-gpt-oss"}}}, True),
            (["layers.tts.voice_settings"], {"layers": {"tts": {"external_voice_id": "v"}}}, False),
            (
                ["layers.tts.voice_settings.speed"],
                {"layers": {"tts": {"voice_settings": None}}},
                False,
            ),
            (["layers.tts.external_voice_id"], {"layers": {"tts": None}}, False),
            (["layers.tts.external_voice_id"], {"layers": {"tts": {}}}, False),
            (["layers.llm"], {"layers": {"tts": {"voice_id": "v"}}}, False),
        ],
    )
    def test_allowed_overrides_cover_by_prefix(
        self, allowed: list[str], overrides: dict[str, Any], ok: bool
    ) -> None:
        if ok:
            _resolve("ephemeral", overrides=overrides, allowed_overrides=allowed)
        else:
            with pytest.raises(OverrideNotAllowed):
                _resolve("ephemeral", overrides=overrides, allowed_overrides=allowed)

    def test_no_allowed_overrides_refuses_every_override(self) -> None:
        with pytest.raises(OverrideNotAllowed):
            _resolve("ephemeral", overrides=PROMPT, allowed_overrides=[])

    def test_null_removes_an_allowed_field(self) -> None:
        result = _resolve("ephemeral", overrides={"layers": {"tts": {"voice_settings": None}}})
        assert result.pal_body is not None
        assert "voice_settings" not in result.pal_body["layers"]["tts"]

    def test_a_wrong_type_is_refused(self) -> None:
        with pytest.raises(OverrideInvalid) as caught:
            _resolve("ephemeral", overrides={"layers": {"tts": {"external_voice_id": 7}}})
        error = caught.value
        assert error.code == "override_invalid"
        assert error.status_code == 422
        assert error.extra["path"] == "layers.tts.external_voice_id"
        assert error.extra["reason"] == "wrong_type"
        assert error.extra["problems"] == [
            {
                "path": "layers.tts.external_voice_id",
                "reason": "wrong_type",
                "msg": "must be of type string",
            }
        ]

    def test_replacing_an_allowed_object_with_a_scalar_is_refused(self) -> None:
        with pytest.raises(OverrideInvalid) as caught:
            _resolve("ephemeral", overrides={"layers": {"tts": "elevenlabs"}})
        assert caught.value.extra["path"] == "layers.tts"

    def test_an_invalid_choice_is_refused(self) -> None:
        with pytest.raises(OverrideInvalid) as caught:
            _resolve(
                "ephemeral",
                overrides={"pipeline_mode": "turbo"},
                allowed_overrides=["pipeline_mode"],
            )
        assert caught.value.extra["reason"] == "invalid_choice"

    def test_removing_a_required_field_is_refused(self) -> None:
        with pytest.raises(OverrideInvalid) as caught:
            _resolve("ephemeral", overrides={"system_prompt": None})
        assert caught.value.extra["path"] == "system_prompt"
        assert caught.value.extra["reason"] == "required"

    def test_switching_to_echo_makes_the_prompt_optional(self) -> None:
        result = _resolve(
            "ephemeral",
            overrides={"system_prompt": None, "pipeline_mode": "echo"},
            allowed_overrides=["system_prompt", "pipeline_mode"],
        )
        assert result.pal_body is not None
        assert "system_prompt" not in result.pal_body

    def test_the_profile_template_is_not_mutated(self) -> None:
        chosen = profile("ephemeral", allowed_overrides=ALLOWED)
        assert chosen.pal_template is not None
        before = copy.deepcopy(chosen.pal_template)
        result = resolve(chosen, request(overrides=VOICE), profile_name="coach")
        assert result.pal_body is not None
        result.pal_body["layers"]["tts"]["external_voice_id"] = "changed"
        assert chosen.pal_template == before


class TestAuto:
    def test_no_overrides_reuses_the_persistent_pal(self) -> None:
        result = _resolve("auto")
        assert result.strategy == "reuse"
        assert result.requested_strategy == "auto"
        assert result.pal_id == PAL_ID
        assert result.pal_body is None
        assert result.strategy_reason == (
            "auto: no overrides, only per-session data → reuse PAL p123"
        )

    def test_per_session_data_alone_still_reuses(self) -> None:
        chosen = profile("auto", allowed_overrides=ALLOWED)
        session = request(
            conversational_context="Name: Ada",
            custom_greeting="Hi Ada",
            conversation={"face_id": "r2", "properties": {"max_call_duration": 60}},
        )
        assert resolve(chosen, session, profile_name="coach").strategy == "reuse"

    def test_an_override_makes_an_ephemeral_pal(self) -> None:
        result = _resolve("auto", overrides=VOICE)
        assert result.strategy == "ephemeral"
        assert result.requested_strategy == "auto"
        assert result.pal_id is None
        assert result.pal_body is not None
        assert result.pal_body["layers"]["tts"]["external_voice_id"] == "voice-b"
        assert result.strategy_reason == (
            "auto: overrides layers.tts.external_voice_id change PAL behaviour "
            "→ ephemeral PAL from template"
        )

    def test_a_disallowed_override_is_refused_not_ignored(self) -> None:
        with pytest.raises(OverrideNotAllowed) as caught:
            _resolve("auto", overrides={"guardrails_id": "g1"})
        assert caught.value.extra["path"] == "guardrails_id"

    def test_an_empty_object_counts_as_an_override(self) -> None:
        result = _resolve("auto", overrides={"layers": {"tts": {}}})
        assert result.strategy == "ephemeral"
        assert result.pal_body == template()

    def test_a_long_path_list_is_summarised_in_the_reason(self) -> None:
        overrides = {
            "pal_name": "n",
            "system_prompt": "p",
            "context": "c",
            "objectives_id": "o",
            "guardrails_id": "g",
            "document_ids": ["d"],
            "languages": ["en"],
        }
        result = _resolve("auto", overrides=overrides, allowed_overrides=list(overrides))
        assert result.strategy_reason == (
            "auto: overrides context, document_ids, guardrails_id, languages, objectives_id "
            "(+2 more) change PAL behaviour → ephemeral PAL from template"
        )
        assert len(result.override_paths) == 7


@pytest.mark.parametrize("strategy", ["reuse", "ephemeral", "auto"])
@pytest.mark.parametrize("overrides_kind", ["none", "allowed", "disallowed"])
def test_strategy_by_overrides_matrix(strategy: str, overrides_kind: str) -> None:
    overrides = {"none": {}, "allowed": VOICE, "disallowed": {"objectives_id": "o9"}}[
        overrides_kind
    ]
    expected: dict[tuple[str, str], type[AppError] | str] = {
        ("reuse", "none"): "reuse",
        ("reuse", "allowed"): OverridesNotAllowed,
        ("reuse", "disallowed"): OverridesNotAllowed,
        ("ephemeral", "none"): "ephemeral",
        ("ephemeral", "allowed"): "ephemeral",
        ("ephemeral", "disallowed"): OverrideNotAllowed,
        ("auto", "none"): "reuse",
        ("auto", "allowed"): "ephemeral",
        ("auto", "disallowed"): OverrideNotAllowed,
    }
    outcome = expected[(strategy, overrides_kind)]
    if isinstance(outcome, str):
        assert _resolve(strategy, overrides=overrides).strategy == outcome
    else:
        with pytest.raises(outcome):
            _resolve(strategy, overrides=overrides)


class TestConversationBody:
    def test_defaults_only(self) -> None:
        result = _resolve("reuse")
        assert result.conversation_body == {
            "properties": {
                "max_call_duration": 1800,
                "participant_left_timeout": 60,
                "participant_absent_timeout": 180,
            }
        }
        assert result.max_call_duration == 1800

    @pytest.mark.parametrize("strategy", ["reuse", "ephemeral", "auto"])
    def test_never_carries_what_the_saga_fills_in(self, strategy: str) -> None:
        body = _resolve(strategy).conversation_body
        assert not {"pal_id", "persona_id", "callback_url"} & set(body)

    @pytest.mark.parametrize(
        ("profile_face", "request_face", "expected"),
        [
            (None, None, None),
            ("r-profile", None, "r-profile"),
            (None, "r-request", "r-request"),
            ("r-profile", "r-request", "r-request"),
        ],
    )
    def test_face_id_precedence(
        self, profile_face: str | None, request_face: str | None, expected: str | None
    ) -> None:
        chosen = profile("ephemeral", conversation={"face_id": profile_face})
        session = request(conversation={"face_id": request_face})
        body = resolve(chosen, session, profile_name="coach").conversation_body
        assert body.get("face_id") == expected
        # Without any face, Tavus falls back to the PAL's default_face_id.
        assert ("face_id" in body) is (expected is not None)

    @pytest.mark.parametrize(
        ("profile_audio", "request_audio", "expected"),
        [
            (None, None, None),
            (True, None, True),
            (None, True, True),
            (True, False, False),
            (False, True, True),
        ],
    )
    def test_audio_only_precedence(
        self, profile_audio: bool | None, request_audio: bool | None, expected: bool | None
    ) -> None:
        chosen = profile("reuse", conversation={"audio_only": profile_audio})
        session = request(conversation={"audio_only": request_audio})
        body = resolve(chosen, session, profile_name="coach").conversation_body
        assert body.get("audio_only") == expected

    def test_per_session_data_is_passed_through(self) -> None:
        session = request(
            conversational_context="Name: Ada",
            custom_greeting="Hi Ada!",
            conversation={"conversation_name": "Ada's session"},
        )
        body = resolve(profile("reuse"), session, profile_name="coach").conversation_body
        assert body["conversational_context"] == "Name: Ada"
        assert body["custom_greeting"] == "Hi Ada!"
        assert body["conversation_name"] == "Ada's session"

    def test_empty_texts_are_omitted(self) -> None:
        session = request(conversational_context="", custom_greeting="")
        body = resolve(profile("reuse"), session, profile_name="coach").conversation_body
        assert "conversational_context" not in body
        assert "custom_greeting" not in body

    def test_request_properties_override_profile_defaults(self) -> None:
        chosen = profile(
            "reuse",
            conversation={
                "properties": {
                    "max_call_duration": 900,
                    "enable_recording": True,
                    "language": "english",
                }
            },
        )
        session = request(
            conversation={
                "properties": {
                    "max_call_duration": 300,
                    "participant_absent_timeout": 60,
                    "enable_recording": False,
                    "enable_closed_captions": True,
                    "apply_greenscreen": True,
                }
            }
        )
        result = resolve(chosen, session, profile_name="coach")
        assert result.conversation_body["properties"] == {
            "max_call_duration": 300,
            "participant_left_timeout": 60,
            "participant_absent_timeout": 60,
            "enable_recording": False,
            "enable_closed_captions": True,
            "apply_greenscreen": True,
            "language": "english",
        }
        assert result.max_call_duration == 300

    def test_profile_default_duration_is_effective_when_none_requested(self) -> None:
        chosen = profile("reuse", conversation={"properties": {"max_call_duration": 900}})
        assert resolve(chosen, request(), profile_name="coach").max_call_duration == 900

    @pytest.mark.parametrize("name", list(PROPERTY_RANGES))
    def test_a_request_equal_to_the_cap_is_accepted(self, name: str) -> None:
        chosen = profile("reuse", caps={name: 200}, conversation={"properties": {name: 100}})
        session = request(conversation={"properties": {name: 200}})
        body = resolve(chosen, session, profile_name="coach").conversation_body
        assert body["properties"][name] == 200

    @pytest.mark.parametrize("name", list(PROPERTY_RANGES))
    def test_a_request_above_the_cap_is_refused(self, name: str) -> None:
        chosen = profile("reuse", caps={name: 200}, conversation={"properties": {name: 100}})
        session = request(conversation={"properties": {name: 201}})
        with pytest.raises(PropertyCapExceeded) as caught:
            resolve(chosen, session, profile_name="coach")
        error = caught.value
        assert error.code == "property_cap_exceeded"
        assert error.status_code == 422
        assert error.extra == {
            "path": f"conversation.properties.{name}",
            "cap": 200,
            "requested": 201,
        }

    def test_default_caps_allow_an_hour(self) -> None:
        session = request(conversation={"properties": {"max_call_duration": 3600}})
        assert resolve(profile("reuse"), session, profile_name="coach").max_call_duration == 3600

    def test_caps_apply_to_ephemeral_sessions_too(self) -> None:
        chosen = profile("auto", allowed_overrides=ALLOWED, caps={"max_call_duration": 600})
        session = request(overrides=VOICE, conversation={"properties": {"max_call_duration": 601}})
        with pytest.raises(PropertyCapExceeded):
            resolve(chosen, session, profile_name="coach")

    def test_ephemeral_body_is_the_same_shape(self) -> None:
        chosen = profile("auto", allowed_overrides=ALLOWED, conversation={"face_id": FACE_ID})
        result = resolve(chosen, request(overrides=VOICE, custom_greeting="Hi"), profile_name="c")
        assert result.conversation_body == {
            "face_id": FACE_ID,
            "custom_greeting": "Hi",
            "properties": {
                "max_call_duration": 1800,
                "participant_left_timeout": 60,
                "participant_absent_timeout": 180,
            },
        }


class TestPurity:
    def test_same_inputs_give_equal_results(self) -> None:
        chosen = profile("auto", allowed_overrides=ALLOWED)
        session = request(overrides=VOICE, custom_greeting="Hi")
        assert resolve(chosen, session, profile_name="coach") == resolve(
            chosen, session, profile_name="coach"
        )

    def test_inputs_are_unchanged(self) -> None:
        chosen = profile("auto", allowed_overrides=ALLOWED)
        session = request(overrides={"layers": {"tts": {"voice_settings": None}}})
        profile_before = chosen.model_dump()
        session_before = session.model_dump()
        resolve(chosen, session, profile_name="coach")
        assert chosen.model_dump() == profile_before
        assert session.model_dump() == session_before

    def test_resolution_is_frozen(self) -> None:
        result = _resolve("reuse")
        with pytest.raises(ValidationError):
            result.strategy = "ephemeral"  # type: ignore[misc]

    def test_resolution_round_trips_through_json(self) -> None:
        result = _resolve("auto", overrides=VOICE)
        assert Resolution.model_validate_json(result.model_dump_json()) == result


class TestSelectProfile:
    @pytest.fixture(autouse=True)
    def _profiles(self) -> None:
        self.PROFILES: dict[str, Profile] = {
            "coach": profile("reuse"),
            "demo": profile("ephemeral"),
        }

    def test_requested_profile(self) -> None:
        name, chosen = select_profile(self.PROFILES, "demo", "coach")
        assert name == "demo"
        assert chosen.strategy == "ephemeral"

    def test_default_profile_when_none_requested(self) -> None:
        name, chosen = select_profile(self.PROFILES, None, "coach")
        assert name == "coach"
        assert chosen.strategy == "reuse"

    def test_unknown_profile(self) -> None:
        with pytest.raises(UnknownProfile) as caught:
            select_profile(self.PROFILES, "sales", "coach")
        assert caught.value.code == "unknown_profile"
        assert caught.value.status_code == 422
        assert caught.value.extra == {"profile": "sales"}

    def test_default_pointing_nowhere(self) -> None:
        with pytest.raises(UnknownProfile):
            select_profile(self.PROFILES, None, "gone")

    def test_no_profile_and_no_default(self) -> None:
        with pytest.raises(ProfileRequired) as caught:
            select_profile(self.PROFILES, None, None)
        assert caught.value.code == "profile_required"
        assert caught.value.status_code == 422
