"""Per-tenant Tavus keys: ``with_api_key`` views are separate accounts on the simulator."""

from __future__ import annotations

import pytest

from app.tavus.client import TavusClient
from app.tavus.errors import TavusConcurrencyLimit, TavusNotFound
from tests.integration.tavus.conftest import (
    API_KEY,
    OTHER_KEY,
    conversation_body,
    pal_body,
)
from tests.support.stack import SimulatorHandle


async def test_each_key_sees_only_its_own_pals(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    other = tavus.with_api_key(OTHER_KEY)

    mine = await tavus.create_pal(pal_body("Shared name"))
    theirs = await other.create_pal(pal_body("Shared name"))

    assert [p.pal_id for p in (await tavus.list_pals(pal_type="user")).data] == [mine.pal_id]
    assert [p.pal_id for p in (await other.list_pals(pal_type="user")).data] == [theirs.pal_id]
    found_by_other = await other.find_pal_by_name("Shared name")
    assert found_by_other is not None
    assert found_by_other.pal_id == theirs.pal_id
    with pytest.raises(TavusNotFound):
        await other.get_pal(mine.pal_id)
    with pytest.raises(TavusNotFound):
        await other.delete_pal(mine.pal_id)

    assert simulator.sim.pal(mine.pal_id).deleted_at is None
    assert simulator.sim.pal(mine.pal_id).account == API_KEY
    assert simulator.sim.pal(theirs.pal_id).account == OTHER_KEY
    assert [c.account for c in simulator.sim.call_log("pal.create")] == [API_KEY, OTHER_KEY]


async def test_each_key_has_its_own_conversations_and_slots(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    simulator.sim.configure(max_concurrent_conversations=1)
    other = tavus.with_api_key(OTHER_KEY)
    my_pal = (await tavus.create_pal(pal_body())).pal_id
    their_pal = (await other.create_pal(pal_body())).pal_id

    mine = await tavus.create_conversation(conversation_body(my_pal, "tenant-session"))
    # One account at its limit does not hold back another.
    theirs = await other.create_conversation(conversation_body(their_pal, "tenant-session"))
    with pytest.raises(TavusConcurrencyLimit):
        await tavus.create_conversation(conversation_body(my_pal))
    # Nor can one tenant use another's PAL, or see or end its conversations.
    with pytest.raises(TavusNotFound):
        await other.create_conversation(conversation_body(my_pal))
    with pytest.raises(TavusNotFound):
        await other.end_conversation(mine.conversation_id)

    found = await other.find_conversation_by_name("tenant-session")
    assert found is not None
    assert found.conversation_id == theirs.conversation_id
    assert simulator.sim.conversation(mine.conversation_id).status == "active"
    assert simulator.sim.snapshot()["accounts"] == {
        API_KEY: {"active_conversations": 1},
        OTHER_KEY: {"active_conversations": 1},
    }


async def test_a_view_leaves_the_original_client_on_its_key(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    tavus.with_api_key(OTHER_KEY)

    await tavus.list_pals()

    assert [c.account for c in simulator.sim.call_log("pal.list")] == [API_KEY]
