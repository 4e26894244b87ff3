"""The admin API of tenants' webhook endpoints and deliveries, hostile input included."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from standardwebhooks import Webhook

from app.main import create_app
from tests.conftest import PalisadeFactory, make_settings
from tests.integration.api.test_hostile_input import SESSION_CURSORS
from tests.integration.api.test_key_scopes import assert_problem
from tests.integration.api.test_sessions import setup_tenant, start
from tests.support.client import PalisadeClient
from tests.support.receiver import Receiver, receiver_process
from tests.support.stack import ADMIN_HEADERS, Palisade
from tests.support.wait import until

PRODUCTION_ADMIN = "production-admin-token-0123456789"
PRODUCTION = {
    "PALISADE_MODE": "production",
    "ADMIN_TOKEN": PRODUCTION_ADMIN,
    "SECRET_KEY": "production-secret-key-0123456789-0123456789",
}


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    with receiver_process(tmp_path) as running:
        yield running


@pytest.fixture
async def production(database_url: str) -> AsyncIterator[PalisadeClient]:
    """The admin API of a production-mode Palisade, in process."""
    settings = make_settings(database_url, **PRODUCTION).model_copy(update={"reconciler": False})
    api: FastAPI = create_app(settings)
    async with api.router.lifespan_context(api):
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://palisade.test") as c:
            admin = PalisadeClient(c, PRODUCTION_ADMIN)
            created = await admin.create_tenant({"id": "acme", "name": "Acme"})
            assert created.status_code == 201, created.text
            yield admin


class TestEndpoints:
    async def test_created_with_a_secret_shown_once(self, palisade: Palisade) -> None:
        await setup_tenant(palisade)
        api = palisade.api
        response = await api.create_webhook_endpoint(
            "acme", {"url": "https://hooks.example.com/palisade", "events": ["session.ended"]}
        )
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["secret"].startswith("whsec_")
        assert created["events"] == ["session.ended"]
        assert created["enabled"] is True

        listed = (await api.list_webhook_endpoints("acme")).json()["items"]
        assert [e["id"] for e in listed] == [created["id"]]
        assert "secret" not in listed[0]
        assert created["secret"] not in (await api.list_webhook_endpoints("acme")).text

    async def test_deleted_once(self, palisade: Palisade) -> None:
        await setup_tenant(palisade)
        api = palisade.api
        created = (
            await api.create_webhook_endpoint("acme", {"url": "https://hooks.example.com/x"})
        ).json()
        assert (await api.delete_webhook_endpoint("acme", created["id"])).status_code == 204
        assert_problem(
            await api.delete_webhook_endpoint("acme", created["id"]),
            404,
            "webhook_endpoint_not_found",
        )
        assert (await api.list_webhook_endpoints("acme")).json()["items"] == []

    async def test_another_tenants_endpoint_is_404(self, palisade: Palisade) -> None:
        await setup_tenant(palisade)
        await setup_tenant(palisade, tenant_id="other")
        api = palisade.api
        created = (
            await api.create_webhook_endpoint("acme", {"url": "https://hooks.example.com/x"})
        ).json()
        for response in (
            await api.delete_webhook_endpoint("other", created["id"]),
            await api.rotate_webhook_secret("other", created["id"]),
        ):
            assert_problem(response, 404, "webhook_endpoint_not_found")

    async def test_rotation_signs_with_both_secrets_during_the_overlap(
        self, palisade: Palisade, receiver: Receiver
    ) -> None:
        key, _ = await setup_tenant(palisade)
        api = palisade.api
        created = (
            await api.create_webhook_endpoint(
                "acme", {"url": f"{receiver.url}/hook", "events": ["session.active"]}
            )
        ).json()
        response = await api.rotate_webhook_secret("acme", created["id"])
        assert response.status_code == 200, response.text
        rotated = response.json()
        assert rotated["secret"].startswith("whsec_")
        assert rotated["secret"] != created["secret"]
        assert rotated["previous_secret_expires_at"] is not None

        await start(palisade, key, {"profile": "coach"})
        [request] = await until(receiver.requests, message="a delivery")
        assert len(request["headers"]["webhook-signature"].split(" ")) == 2
        for secret in (created["secret"], rotated["secret"]):
            Webhook(secret).verify(request["raw"], request["headers"])


class TestUrlRules:
    @pytest.mark.parametrize(
        "url",
        [
            "http://hooks.example.com/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://192.168.0.10/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://[fe80::1]/x",
            "https://0.0.0.0/x",
            "https://localhost/x",
            "https://printer.local/x",
            "https://user:pass@hooks.example.com/x",
            "ftp://hooks.example.com/x",
            "https:///x",
            "https://hooks.example.com:99999/x",
            "https://hooks.example.com/x\nHost: evil",
            "https://hooks.example.com/" + "a" * 2100,
        ],
    )
    async def test_production_refuses(self, production: PalisadeClient, url: str) -> None:
        response = await production.create_webhook_endpoint("acme", {"url": url})
        assert response.status_code == 422, response.text
        assert response.json()["code"] in {"webhook_url_not_allowed", "validation_error"}

    async def test_an_endpoint_may_allow_what_production_refuses(
        self, production: PalisadeClient
    ) -> None:
        for body in (
            {"url": "https://10.1.2.3/x", "allow_private": True},
            {"url": "http://hooks.example.com/x", "allow_http": True},
            {"url": "http://127.0.0.1:9000/x", "allow_http": True, "allow_private": True},
        ):
            response = await production.create_webhook_endpoint("acme", body)  # type: ignore[arg-type]
            assert response.status_code == 201, response.text

    async def test_a_public_https_url_is_accepted(self, production: PalisadeClient) -> None:
        response = await production.create_webhook_endpoint(
            "acme", {"url": "https://hooks.example.com/palisade"}
        )
        assert response.status_code == 201, response.text


class TestHostileInput:
    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"url": 5},
            {"url": "https://hooks.example.com/x", "unknown": 1},
            {"url": "https://hooks.example.com/x", "events": ["session.exploded"]},
            {"url": "https://hooks.example.com/x", "events": []},
            {"url": "https://hooks.example.com/x", "events": ["session.ended", "session.ended"]},
            {"url": "https://hooks.example.com/x", "events": "session.ended"},
            {"url": "https://hooks.example.com/x", "allow_http": "yes"},
            {"url": "https://hooks.example.com/\u0000"},
            {"url": "https://hooks.example.com/\ud800"},
            [],
        ],
    )
    async def test_bad_bodies_are_4xx(self, palisade: Palisade, body: Any) -> None:
        await setup_tenant(palisade)
        # Escaped JSON: a lone surrogate travels as \ud800, as a hostile client sends it.
        response = await palisade.client.post(
            "/tenants/acme/webhook-endpoints",
            content=json.dumps(body).encode(),
            headers={**ADMIN_HEADERS, "content-type": "application/json"},
        )
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["code"]
        assert (await palisade.api.list_webhook_endpoints("acme")).json()["items"] == []

    async def test_malformed_json_is_400(self, palisade: Palisade) -> None:
        await setup_tenant(palisade)
        response = await palisade.client.post(
            "/tenants/acme/webhook-endpoints",
            content=b'{"url": NaN}',
            headers={**ADMIN_HEADERS, "content-type": "application/json"},
        )
        assert_problem(response, 400, "malformed_json")

    async def test_without_the_admin_token_401(self, palisade: Palisade) -> None:
        key, _ = await setup_tenant(palisade)
        for client in (palisade.api_as(key), palisade.api.using(None)):
            assert (await client.list_webhook_endpoints("acme")).status_code == 401
            assert (await client.list_webhook_deliveries("acme")).status_code == 401
            response = await client.create_webhook_endpoint(
                "acme", {"url": "https://hooks.example.com/x"}
            )
            assert response.status_code == 401

    async def test_unknown_tenant_404(self, palisade: Palisade) -> None:
        api = palisade.api
        for response in (
            await api.list_webhook_endpoints("nobody"),
            await api.list_webhook_deliveries("nobody"),
            await api.create_webhook_endpoint("nobody", {"url": "https://hooks.example.com/x"}),
        ):
            assert_problem(response, 404, "tenant_not_found")

    @pytest.mark.parametrize("bad_id", ["not-a-uuid", "1", "%00", "x" * 300])
    async def test_ids_that_are_not_uuids_are_4xx(self, palisade: Palisade, bad_id: str) -> None:
        await setup_tenant(palisade)
        api = palisade.api
        for response in (
            await api.delete_webhook_endpoint("acme", bad_id),
            await api.rotate_webhook_secret("acme", bad_id),
            await api.retry_webhook_delivery("acme", bad_id),
        ):
            assert 400 <= response.status_code < 500, response.text
            assert response.json()["code"]

    @pytest.mark.parametrize(
        "query",
        [
            {"status": "lost"},
            {"event_type": "session.exploded"},
            {"session_id": "nope"},
            {"limit": 0},
            {"limit": 201},
            {"limit": "many"},
            {"cursor": "x" * 300},
        ],
    )
    async def test_bad_filters_are_4xx(self, palisade: Palisade, query: dict[str, Any]) -> None:
        await setup_tenant(palisade)
        response = await palisade.admin("GET", "/tenants/acme/webhook-deliveries", params=query)
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["code"]

    @pytest.mark.parametrize("cursor", SESSION_CURSORS.values(), ids=SESSION_CURSORS.keys())
    async def test_forged_cursors_are_400(self, palisade: Palisade, cursor: str) -> None:
        await setup_tenant(palisade)
        response = await palisade.api.list_webhook_deliveries("acme", cursor=cursor)
        assert_problem(response, 400, "invalid_cursor")

    async def test_an_unknown_delivery_is_404(self, palisade: Palisade) -> None:
        await setup_tenant(palisade)
        response = await palisade.api.retry_webhook_delivery("acme", str(uuid.uuid4()))
        assert_problem(response, 404, "webhook_delivery_not_found")


class TestDeliveries:
    async def test_listed_with_filters_a_page_at_a_time_and_replayed(
        self, palisade_factory: PalisadeFactory, receiver: Receiver
    ) -> None:
        palisade = await palisade_factory()
        key, _ = await setup_tenant(palisade)
        api = palisade.api
        await api.create_webhook_endpoint(
            "acme", {"url": f"{receiver.url}/hook", "events": ["session.active"]}
        )
        sessions = [(await start(palisade, key, {"profile": "coach"})).json() for _ in range(3)]

        async def all_delivered() -> list[dict[str, Any]] | None:
            page = (await api.list_webhook_deliveries("acme", status="delivered")).json()
            return page["items"] if len(page["items"]) == 3 else None

        delivered = await until(all_delivered, message="three deliveries")
        assert {d["session_id"] for d in delivered} == {s["id"] for s in sessions}
        assert all(d["attempts"] == 1 and d["event_type"] == "session.active" for d in delivered)

        seen: list[str] = []
        cursor = None
        while True:
            page = (await api.list_webhook_deliveries("acme", limit=2, cursor=cursor)).json()
            seen += [d["id"] for d in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [d["id"] for d in delivered]

        one = sessions[0]["id"]
        filtered = (await api.list_webhook_deliveries("acme", session_id=one)).json()["items"]
        assert [d["session_id"] for d in filtered] == [one]
        none = await api.list_webhook_deliveries("acme", event_type="session.failed")
        assert none.json()["items"] == []
        assert (await api.list_webhook_deliveries("acme", status="failed")).json()["items"] == []

        replayed = await api.retry_webhook_delivery("acme", filtered[0]["id"])
        assert replayed.status_code == 202, replayed.text
        assert replayed.json()["status"] == "pending"

        async def sent_again() -> list[dict[str, Any]] | None:
            got = [r for r in (await receiver.requests()) if r["json"]["data"]["id"] == one]
            return got if len(got) == 2 else None

        twice = await until(sent_again, message="the replay")
        assert twice[0]["headers"]["webhook-id"] == twice[1]["headers"]["webhook-id"]

    async def test_another_tenants_delivery_is_404(
        self, palisade: Palisade, receiver: Receiver
    ) -> None:
        key, _ = await setup_tenant(palisade)
        await setup_tenant(palisade, tenant_id="other")
        api = palisade.api
        await api.create_webhook_endpoint(
            "acme", {"url": f"{receiver.url}/hook", "events": ["session.active"]}
        )
        await start(palisade, key, {"profile": "coach"})

        async def one() -> list[dict[str, Any]] | None:
            items: list[dict[str, Any]] = (await api.list_webhook_deliveries("acme")).json()[
                "items"
            ]
            return items or None

        [delivery] = await until(one, message="a delivery")
        assert (await api.list_webhook_deliveries("other")).json()["items"] == []
        assert_problem(
            await api.retry_webhook_delivery("other", delivery["id"]),
            404,
            "webhook_delivery_not_found",
        )
