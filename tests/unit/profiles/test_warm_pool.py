"""The `warm_pool` section of a profile: its format, its save-time checks, its keys."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from app.domain.profiles.errors import InvalidProfile
from app.domain.profiles.schemas import Profile
from app.domain.profiles.validation import validate_profile
from app.domain.profiles.warm_pool import plan_pool
from tests.unit.profiles.builders import profile, profile_data

ALLOWED = ["layers.tts.external_voice_id", "system_prompt"]
VOICE_B = {"layers": {"tts": {"external_voice_id": "voice-b"}}}
VOICE_C = {"layers": {"tts": {"external_voice_id": "voice-c"}}}


def pooled(strategy: str = "ephemeral", **pool: Any) -> dict[str, Any]:
    return profile_data(strategy, allowed_overrides=ALLOWED, warm_pool=pool)


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(InvalidProfile) as caught:
        validate_profile("p", data)
    return [(".".join(map(str, p["loc"])), p["code"]) for p in caught.value.extra["errors"]]


class TestFormat:
    def test_defaults(self) -> None:
        pool = profile("ephemeral", warm_pool={}).warm_pool
        assert pool is not None
        assert (pool.size, pool.ttl_seconds, pool.variants) == (1, 3600, [])

    def test_a_profile_without_a_pool_is_stored_as_before(self) -> None:
        assert "warm_pool" not in profile("ephemeral").model_dump(mode="json")

    def test_a_pool_is_stored_and_read_back(self) -> None:
        data = pooled(size=2, ttl_seconds=600, variants=[{"name": "b", "overrides": VOICE_B}])
        stored = validate_profile("p", data).model_dump(mode="json")
        assert stored["warm_pool"] == {
            "size": 2,
            "ttl_seconds": 600,
            "variants": [{"name": "b", "overrides": VOICE_B, "size": None}],
        }
        assert Profile.model_validate(stored) == validate_profile("p", data)

    @pytest.mark.parametrize(
        ("pool", "where", "code"),
        [
            ({"size": -1}, "warm_pool.size", "out_of_range"),
            ({"size": 21}, "warm_pool.size", "out_of_range"),
            ({"ttl_seconds": 59}, "warm_pool.ttl_seconds", "out_of_range"),
            ({"ttl_seconds": 86_401}, "warm_pool.ttl_seconds", "out_of_range"),
            ({"size": "2"}, "warm_pool.size", "invalid_type"),
            ({"colour": "red"}, "warm_pool.colour", "unknown_field"),
            (
                {"variants": [{"name": "B!", "overrides": {}}]},
                "warm_pool.variants.0.name",
                "invalid_format",
            ),
            ({"variants": [{"overrides": VOICE_B}]}, "warm_pool.variants.0.name", "missing_field"),
            (
                {"variants": [{"name": "b", "overrides": VOICE_B, "size": 99}]},
                "warm_pool.variants.0.size",
                "out_of_range",
            ),
            (
                {"variants": [{"name": f"v{i}", "overrides": {}} for i in range(21)]},
                "warm_pool.variants",
                "too_long",
            ),
        ],
    )
    def test_bad_values_are_refused_with_a_code(
        self, pool: dict[str, Any], where: str, code: str
    ) -> None:
        assert (where, code) in problems(pooled(**pool))


class TestVariantsAreResolvedLikeSessions:
    def test_a_variant_a_session_could_not_send_is_refused(self) -> None:
        data = pooled(variants=[{"name": "llm", "overrides": {"layers": {"llm": {"model": "x"}}}}])
        assert problems(data) == [("warm_pool.variants.0.overrides", "warm_pool_variant_invalid")]

    def test_a_variant_with_an_invalid_value_is_refused(self) -> None:
        data = pooled(variants=[{"name": "bad", "overrides": {"system_prompt": 42}}])
        assert problems(data) == [("warm_pool.variants.0.overrides", "warm_pool_variant_invalid")]

    def test_under_auto_a_variant_needs_overrides(self) -> None:
        data = pooled("auto", variants=[{"name": "plain", "overrides": {}}])
        assert problems(data) == [("warm_pool.variants.0.overrides", "warm_pool_variant_invalid")]

    def test_a_variant_equal_to_the_template_is_a_duplicate(self) -> None:
        data = pooled(variants=[{"name": "same", "overrides": {}}])
        assert problems(data) == [("warm_pool.variants.0.overrides", "warm_pool_variant_duplicate")]

    def test_two_variants_of_one_body_are_duplicates(self) -> None:
        data = pooled(
            variants=[{"name": "b", "overrides": VOICE_B}, {"name": "b2", "overrides": VOICE_B}]
        )
        assert problems(data) == [("warm_pool.variants.1.overrides", "warm_pool_variant_duplicate")]

    def test_two_variants_of_one_name_are_duplicates(self) -> None:
        data = pooled(
            variants=[{"name": "b", "overrides": VOICE_B}, {"name": "b", "overrides": VOICE_C}]
        )
        assert problems(data) == [("warm_pool.variants.1.name", "warm_pool_variant_duplicate")]

    def test_every_problem_is_reported(self) -> None:
        data = pooled(
            variants=[
                {"name": "llm", "overrides": {"layers": {"llm": {"model": "x"}}}},
                {"name": "same", "overrides": {}},
            ]
        )
        assert [code for _, code in problems(data)] == [
            "warm_pool_variant_invalid",
            "warm_pool_variant_duplicate",
        ]

    def test_reuse_ignores_the_pool(self) -> None:
        data = profile_data(
            "reuse", warm_pool={"variants": [{"name": "x", "overrides": {"nope": 1}}]}
        )
        assert validate_profile("p", data).warm_pool is not None
        assert plan_pool(Profile.model_validate(data), "p").keys == ()


class TestKeys:
    def test_ephemeral_pools_the_template_and_each_variant(self) -> None:
        chosen = profile(
            "ephemeral",
            allowed_overrides=ALLOWED,
            warm_pool={
                "size": 2,
                "variants": [
                    {"name": "b", "overrides": VOICE_B},
                    {"name": "c", "overrides": VOICE_C, "size": 5},
                ],
            },
        )
        keys = plan_pool(chosen, "p").keys
        assert [(k.variant, k.size) for k in keys] == [(None, 2), ("b", 2), ("c", 5)]
        assert len({k.fingerprint for k in keys}) == 3
        assert keys[1].pal_body["layers"]["tts"]["external_voice_id"] == "voice-b"

    def test_auto_pools_only_its_variants(self) -> None:
        chosen = profile(
            "auto",
            allowed_overrides=ALLOWED,
            warm_pool={"variants": [{"name": "b", "overrides": VOICE_B}]},
        )
        assert [k.variant for k in plan_pool(chosen, "p").keys] == ["b"]

    def test_no_pool_no_keys(self) -> None:
        assert plan_pool(profile("ephemeral"), "p").keys == ()

    def test_the_pool_name_carries_the_template_name_and_the_pool_tag(self) -> None:
        [key] = plan_pool(profile("ephemeral", warm_pool={}), "p").keys
        pool_id = uuid.uuid4()
        assert key.body_for(pool_id)["pal_name"] == f"Coach (palisade pool {pool_id})"
        assert key.pal_name(pool_id) == key.body_for(pool_id)["pal_name"]
