"""Restricted tenant API keys: scopes, a profile allowlist and a start rate per key."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.integration.api.test_sessions import setup_tenant
from tests.support.client import ApiKeyCreate, PalisadeClient
from tests.support.stack import Palisade
from tests.support.wait import until

ALL_SCOPES = ["sessions:start", "sessions:read", "sessions:end", "sessions:interact"]


async def issue(palisade: Palisade, body: ApiKeyCreate, tenant_id: str = "acme") -> str:
    created = await palisade.api.create_api_key(tenant_id, body)
    assert created.status_code == 201, created.text
    key: str = created.json()["key"]
    return key


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["code"] == code, problem
    return problem


def assert_needs_scope(response: httpx.Response, scope: str) -> None:
    problem = assert_problem(response, 403, "insufficient_scope")
    assert problem["required_scope"] == scope
    assert response.headers["www-authenticate"] == (
        f'Bearer error="insufficient_scope", scope="{scope}"'
    )


class TestScopes:
    async def test_a_start_only_key_starts_and_is_refused_everywhere_else(
        self, palisade: Palisade
    ) -> None:
        full_key, _ = await setup_tenant(palisade)
        browser = palisade.api_as(await issue(palisade, {"scopes": ["sessions:start"]}))

        started = await browser.start_session({"profile": "coach"})
        assert started.status_code == 201, started.text
        session_id = started.json()["id"]

        assert_needs_scope(await browser.get_session(session_id), "sessions:read")
        assert_needs_scope(await browser.list_sessions(), "sessions:read")
        assert_needs_scope(await browser.list_session_events(session_id), "sessions:read")
        assert_needs_scope(await browser.end_session(session_id), "sessions:end")
        # Nothing was done by the refused calls.
        backend = palisade.api_as(full_key)
        assert (await backend.get_session(session_id)).json()["status"] == "active"

    async def test_a_tenant_key_of_any_scope_is_not_an_admin_token(
        self, palisade: Palisade
    ) -> None:
        full_key, _ = await setup_tenant(palisade)
        start_only = await issue(palisade, {"scopes": ["sessions:start"]})
        for key in (start_only, full_key):
            as_key = palisade.api_as(key)
            for response in (
                await as_key.get_tenant("acme"),
                await as_key.list_tenants(),
                await as_key.create_api_key("acme", {"scopes": ["sessions:read"]}),
                await as_key.update_tenant("acme", {"cors_origins": ["https://evil.example"]}),
            ):
                assert_problem(response, 401, "unauthorized")

    async def test_each_scope_opens_only_its_routes(self, palisade: Palisade) -> None:
        full_key, _ = await setup_tenant(palisade)
        started = await palisade.api_as(full_key).start_session({})
        session_id = started.json()["id"]

        reader = palisade.api_as(await issue(palisade, {"scopes": ["sessions:read"]}))
        assert (await reader.get_session(session_id)).status_code == 200
        assert (await reader.list_sessions()).status_code == 200
        assert (await reader.list_session_events(session_id)).status_code == 200
        assert_needs_scope(await reader.start_session({}), "sessions:start")
        assert_needs_scope(await reader.end_session(session_id), "sessions:end")

        ender = palisade.api_as(await issue(palisade, {"scopes": ["sessions:end"]}))
        assert_needs_scope(await ender.get_session(session_id), "sessions:read")
        assert (await ender.end_session(session_id)).status_code == 202

    async def test_a_key_issued_without_scopes_has_them_all(self, palisade: Palisade) -> None:
        await setup_tenant(palisade)
        listed = await palisade.api.list_api_keys("acme")
        [key] = listed.json() if isinstance(listed.json(), list) else listed.json()["items"]
        assert key["scopes"] == ALL_SCOPES
        assert key["profiles"] is None
        assert key["start_rate"] is None

    async def test_refusals_come_from_memory_too(self, palisade: Palisade) -> None:
        """The authenticator remembers the key: the second refusal is not looked up."""
        await setup_tenant(palisade)
        browser = palisade.api_as(await issue(palisade, {"scopes": ["sessions:start"]}))
        assert_needs_scope(await browser.list_sessions(), "sessions:read")
        assert_needs_scope(await browser.list_sessions(), "sessions:read")

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            ({"scopes": ["sessions:everything"]}, "validation_error"),
            ({"scopes": []}, "validation_error"),
            ({"profiles": []}, "validation_error"),
            ({"profiles": ["nope"]}, "unknown_profile"),
            ({"start_rate": "10/fortnight"}, "validation_error"),
            ({"start_rate": "0/minute"}, "validation_error"),
            ({"start_burst": 5}, "validation_error"),
            ({"start_rate": "10/minute", "start_burst": 0}, "validation_error"),
        ],
    )
    async def test_invalid_restrictions_are_refused(
        self, palisade: Palisade, body: dict[str, Any], code: str
    ) -> None:
        await setup_tenant(palisade)
        refused = await palisade.api.create_api_key("acme", body)  # type: ignore[arg-type]
        problem = assert_problem(refused, 422, code)
        # Refused for its value, not as a field the API does not know.
        assert all(e["code"] != "unknown_field" for e in problem.get("errors", [])), problem

    async def test_restrictions_are_shown_with_the_key(self, palisade: Palisade) -> None:
        await setup_tenant(palisade)
        created = await palisade.api.create_api_key(
            "acme",
            {
                "label": "web",
                "scopes": ["sessions:start", "sessions:start"],
                "profiles": ["voices", "coach"],
                "start_rate": "10/minute",
            },
        )
        assert created.status_code == 201, created.text
        shown = created.json()
        assert shown["scopes"] == ["sessions:start"]
        assert shown["profiles"] == ["coach", "voices"]
        assert (shown["start_rate"], shown["start_burst"]) == ("10/minute", 10)
        listed = (await palisade.api.list_api_keys("acme")).json()
        items = listed if isinstance(listed, list) else listed["items"]
        [web] = [k for k in items if k["label"] == "web"]
        assert {k: web[k] for k in ("scopes", "profiles", "start_rate", "start_burst")} == {
            "scopes": ["sessions:start"],
            "profiles": ["coach", "voices"],
            "start_rate": "10/minute",
            "start_burst": 10,
        }


class TestProfileAllowlist:
    async def test_a_key_starts_only_its_profiles(self, palisade: Palisade) -> None:
        await setup_tenant(palisade)
        key = await issue(palisade, {"scopes": ["sessions:start"], "profiles": ["voices"]})
        browser = palisade.api_as(key)

        assert (await browser.start_session({"profile": "voices"})).status_code == 201
        refused = assert_problem(
            await browser.start_session({"profile": "coach"}), 403, "profile_not_allowed"
        )
        assert (refused["profile"], refused["allowed_profiles"]) == ("coach", ["voices"])
        # The tenant's default (coach) is not on the list either.
        assert_problem(await browser.start_session({}), 403, "profile_not_allowed")

    async def test_an_unlisted_name_is_refused_before_it_is_looked_up(
        self, palisade: Palisade
    ) -> None:
        """A restricted key cannot tell the tenant's profiles from names it does not
        have: both are 403, never 422 unknown_profile."""
        await setup_tenant(palisade)
        browser = palisade.api_as(await issue(palisade, {"profiles": ["voices"]}))
        assert_problem(await browser.start_session({"profile": "nope"}), 403, "profile_not_allowed")

    async def test_the_default_profile_counts_when_the_request_names_none(
        self, palisade: Palisade
    ) -> None:
        await setup_tenant(palisade)
        browser = palisade.api_as(await issue(palisade, {"profiles": ["coach"]}))
        started = await browser.start_session({})
        assert started.status_code == 201, started.text
        assert started.json()["profile"] == "coach"

    async def test_a_refused_start_claims_no_idempotency_key(self, palisade: Palisade) -> None:
        full_key, _ = await setup_tenant(palisade)
        browser = palisade.api_as(await issue(palisade, {"profiles": ["voices"]}))
        refused = await browser.start_session({"profile": "coach"}, idempotency_key="same")
        assert_problem(refused, 403, "profile_not_allowed")
        backend = palisade.api_as(full_key)
        started = await backend.start_session({"profile": "coach"}, idempotency_key="same")
        assert started.status_code == 201, started.text
        assert "idempotent-replayed" not in started.headers


def retry_after(response: httpx.Response) -> int:
    return int(response.headers["retry-after"])


class TestStartRate:
    async def test_a_key_over_its_rate_gets_429_then_recovers(self, palisade: Palisade) -> None:
        await setup_tenant(palisade, cap=100)
        # A token every second, two at once.
        browser = palisade.api_as(
            await issue(palisade, {"start_rate": "60/minute", "start_burst": 2})
        )
        for _ in range(2):
            assert (await browser.start_session({})).status_code == 201
        limited = await browser.start_session({})
        problem = assert_problem(limited, 429, "key_rate_limited")
        assert "start rate" in problem["detail"]
        assert retry_after(limited) == 1

        async def started_again() -> bool:
            return (await browser.start_session({})).status_code == 201

        await until(started_again, within=5, message="a token came back")

    async def test_retry_after_says_when_the_next_token_comes(self, palisade: Palisade) -> None:
        await setup_tenant(palisade, cap=100)
        browser = palisade.api_as(await issue(palisade, {"start_rate": "2/minute"}))
        for _ in range(2):
            assert (await browser.start_session({})).status_code == 201
        limited = await browser.start_session({})
        assert_problem(limited, 429, "key_rate_limited")
        # One token per 30 s; the first has barely begun to refill.
        assert 25 <= retry_after(limited) <= 30

    async def test_other_keys_of_the_tenant_are_not_limited(self, palisade: Palisade) -> None:
        full_key, _ = await setup_tenant(palisade, cap=100)
        browser = palisade.api_as(await issue(palisade, {"start_rate": "1/hour"}))
        assert (await browser.start_session({})).status_code == 201
        assert_problem(await browser.start_session({}), 429, "key_rate_limited")
        for _ in range(3):
            assert (await palisade.api_as(full_key).start_session({})).status_code == 201

    async def test_the_rate_holds_across_replicas(
        self, palisade: Palisade, second_palisade: Palisade
    ) -> None:
        await setup_tenant(palisade, cap=100)
        key = await issue(palisade, {"start_rate": "1/hour"})
        assert (await palisade.api_as(key).start_session({})).status_code == 201
        limited = await second_palisade.api_as(key).start_session({})
        assert_problem(limited, 429, "key_rate_limited")
        assert math.isclose(retry_after(limited), 3600, abs_tol=5)

    async def test_concurrent_starts_on_two_replicas_spend_each_token_once(
        self, palisade: Palisade, second_palisade: Palisade
    ) -> None:
        await setup_tenant(palisade, cap=100)
        key = await issue(palisade, {"start_rate": "1/hour", "start_burst": 3})
        replicas = [palisade.api_as(key), second_palisade.api_as(key)]
        answers = await asyncio.gather(*(replicas[i % 2].start_session({}) for i in range(10)))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [201] * 3 + [429] * 7
        assert all(a.json()["code"] == "key_rate_limited" for a in answers if a.status_code == 429)

    async def test_a_limited_start_withdraws_its_idempotency_key(self, palisade: Palisade) -> None:
        await setup_tenant(palisade, cap=100)
        browser = palisade.api_as(
            await issue(palisade, {"start_rate": "60/minute", "start_burst": 1})
        )
        assert (await browser.start_session({})).status_code == 201
        limited = await browser.start_session({}, idempotency_key="retry-me")
        assert_problem(limited, 429, "key_rate_limited")

        async def started_with_the_same_key() -> bool:
            again = await browser.start_session({}, idempotency_key="retry-me")
            return again.status_code == 201 and "idempotent-replayed" not in again.headers

        await until(started_with_the_same_key, within=5, message="the key started a session")

    async def test_only_an_admitted_start_spends_a_token(
        self, palisade: Palisade, database_url: str
    ) -> None:
        await setup_tenant(palisade, cap=0)
        browser = palisade.api_as(await issue(palisade, {"start_rate": "1/hour"}))
        for _ in range(3):
            assert_problem(await browser.start_session({}), 429, "tenant_concurrency_limit")
        raised = await palisade.api.update_tenant("acme", {"max_concurrent_sessions": 5})
        assert raised.status_code == 200
        assert (await browser.start_session({})).status_code == 201
        assert_problem(await browser.start_session({}), 429, "key_rate_limited")
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                tokens = (
                    await connection.execute(
                        text("SELECT start_tokens FROM tenant_api_key WHERE start_rate_count = 1")
                    )
                ).scalar_one()
        finally:
            await engine.dispose()
        assert 0 <= tokens < 0.01


async def test_the_typed_client_reaches_every_session_route(palisade: Palisade) -> None:
    """A full key through the typed client: the routes it names exist as it calls them."""
    full_key, _ = await setup_tenant(palisade)
    backend: PalisadeClient = palisade.api_as(full_key)
    started = await backend.start_session({"profile": "coach", "external_ref": "u-1"})
    session_id = started.json()["id"]
    assert (await backend.list_sessions(external_ref="u-1", limit=5)).json()["items"]
    assert (await backend.list_session_events(session_id)).json()["items"]
    assert (await backend.end_session(session_id)).status_code == 202


async def test_the_event_log_pages_like_the_session_list(palisade: Palisade) -> None:
    full_key, _ = await setup_tenant(palisade)
    backend = palisade.api_as(full_key)
    session_id = (await backend.start_session({})).json()["id"]
    assert (await backend.end_session(session_id)).status_code == 202

    async def ended() -> bool:
        status: str = (await backend.get_session(session_id)).json()["status"]
        return status == "ended"

    await until(ended, within=10, message="the session ended")  # its log is complete
    whole = (await backend.list_session_events(session_id)).json()
    assert whole["next_cursor"] is None
    assert len(whole["items"]) >= 3

    paged: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = (await backend.list_session_events(session_id, limit=2, cursor=cursor)).json()
        assert len(page["items"]) <= 2
        paged += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    ids = [e["id"] for e in paged]
    # Every event once, in order; a late webhook may only add to the end.
    assert ids == sorted(set(ids))
    assert ids[: len(whole["items"])] == [e["id"] for e in whole["items"]]

    for forged in ("not-a-cursor", "MTIz", "-1"):
        refused = await backend.list_session_events(session_id, cursor=forged)
        assert_problem(refused, 400, "invalid_cursor")
