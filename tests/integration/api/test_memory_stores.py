"""Stable memory for ephemeral PALs: a returning user's sessions name the same Tavus
memory store, though each runs on a PAL of its own."""

from __future__ import annotations

import copy
from typing import Any

from tests.integration.api.test_key_scopes import assert_problem
from tests.integration.api.test_sessions import start
from tests.support.stack import PAL_TEMPLATE, Palisade, SimulatorHandle

MEMORY = "{tenant_id}-{external_ref}"


async def tenant_with_memory(palisade: Palisade, **conversation: Any) -> str:
    return await palisade.create_tenant(
        {
            "id": "acme",
            "name": "Acme",
            "profiles": {
                "tutor": {
                    "strategy": "ephemeral",
                    "pal_template": copy.deepcopy(PAL_TEMPLATE),
                    "allowed_overrides": ["system_prompt"],
                    "conversation": {"memory_stores": [MEMORY], **conversation},
                }
            },
            "default_profile": "tutor",
        }
    )


def received(simulator: SimulatorHandle, conversation_id: str) -> dict[str, Any]:
    """The create request the simulator received for the conversation."""
    request: dict[str, Any] = simulator.sim.conversation(conversation_id).request
    return request


async def test_a_returning_user_gets_the_same_memory_store_on_every_ephemeral_pal(
    palisade: Palisade, simulator: SimulatorHandle
) -> None:
    key = await tenant_with_memory(palisade)
    api = palisade.api_as(key)
    first = (await start(palisade, key, {"external_ref": "ana"})).json()
    await api.end_session(first["id"])
    second = (
        await start(
            palisade, key, {"external_ref": "ana", "overrides": {"system_prompt": "Be brief."}}
        )
    ).json()
    other = (await start(palisade, key, {"external_ref": "ben"})).json()

    assert first["pal_id"] != second["pal_id"]
    assert received(simulator, first["conversation_id"])["memory_stores"] == ["acme-ana"]
    assert received(simulator, second["conversation_id"])["memory_stores"] == ["acme-ana"]
    assert received(simulator, other["conversation_id"])["memory_stores"] == ["acme-ben"]


async def test_without_external_ref_the_start_is_refused_before_tavus(
    palisade: Palisade, simulator: SimulatorHandle
) -> None:
    key = await tenant_with_memory(palisade)

    response = await start(palisade, key, {})

    problem = assert_problem(response, 422, "external_ref_required")
    assert problem["path"] == "external_ref"
    assert simulator.conversations() == []
    assert simulator.live_pals() == []


async def test_an_unknown_placeholder_is_refused_when_the_profile_is_saved(
    palisade: Palisade,
) -> None:
    response = await palisade.api.create_tenant(
        {
            "id": "acme",
            "name": "Acme",
            "profiles": {
                "tutor": {
                    "strategy": "ephemeral",
                    "pal_template": copy.deepcopy(PAL_TEMPLATE),
                    "conversation": {"memory_stores": ["{user_email}"]},
                }
            },
        }
    )

    problem = assert_problem(response, 422, "invalid_profile")
    assert [(e["loc"], e["code"]) for e in problem["errors"]] == [
        (["conversation", "memory_stores", 0], "unknown_memory_placeholder")
    ]
