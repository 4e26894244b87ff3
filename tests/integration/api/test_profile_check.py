"""POST /tenants/{id}/profiles/{name}/check against the simulator: what Tavus says, for free."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from app.tavus.models import PalCreate
from tavus_simulator import ErrorFault, SucceedThenDropFault
from tests.support.stack import ADMIN_HEADERS, FAST_RETRY, PAL_TEMPLATE, Palisade, SimulatorHandle

TENANT_KEY = "tenant-own-tavus-key-0123"


def ephemeral(**changes: Any) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "strategy": "ephemeral",
        "pal_template": copy.deepcopy(PAL_TEMPLATE),
        "conversation": {"properties": {"max_call_duration": 600}},
    }
    profile.update(changes)
    return profile


async def persistent_pal(palisade: Palisade, api_key: str | None = None) -> str:
    tavus = palisade.runtime.tavus
    client = tavus.with_api_key(api_key) if api_key else tavus
    body = PalCreate(default_face_id="r90bbd427f71", pal_name="Persistent", system_prompt="hi")
    return (await client.create_pal(body)).pal_id


async def make_tenant(
    palisade: Palisade, profiles: dict[str, dict[str, Any]], **extra: Any
) -> None:
    body = {"id": "acme", "name": "Acme", "profiles": profiles, **extra}
    created = await palisade.admin("POST", "/tenants", json=body)
    assert created.status_code == 201, created.text


async def check(palisade: Palisade, profile: str, tenant: str = "acme") -> httpx.Response:
    return await palisade.admin("POST", f"/tenants/{tenant}/profiles/{profile}/check")


def steps(report: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(step["step"], step["ok"]) for step in report["steps"]]


def slots_held(simulator: SimulatorHandle) -> int:
    accounts = simulator.sim.snapshot()["accounts"].values()
    return sum(account["active_conversations"] for account in accounts)


class TestTemplate:
    async def test_a_good_template_passes_and_leaves_nothing_behind(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        await make_tenant(palisade, {"voices": ephemeral()})

        response = await check(palisade, "voices")

        assert response.status_code == 200, response.text
        report = response.json()
        assert report["profile"] == "voices"
        assert report["ok"] is True
        assert steps(report) == [
            ("create_pal", True),
            ("create_test_conversation", True),
            ("delete_pal", True),
        ]
        pal_id = report["steps"][0]["id"]
        assert report["steps"][2]["id"] == pal_id
        assert all(s["tavus_status"] is None and s["message"] is None for s in report["steps"])
        assert simulator.live_pals() == []
        (conversation,) = simulator.conversations()
        assert conversation["conversation_id"] == report["steps"][1]["id"]
        assert conversation["pal_id"] == pal_id
        assert conversation["test_mode"] is True
        assert conversation["status"] == "ended"
        assert conversation["holds_slot"] is False
        assert conversation["end_calls"] == 0
        # The profile's conversation defaults are what the check sends.
        assert conversation["request"]["properties"]["max_call_duration"] == 600
        assert slots_held(simulator) == 0

    async def test_a_template_tavus_refuses_is_reported_with_its_message(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        await make_tenant(palisade, {"voices": ephemeral()})
        simulator.sim.add_fault(
            "pal.create", ErrorFault(status=400, body={"message": "unknown voice voice-a"})
        )

        response = await check(palisade, "voices")

        assert response.status_code == 200
        report = response.json()
        assert report["ok"] is False
        assert report["steps"] == [
            {
                "step": "create_pal",
                "ok": False,
                "tavus_status": 400,
                "message": "unknown voice voice-a",
                "id": None,
            }
        ]
        assert simulator.live_pals() == []
        assert simulator.conversations() == []

    async def test_a_failed_test_conversation_still_deletes_the_pal(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        await make_tenant(palisade, {"voices": ephemeral()})
        simulator.sim.add_fault(
            "conversation.create", ErrorFault(status=400, body={"message": "face not ready"})
        )

        report = (await check(palisade, "voices")).json()

        assert report["ok"] is False
        assert steps(report) == [
            ("create_pal", True),
            ("create_test_conversation", False),
            ("delete_pal", True),
        ]
        assert report["steps"][1]["tavus_status"] == 400
        assert report["steps"][1]["message"] == "face not ready"
        assert simulator.live_pals() == []

    async def test_a_pal_created_but_unanswered_is_found_and_deleted(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        await make_tenant(palisade, {"voices": ephemeral()})
        simulator.sim.add_fault("pal.create", SucceedThenDropFault(times=1))

        report = (await check(palisade, "voices")).json()

        assert steps(report) == [("create_pal", False), ("delete_pal", True)]
        assert report["ok"] is False
        (made,) = simulator.sim.snapshot()["pals"]
        assert report["steps"][1]["id"] == made["pal_id"]
        assert simulator.live_pals() == []
        assert simulator.conversations() == []

    async def test_a_failed_delete_is_reported(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        await make_tenant(palisade, {"voices": ephemeral()})
        simulator.sim.add_fault("pal.delete", ErrorFault(status=400, body={"message": "locked"}))

        report = (await check(palisade, "voices")).json()

        assert report["ok"] is False
        delete = report["steps"][-1]
        assert delete["step"] == "delete_pal"
        assert delete["ok"] is False
        assert delete["tavus_status"] == 400
        assert "locked" in delete["message"]
        assert delete["id"] == report["steps"][0]["id"]

    async def test_fields_the_client_does_not_model_reach_tavus(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        # Documented PAL fields Palisade's Tavus client has no model for pass through.
        conferencing = {"username": "acme-anna", "provider": "zoom"}
        template = {**PAL_TEMPLATE, "layers": {"conferencing": conferencing}}
        await make_tenant(palisade, {"voices": ephemeral(pal_template=template)})

        report = (await check(palisade, "voices")).json()

        assert report["ok"] is True
        created = simulator.sim.pal(report["steps"][0]["id"])
        assert created.request["layers"]["conferencing"] == conferencing


class TestPersistentPal:
    async def test_reuse_reads_the_pal_and_never_deletes_it(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        pal_id = await persistent_pal(palisade)
        await make_tenant(palisade, {"coach": {"strategy": "reuse", "pal_id": pal_id}})

        report = (await check(palisade, "coach")).json()

        assert report["ok"] is True
        assert steps(report) == [("get_pal", True), ("create_test_conversation", True)]
        assert report["steps"][0]["id"] == pal_id
        assert [p["pal_id"] for p in simulator.live_pals()] == [pal_id]
        assert simulator.sim.pal(pal_id).delete_calls == 0
        assert simulator.sim.call_log("pal.delete") == []
        (conversation,) = simulator.conversations()
        assert conversation["pal_id"] == pal_id
        assert conversation["test_mode"] is True
        assert conversation["status"] == "ended"
        assert slots_held(simulator) == 0

    async def test_auto_checks_the_template_then_the_persistent_pal(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        pal_id = await persistent_pal(palisade)
        profile = {"strategy": "auto", "pal_id": pal_id, "pal_template": PAL_TEMPLATE}
        await make_tenant(palisade, {"smart": profile})

        report = (await check(palisade, "smart")).json()

        assert report["ok"] is True
        assert steps(report) == [
            ("create_pal", True),
            ("create_test_conversation", True),
            ("delete_pal", True),
            ("get_pal", True),
            ("create_test_conversation", True),
        ]
        assert report["steps"][2]["id"] != pal_id
        assert [p["pal_id"] for p in simulator.live_pals()] == [pal_id]
        assert simulator.sim.pal(pal_id).delete_calls == 0
        assert all(c["test_mode"] and c["status"] == "ended" for c in simulator.conversations())

    async def test_a_pal_gone_from_tavus_is_reported(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        pal_id = await persistent_pal(palisade)
        await make_tenant(palisade, {"coach": {"strategy": "reuse", "pal_id": pal_id}})
        await palisade.runtime.tavus.delete_pal(pal_id)

        response = await check(palisade, "coach")

        assert response.status_code == 200
        report = response.json()
        assert report["ok"] is False
        assert report["steps"] == [
            {
                "step": "get_pal",
                "ok": False,
                "tavus_status": 400,
                "message": "Invalid pal_id",
                "id": pal_id,
            }
        ]
        assert simulator.conversations() == []


class TestTenantTavusKey:
    async def test_the_check_runs_on_the_tenants_own_account(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        pal_id = await persistent_pal(palisade, api_key=TENANT_KEY)
        profiles = {"smart": {"strategy": "auto", "pal_id": pal_id, "pal_template": PAL_TEMPLATE}}
        await make_tenant(palisade, profiles, tavus_api_key=TENANT_KEY)

        report = (await check(palisade, "smart")).json()

        assert report["ok"] is True, report
        state = simulator.sim.snapshot()
        assert {p["account"] for p in state["pals"]} == {TENANT_KEY}
        assert {c["account"] for c in state["conversations"]} == {TENANT_KEY}
        assert TENANT_KEY not in str(report)


class TestErrors:
    async def test_unknown_profile_is_404(self, palisade: Palisade) -> None:
        await make_tenant(palisade, {"voices": ephemeral()})
        response = await check(palisade, "nope")
        assert response.status_code == 404
        assert response.json()["code"] == "profile_not_found"

    async def test_unknown_tenant_is_404(self, palisade: Palisade) -> None:
        response = await check(palisade, "voices", tenant="nobody")
        assert response.status_code == 404
        assert response.json()["code"] == "tenant_not_found"

    @pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
    async def test_the_admin_token_is_required(
        self, palisade: Palisade, simulator: SimulatorHandle, headers: dict[str, str]
    ) -> None:
        await make_tenant(palisade, {"voices": ephemeral()})
        response = await palisade.client.post(
            "/tenants/acme/profiles/voices/check", headers=headers
        )
        assert response.status_code == 401
        assert simulator.sim.call_log("pal.create") == []

    async def test_a_tenant_key_is_not_enough(self, palisade: Palisade) -> None:
        await make_tenant(palisade, {"voices": ephemeral()})
        key = await palisade.admin("POST", "/tenants/acme/api-keys", json={})
        response = await palisade.client.post(
            "/tenants/acme/profiles/voices/check",
            headers={"Authorization": f"Bearer {key.json()['key']}"},
        )
        assert response.status_code == 401


@pytest.fixture
async def unreachable_tavus(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Palisade in-process with Tavus on a closed port (the default test settings)."""
    app = create_app(settings, tavus_retry=FAST_RETRY)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://palisade.test", headers=ADMIN_HEADERS
        ) as client:
            yield client


async def test_tavus_unreachable_for_the_first_step_is_502(
    unreachable_tavus: httpx.AsyncClient,
) -> None:
    body = {"id": "acme", "name": "Acme", "profiles": {"voices": ephemeral()}}
    assert (await unreachable_tavus.post("/tenants", json=body)).status_code == 201

    response = await unreachable_tavus.post("/tenants/acme/profiles/voices/check")

    assert response.status_code == 502
    assert response.json()["code"] == "upstream_error"
