"""The warm pool's key: a pooled PAL matches a session exactly when Tavus would receive
the same PAL body but for the name tag."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest

from app.domain.pool.fingerprint import canonical_pal_body, pal_body_fingerprint
from app.domain.profiles.resolution import resolve
from app.domain.profiles.warm_pool import plan_pool
from app.domain.sessions import tags
from app.domain.sessions.start import _plan
from tests.unit.profiles.builders import TEMPLATE, profile, request

VOICE = {"layers": {"tts": {"external_voice_id": "voice-b"}}}


def session_pal_body(overrides: dict[str, Any], strategy: str = "ephemeral", **fields: Any) -> Any:
    """The PAL body a start plans at admission, tagged with a fresh session's tag."""
    chosen = profile(strategy, allowed_overrides=["layers.tts", "system_prompt"], **fields)
    resolution = resolve(chosen, request(overrides=overrides), profile_name="p")
    return _plan(resolution, uuid.uuid4())["pal_body"]


def body(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(TEMPLATE), **changes}


class TestSessionAndPoolAgree:
    @pytest.mark.parametrize("overrides", [{}, VOICE, {"system_prompt": "Be brief."}])
    def test_a_pool_key_matches_the_session_sending_its_overrides(
        self, overrides: dict[str, Any]
    ) -> None:
        pool = {"size": 1, "variants": [{"name": "v", "overrides": overrides}]} if overrides else {}
        chosen = profile(
            "ephemeral",
            allowed_overrides=["layers.tts", "system_prompt"],
            warm_pool=pool or {"size": 1},
        )
        keys = {key.variant: key for key in plan_pool(chosen, "p").keys}
        key = keys["v" if overrides else None]
        assert key.fingerprint == pal_body_fingerprint(session_pal_body(overrides))
        # And the body the pool sends is the session's, tag aside.
        sent = key.body_for(uuid.uuid4())
        assert canonical_pal_body(sent) == canonical_pal_body(session_pal_body(overrides))

    def test_other_overrides_do_not_match(self) -> None:
        assert pal_body_fingerprint(session_pal_body(VOICE)) != pal_body_fingerprint(
            session_pal_body({})
        )

    def test_every_session_of_one_body_has_the_same_fingerprint(self) -> None:
        fingerprints = {pal_body_fingerprint(session_pal_body(VOICE)) for _ in range(5)}
        assert len(fingerprints) == 1

    def test_a_template_without_a_name_matches_too(self) -> None:
        nameless = body()
        del nameless["pal_name"]
        pooled = {**nameless, "pal_name": tags.pool_pal_name(None, uuid.uuid4())}
        planned = {**nameless, "pal_name": tags.pal_name(None, uuid.uuid4())}
        assert pal_body_fingerprint(pooled) == pal_body_fingerprint(planned)


class TestWhatCounts:
    def test_the_tag_is_left_out_whichever_it_is(self) -> None:
        session = body(pal_name=tags.pal_name("Coach", uuid.uuid4()))
        other_session = body(pal_name=tags.pal_name("Coach", uuid.uuid4()))
        pooled = body(pal_name=tags.pool_pal_name("Coach", uuid.uuid4()))
        assert (
            pal_body_fingerprint(session)
            == pal_body_fingerprint(other_session)
            == pal_body_fingerprint(pooled)
        )

    def test_the_base_name_counts(self) -> None:
        coach = body(pal_name=tags.pal_name("Coach", uuid.uuid4()))
        mentor = body(pal_name=tags.pal_name("Mentor", uuid.uuid4()))
        assert pal_body_fingerprint(coach) != pal_body_fingerprint(mentor)

    def test_the_base_name_is_compared_as_the_tag_writes_it(self) -> None:
        # The tag trims and shortens the base; both sides see the same result.
        long = "  " + "x" * 200
        assert pal_body_fingerprint(
            {"pal_name": tags.pal_name(long, uuid.uuid4())}
        ) == pal_body_fingerprint({"pal_name": tags.pool_pal_name(long, uuid.uuid4())})

    def test_key_order_does_not_count(self) -> None:
        a = {"system_prompt": "x", "layers": {"tts": {"a": 1, "b": 2}}}
        b = {"layers": {"tts": {"b": 2, "a": 1}}, "system_prompt": "x"}
        assert pal_body_fingerprint(a) == pal_body_fingerprint(b)

    def test_list_order_counts(self) -> None:
        assert pal_body_fingerprint({"document_tags": ["a", "b"]}) != pal_body_fingerprint(
            {"document_tags": ["b", "a"]}
        )

    @pytest.mark.parametrize(
        ("left", "right", "equal"),
        [
            (2, 2.0, True),  # one JSON number; jsonb gives 2.0 back as 2
            (1e20, 10**20, True),
            (0.5, 0.5, True),
            (0.5, 0.25, False),
            (1, True, False),  # a boolean is not a number
            ("1", 1, False),
        ],
    )
    def test_numbers_compare_as_json_numbers(self, left: Any, right: Any, equal: bool) -> None:
        a = {"layers": {"tts": {"voice_settings": {"speed": left}}}}
        b = {"layers": {"tts": {"voice_settings": {"speed": right}}}}
        assert (pal_body_fingerprint(a) == pal_body_fingerprint(b)) is equal

    def test_a_json_round_trip_keeps_the_fingerprint(self) -> None:
        planned = session_pal_body(VOICE)
        stored = json.loads(json.dumps(planned))
        assert pal_body_fingerprint(stored) == pal_body_fingerprint(planned)

    @pytest.mark.parametrize(
        "change",
        [
            {"system_prompt": "Another prompt."},
            {"default_face_id": "r0"},
            {"objectives_id": None},
            {"layers": {}},
            {"document_tags": ["faq", "pricing"]},
        ],
    )
    def test_any_other_field_counts(self, change: dict[str, Any]) -> None:
        assert pal_body_fingerprint(body(**change)) != pal_body_fingerprint(body())

    def test_the_fingerprint_is_a_sha256(self) -> None:
        fingerprint = pal_body_fingerprint(body())
        assert len(fingerprint) == 64
        int(fingerprint, 16)
