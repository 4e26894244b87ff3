"""A profile's memory-store templates: checked when the profile is saved, filled into the
conversation's ``memory_stores`` when a session is resolved."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.domain.profiles.errors import ExternalRefRequired, validation_problems
from app.domain.profiles.resolution import resolve
from app.domain.profiles.schemas import Profile
from app.domain.profiles.warm_pool import plan_pool
from tests.unit.profiles.builders import profile, profile_data, request


def _with_memory(*templates: str, strategy: str = "ephemeral", **fields: Any) -> Profile:
    return profile(strategy, conversation={"memory_stores": list(templates)}, **fields)


def _problems(*templates: Any) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as caught:
        Profile.model_validate(
            profile_data("ephemeral", conversation={"memory_stores": list(templates)})
        )
    return [{"loc": p["loc"], "code": p["code"]} for p in validation_problems(caught.value)]


class TestSaved:
    @pytest.mark.parametrize(
        "template",
        [
            "{tenant_id}-{external_ref}",
            "{profile}:{external_ref}",
            "{external_ref}",
            "coach-shared",
            "{{literal}}-{external_ref}",
        ],
    )
    def test_known_placeholders_are_accepted(self, template: str) -> None:
        saved = _with_memory(template)

        assert saved.conversation.memory_stores == [template]

    @pytest.mark.parametrize("placeholder", ["user", "session_id", "0", ""])
    def test_an_unknown_placeholder_is_refused(self, placeholder: str) -> None:
        assert _problems(f"{{{placeholder}}}-x") == [
            {
                "loc": ["conversation", "memory_stores", 0],
                "code": "unknown_memory_placeholder",
            }
        ]

    @pytest.mark.parametrize(
        "template",
        ["{external_ref", "external_ref}", "{external_ref!r}", "{external_ref:>10}", "{a.b}"],
    )
    def test_a_template_that_is_not_a_plain_template_is_refused(self, template: str) -> None:
        assert _problems(template)[0]["code"] in (
            "invalid_memory_store",
            "unknown_memory_placeholder",
        )

    def test_the_whole_list_is_bounded(self) -> None:
        problems = _problems(*[f"s{i}" for i in range(11)])

        assert problems[0]["loc"] == ["conversation", "memory_stores"]

    def test_empty_and_overlong_templates_are_refused(self) -> None:
        assert [p["code"] for p in _problems("", "x" * 201)] == ["too_short", "too_long"]

    def test_a_profile_without_memory_is_stored_as_before(self) -> None:
        dumped = profile("ephemeral").model_dump(mode="json")

        assert "memory_stores" not in dumped["conversation"]

    def test_a_profile_with_memory_keeps_it(self) -> None:
        dumped = _with_memory("{external_ref}").model_dump(mode="json")

        assert Profile.model_validate(dumped).conversation.memory_stores == ["{external_ref}"]


class TestResolved:
    def test_the_templates_are_filled_from_the_tenant_profile_and_request(self) -> None:
        resolution = resolve(
            _with_memory("{tenant_id}-{external_ref}", "{profile}/{{all}}", "fixed"),
            request(external_ref="user-42"),
            profile_name="coach",
            tenant_id="acme",
        )

        assert resolution.conversation_body["memory_stores"] == [
            "acme-user-42",
            "coach/{all}",
            "fixed",
        ]

    def test_the_same_user_gets_the_same_stores_whatever_the_overrides(self) -> None:
        memory = _with_memory("{tenant_id}-{external_ref}", allowed_overrides=["system_prompt"])
        first = resolve(memory, request(external_ref="ana"), profile_name="coach", tenant_id="acme")
        second = resolve(
            memory,
            request(external_ref="ana", overrides={"system_prompt": "Be brief."}),
            profile_name="coach",
            tenant_id="acme",
        )

        assert first.conversation_body["memory_stores"] == ["acme-ana"]
        assert second.conversation_body["memory_stores"] == ["acme-ana"]

    def test_a_template_needing_external_ref_needs_it_in_the_request(self) -> None:
        with pytest.raises(ExternalRefRequired) as caught:
            resolve(
                _with_memory("{tenant_id}-{external_ref}"),
                request(),
                profile_name="coach",
                tenant_id="acme",
            )

        assert caught.value.status_code == 422
        assert caught.value.code == "external_ref_required"

    def test_templates_without_external_ref_need_none(self) -> None:
        resolution = resolve(
            _with_memory("{tenant_id}-{profile}"), request(), profile_name="coach", tenant_id="t"
        )

        assert resolution.conversation_body["memory_stores"] == ["t-coach"]

    def test_a_profile_without_memory_sends_none(self) -> None:
        resolution = resolve(
            profile("ephemeral"), request(external_ref="ana"), profile_name="c", tenant_id="t"
        )

        assert "memory_stores" not in resolution.conversation_body

    def test_warm_pool_plans_need_no_external_ref(self) -> None:
        pooled = _with_memory("{external_ref}", warm_pool={"size": 1})

        plan = plan_pool(pooled, "coach")

        assert plan.problems == ()
        assert len(plan.keys) == 1
