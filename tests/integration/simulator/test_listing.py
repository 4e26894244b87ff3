"""List endpoints as hard as Tavus's docs allow: no promised order, maximum ``limit``
or honoured ``page``, a listing that trails the objects, and accounts that made
thousands of objects before. Each behaviour over real sockets."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tavus_simulator import Simulator, SimulatorConfig
from tavus_simulator.config import Prefill
from tests.integration.simulator.conftest import PAL_BODY, Served

KEY = "list-key"
# Palisade's tags end names with "(palisade <uuid>)"; prefilled names must never look so.
PALISADE_TAG = re.compile(r"\(palisade ")


async def _configure(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.patch("/_sim/config", json=fields)
    assert response.status_code == 200, response.text
    config: dict[str, Any] = response.json()
    return config


async def _pal(client: httpx.AsyncClient, name: str) -> str:
    response = await client.post("/v2/pals", json={**PAL_BODY, "pal_name": name})
    assert response.status_code == 200, response.text
    pal_id: str = response.json()["pal_id"]
    return pal_id


async def _conversation(client: httpx.AsyncClient, pal_id: str, name: str) -> str:
    response = await client.post(
        "/v2/conversations", json={"pal_id": pal_id, "conversation_name": name}
    )
    assert response.status_code == 200, response.text
    conversation_id: str = response.json()["conversation_id"]
    return conversation_id


async def _page(client: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _ids(page: dict[str, Any], key: str) -> list[str]:
    return [item[key] for item in page["data"]]


async def _naive_scan(
    client: httpx.AsyncClient,
    path: str,
    key: str,
    limit: int,
    between_pages: Callable[[int], Awaitable[None]] | None = None,
    **params: Any,
) -> list[str]:
    """A pager that trusts the server: it reads as many pages as the first
    ``total_count`` promises and stops early on a short page."""
    first = await _page(client, path, limit=limit, page=1, **params)
    seen = _ids(first, key)
    pages = -(-first["total_count"] // limit)
    for number in range(2, pages + 1):
        if between_pages is not None:
            await between_pages(number)
        page = await _page(client, path, limit=limit, page=number, **params)
        seen += _ids(page, key)
        if len(page["data"]) < limit:
            break
    return seen


@pytest.fixture
async def api(served: Served) -> Any:
    async with served.client(headers={"x-api-key": KEY}, timeout=10) as client:
        yield client


class TestListOrder:
    async def test_newest_first_by_default(self, api: httpx.AsyncClient) -> None:
        ids = [await _pal(api, f"pal-{n}") for n in range(3)]

        page = await _page(api, "/v2/pals", pal_type="user")

        assert _ids(page, "pal_id") == ids[::-1]

    async def test_oldest_first_when_configured(self, api: httpx.AsyncClient) -> None:
        pal_id = await _pal(api, "pal")
        conversations = [await _conversation(api, pal_id, f"call-{n}") for n in range(3)]
        await _configure(api, list_order="oldest_first")

        pals = await _page(api, "/v2/pals")
        listed = await _page(api, "/v2/conversations", limit=2, page=2)

        assert _ids(pals, "pal_id") == ["pb87e71797da", pal_id]
        assert _ids(listed, "conversation_id") == conversations[2:]
        assert listed["total_count"] == 3

    async def test_an_unknown_order_is_refused(self, api: httpx.AsyncClient) -> None:
        response = await api.patch("/_sim/config", json={"list_order": "by_name"})
        assert response.status_code == 400


class TestMutationBetweenPages:
    async def test_oldest_first_with_deletions_mid_scan_loses_an_item(
        self, api: httpx.AsyncClient
    ) -> None:
        await _configure(api, list_order="oldest_first")
        pals = [await _pal(api, f"pal-{n}") for n in range(6)]
        wanted = pals[2]

        async def clean_up_the_first_page(number: int) -> None:
            if number == 2:
                for pal_id in pals[:2]:
                    assert (await api.delete(f"/v2/pals/{pal_id}")).status_code == 204

        seen = await _naive_scan(
            api, "/v2/pals", "pal_id", 2, clean_up_the_first_page, pal_type="user"
        )

        # Page 2 was computed from the live state: every later PAL moved up by two.
        assert seen == [pals[0], pals[1], pals[4], pals[5]]
        assert wanted not in seen
        assert (await api.get(f"/v2/pals/{wanted}")).status_code == 200

    async def test_newest_first_with_creations_mid_scan_shifts_items(
        self, api: httpx.AsyncClient
    ) -> None:
        pal_id = await _pal(api, "pal")
        older = [await _conversation(api, pal_id, f"call-{n}") for n in range(6)]
        limit = 2

        async def others_start_calls(number: int) -> None:
            if number == 2:
                for n in range(limit):
                    await _conversation(api, pal_id, f"new-call-{n}")

        seen = await _naive_scan(
            api, "/v2/conversations", "conversation_id", limit, others_start_calls
        )

        # Page 2 repeats page 1, and the pages the first total_count promised end
        # before the oldest conversations.
        assert seen == [older[5], older[4], older[5], older[4], older[3], older[2]]
        assert older[0] not in seen
        assert older[1] not in seen


class TestMaxLimit:
    async def test_limit_above_the_cap_gets_the_cap_silently(self, api: httpx.AsyncClient) -> None:
        await _configure(api, list_max_limit=3, list_order="oldest_first")
        pals = [await _pal(api, f"pal-{n}") for n in range(7)]

        first = await _page(api, "/v2/pals", pal_type="user", limit=100, page=1)
        second = await _page(api, "/v2/pals", pal_type="user", limit=100, page=2)
        small = await _page(api, "/v2/pals", pal_type="user", limit=2, page=2)

        assert _ids(first, "pal_id") == pals[:3]
        # Pages are counted in what the server serves, not in what was asked.
        assert _ids(second, "pal_id") == pals[3:6]
        assert _ids(small, "pal_id") == pals[2:4]
        assert first["total_count"] == 7

    async def test_a_pager_stopping_at_a_short_page_misses_the_rest(
        self, api: httpx.AsyncClient
    ) -> None:
        await _configure(api, list_max_limit=3)
        pals = [await _pal(api, f"pal-{n}") for n in range(7)]

        seen = await _naive_scan(api, "/v2/pals", "pal_id", 100, pal_type="user")

        assert seen == pals[::-1][:3]

    async def test_cap_must_be_positive(self, api: httpx.AsyncClient) -> None:
        response = await api.patch("/_sim/config", json={"list_max_limit": 0})
        assert response.status_code == 400


class TestIgnoredPage:
    async def test_pages_past_the_bound_answer_page_one(self, api: httpx.AsyncClient) -> None:
        await _configure(api, list_page_ignored_after=1)
        pals = [await _pal(api, f"pal-{n}") for n in range(5)]

        first = await _page(api, "/v2/pals", pal_type="user", limit=2, page=1)
        second = await _page(api, "/v2/pals", pal_type="user", limit=2, page=2)

        assert _ids(first, "pal_id") == [pals[4], pals[3]]
        assert _ids(second, "pal_id") == _ids(first, "pal_id")
        assert second["total_count"] == 5

    async def test_zero_ignores_page_entirely(self, api: httpx.AsyncClient) -> None:
        await _configure(api, list_page_ignored_after=0)
        pal_id = await _pal(api, "pal")
        conversations = [await _conversation(api, pal_id, f"call-{n}") for n in range(3)]

        third = await _page(api, "/v2/conversations", limit=1, page=3)

        assert _ids(third, "conversation_id") == [conversations[2]]


class TestListLag:
    async def test_a_fresh_object_is_listed_only_after_the_lag(
        self, api: httpx.AsyncClient
    ) -> None:
        await _configure(api, list_lag_s=30)
        pal_id = await _pal(api, "fresh")

        hidden = await _page(api, "/v2/pals", pal_type="user")
        got = await api.get(f"/v2/pals/{pal_id}")
        await api.post("/_sim/clock/advance", json={"seconds": 30})
        shown = await _page(api, "/v2/pals", pal_type="user")

        assert hidden == {"data": [], "total_count": 0}
        assert got.status_code == 200
        assert _ids(shown, "pal_id") == [pal_id]
        assert shown["total_count"] == 1

    async def test_deletions_and_endings_trail_by_the_same_lag(
        self, api: httpx.AsyncClient
    ) -> None:
        pal_id = await _pal(api, "pal")
        conversation_id = await _conversation(api, pal_id, "call")
        await _configure(api, list_lag_s=30)
        await api.post(f"/v2/conversations/{conversation_id}/end")
        await api.delete(f"/v2/pals/{pal_id}")

        active = await _page(api, "/v2/conversations", status="active")
        ended = await _page(api, "/v2/conversations", status="ended")
        pals = await _page(api, "/v2/pals", pal_type="user")
        await api.post("/_sim/clock/advance", json={"seconds": 30})
        active_later = await _page(api, "/v2/conversations", status="active")
        ended_later = await _page(api, "/v2/conversations", status="ended")
        pals_later = await _page(api, "/v2/pals", pal_type="user")

        assert _ids(active, "conversation_id") == [conversation_id]
        assert ended["total_count"] == 0
        assert _ids(pals, "pal_id") == [pal_id]
        assert active_later["total_count"] == 0
        assert _ids(ended_later, "conversation_id") == [conversation_id]
        assert pals_later == {"data": [], "total_count": 0}

    async def test_changes_reach_the_listing_in_the_order_they_happened(
        self, api: httpx.AsyncClient
    ) -> None:
        await _configure(api, list_lag_s=30)
        created = await _pal(api, "created-under-a-lag")
        await _configure(api, list_lag_s=0)
        await api.delete(f"/v2/pals/{created}")

        # The deletion waits behind the creation it follows: never listed, never a ghost.
        before = await _page(api, "/v2/pals", pal_type="user")
        await api.post("/_sim/clock/advance", json={"seconds": 30})
        after = await _page(api, "/v2/pals", pal_type="user")

        assert before["total_count"] == 0
        assert after["total_count"] == 0


class TestPrefill:
    async def test_five_thousand_conversations_in_well_under_a_second(
        self, api: httpx.AsyncClient
    ) -> None:
        started = time.perf_counter()
        response = await api.post(
            "/_sim/prefill",
            json={"api_key": KEY, "conversations": 5000, "active_conversations": 2, "pals": 40},
        )
        elapsed = time.perf_counter() - started

        assert response.status_code == 200, response.text
        assert response.json() == {
            "api_key": KEY,
            "conversations": 5000,
            "active_conversations": 2,
            "pals": 40,
        }
        assert elapsed < 1.0
        everything = await _page(api, "/v2/conversations", limit=100)
        active = await _page(api, "/v2/conversations", status="active", limit=100)
        pals = await _page(api, "/v2/pals", pal_type="user", limit=100)
        assert everything["total_count"] == 5000
        assert active["total_count"] == 2
        assert pals["total_count"] == 40
        state = (await api.get("/_sim/state")).json()
        assert state["accounts"][KEY] == {"active_conversations": 2}

    async def test_prefilled_objects_are_older_and_never_look_like_palisade_tags(
        self, api: httpx.AsyncClient
    ) -> None:
        pal_id = await _pal(api, "mine")
        mine = await _conversation(api, pal_id, "my call")
        await api.post("/_sim/prefill", json={"api_key": KEY, "conversations": 300, "pals": 30})

        newest = await _page(api, "/v2/conversations", limit=1)
        await _configure(api, list_order="oldest_first")
        oldest = await _page(api, "/v2/conversations", limit=100)
        pals = await _page(api, "/v2/pals", pal_type="user", limit=100)

        assert _ids(newest, "conversation_id") == [mine]
        names = [c["conversation_name"] for c in oldest["data"]]
        assert names[:2] == ["old-call-00001", "old-call-00002"]
        assert all(c["status"] == "ended" for c in oldest["data"])
        assert all(not PALISADE_TAG.search(p["pal_name"]) for p in pals["data"])
        assert pals["data"][0]["pal_name"] == "old-pal-00001"
        assert oldest["data"][0]["created_at"] < oldest["data"][1]["created_at"]

    async def test_active_prefilled_conversations_hold_slots(self, api: httpx.AsyncClient) -> None:
        pal_id = await _pal(api, "mine")
        await _configure(api, max_concurrent_conversations=2)
        await api.post(
            "/_sim/prefill", json={"api_key": KEY, "conversations": 3, "active_conversations": 2}
        )

        refused = await api.post("/v2/conversations", json={"pal_id": pal_id})

        assert refused.status_code == 400
        assert refused.json() == {"message": "User has reached maximum concurrent conversations"}

    async def test_bad_prefill_requests_are_refused(self, api: httpx.AsyncClient) -> None:
        too_many_active = await api.post(
            "/_sim/prefill",
            json={"api_key": KEY, "conversations": 1, "active_conversations": 2},
        )
        no_key = await api.post("/_sim/prefill", json={"conversations": 1})

        assert too_many_active.status_code == 400
        assert no_key.status_code == 400


class TestPrefillAtStartUp:
    async def test_config_prefill_runs_at_start_and_after_reset(self) -> None:
        sim = Simulator(
            SimulatorConfig(seed=5, prefill=(Prefill(api_key="k", conversations=20, pals=3),))
        )
        try:
            first = sorted(sim.store.conversations)
            sim.reset()
            again = sorted(sim.store.conversations)
        finally:
            await sim.aclose()

        assert len(first) == 20
        assert again == first
        assert len([p for p in sim.store.pals.values() if p.pal_type == "user"]) == 3


class TestPagingPerformance:
    async def test_a_page_costs_the_same_whatever_the_account_holds(self) -> None:
        sim = Simulator(SimulatorConfig(seed=5))
        try:
            sim.prefill(Prefill(api_key="k", conversations=20000, active_conversations=10))
            account = sim.store.account("k")
            timings = []
            for page in (1, 2, 500, 1000, 1999) * 4:
                started = time.perf_counter()
                data, total = sim.store.list_conversations(account, "ended", page, 10)
                timings.append(time.perf_counter() - started)
                assert (len(data), total) == (10, 19990)
        finally:
            await sim.aclose()

        # Filtering all 20,000 records per request costs milliseconds; slicing a
        # kept order costs microseconds.
        assert statistics.median(timings) < 0.0005
