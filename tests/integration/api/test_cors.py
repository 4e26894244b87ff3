"""CORS for browser frontends: each tenant lists its origins; preflights are answered for
listed origins, responses readable only from the key's own tenant's origins."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from app.domain.tenants.apply import ApplyResult, TenantsFile, apply_tenants
from tests.conftest import PalisadeFactory
from tests.integration.api.test_key_scopes import assert_problem, issue
from tests.integration.api.test_sessions import setup_tenant
from tests.support.stack import Palisade

APP = "https://app.acme.example"
OTHER_TENANTS_APP = "https://globex.example"
UNLISTED = "https://evil.example"


async def preflight(
    palisade: Palisade,
    origin: str,
    path: str = "/sessions",
    *,
    method: str = "POST",
    headers: str = "authorization,content-type,idempotency-key",
) -> httpx.Response:
    return await palisade.client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def vary(response: httpx.Response) -> set[str]:
    return {part.strip().lower() for part in response.headers.get("vary", "").split(",")}


async def browser_tenant(palisade: Palisade, origins: list[str]) -> str:
    """The acme tenant listing ``origins``, and a start-only key of it."""
    await setup_tenant(palisade)
    patched = await palisade.api.update_tenant("acme", {"cors_origins": origins})
    assert patched.status_code == 200, patched.text
    return await issue(palisade, {"scopes": ["sessions:start"]})


class TestPreflight:
    async def test_a_listed_origin_is_answered(self, palisade: Palisade) -> None:
        await browser_tenant(palisade, [APP])
        answered = await preflight(palisade, APP)
        assert answered.status_code == 200, answered.text
        allowed = cors_headers(answered)
        assert allowed["access-control-allow-origin"] == APP
        assert {"GET", "POST"} <= {
            m.strip() for m in allowed["access-control-allow-methods"].split(",")
        }
        assert {"authorization", "content-type", "idempotency-key"} <= {
            h.strip().lower() for h in allowed["access-control-allow-headers"].split(",")
        }
        assert allowed["access-control-max-age"] == "600"
        assert "origin" in vary(answered)

    @pytest.mark.parametrize(
        ("path", "method"),
        [("/sessions/3f1e0b4e-0000-4000-8000-000000000000/end", "POST"), ("/sessions", "GET")],
    )
    async def test_every_tenant_route_is_answered(
        self, palisade: Palisade, path: str, method: str
    ) -> None:
        await browser_tenant(palisade, [APP])
        answered = await preflight(palisade, APP, path, method=method, headers="authorization")
        assert answered.status_code == 200
        assert answered.headers["access-control-allow-origin"] == APP

    async def test_an_unlisted_origin_is_refused_without_cors_headers(
        self, palisade: Palisade
    ) -> None:
        await browser_tenant(palisade, [APP])
        refused = await preflight(palisade, UNLISTED)
        assert_problem(refused, 403, "cors_origin_not_allowed")
        assert cors_headers(refused) == {}
        assert "origin" in vary(refused)

    async def test_an_origin_is_matched_exactly(self, palisade: Palisade) -> None:
        await browser_tenant(palisade, [APP])
        for near_miss in (
            "http://app.acme.example",
            "https://app.acme.example:8443",
            "https://sub.app.acme.example",
            "https://acme.example",
        ):
            assert (await preflight(palisade, near_miss)).status_code == 403, near_miss

    async def test_a_header_or_method_the_routes_do_not_take_is_refused(
        self, palisade: Palisade
    ) -> None:
        await browser_tenant(palisade, [APP])
        for refused in (
            await preflight(palisade, APP, headers="authorization,x-debug"),
            await preflight(palisade, APP, method="DELETE"),
        ):
            problem = assert_problem(refused, 400, "cors_preflight_refused")
            assert "Idempotency-Key" in problem["allowed_headers"]

    async def test_admin_routes_are_not_offered_to_browsers(self, palisade: Palisade) -> None:
        await browser_tenant(palisade, [APP])
        for path in ("/tenants", "/tenants/acme/api-keys"):
            answered = await preflight(palisade, APP, path)
            assert answered.status_code == 405
            assert cors_headers(answered) == {}

    async def test_another_tenants_origin_passes_the_preflight(self, palisade: Palisade) -> None:
        """A preflight names no tenant: any listed origin is answered."""
        await browser_tenant(palisade, [APP])
        globex: dict[str, Any] = {
            "id": "globex",
            "name": "Globex",
            "cors_origins": [OTHER_TENANTS_APP],
        }
        assert (await palisade.api.create_tenant(globex)).status_code == 201  # type: ignore[arg-type]
        assert (await preflight(palisade, OTHER_TENANTS_APP)).status_code == 200

    async def test_a_change_is_answered_at_once_by_the_process_that_made_it(
        self, palisade: Palisade
    ) -> None:
        await browser_tenant(palisade, [APP])
        assert (await preflight(palisade, UNLISTED)).status_code == 403
        await palisade.api.update_tenant("acme", {"cors_origins": [APP, UNLISTED]})
        assert (await preflight(palisade, UNLISTED)).status_code == 200
        await palisade.api.update_tenant("acme", {"cors_origins": None})
        assert (await preflight(palisade, APP)).status_code == 403

    async def test_other_processes_follow_within_their_window(
        self, palisade: Palisade, palisade_factory: PalisadeFactory
    ) -> None:
        other = await palisade_factory(PALISADE_API_KEY_CACHE_SECONDS=0)
        await browser_tenant(palisade, [APP])
        assert (await preflight(other, UNLISTED)).status_code == 403
        await palisade.api.update_tenant("acme", {"cors_origins": [UNLISTED]})
        assert (await preflight(other, UNLISTED)).status_code == 200


class TestResponses:
    async def test_a_listed_origin_may_read_the_answer(self, palisade: Palisade) -> None:
        key = await browser_tenant(palisade, [APP])
        started = await palisade.api_as(key, origin=APP).start_session({})
        assert started.status_code == 201, started.text
        assert started.headers["access-control-allow-origin"] == APP
        exposed = {
            h.strip().lower() for h in started.headers["access-control-expose-headers"].split(",")
        }
        assert {"retry-after", "idempotent-replayed"} <= exposed
        assert "origin" in vary(started)

    async def test_a_refusal_is_readable_too(self, palisade: Palisade) -> None:
        key = await browser_tenant(palisade, [APP])
        refused = await palisade.api_as(key, origin=APP).list_sessions()
        assert_problem(refused, 403, "insufficient_scope")
        assert refused.headers["access-control-allow-origin"] == APP

    async def test_an_origin_the_keys_tenant_does_not_list_gets_no_cors_headers(
        self, palisade: Palisade
    ) -> None:
        key = await browser_tenant(palisade, [APP])
        globex: dict[str, Any] = {
            "id": "globex",
            "name": "Globex",
            "cors_origins": [OTHER_TENANTS_APP],
        }
        assert (await palisade.api.create_tenant(globex)).status_code == 201  # type: ignore[arg-type]
        for origin in (OTHER_TENANTS_APP, UNLISTED):
            answered = await palisade.api_as(key, origin=origin).start_session({})
            assert "access-control-allow-origin" not in answered.headers
            assert "origin" in vary(answered)

    async def test_an_unknown_key_gets_no_cors_headers(self, palisade: Palisade) -> None:
        await browser_tenant(palisade, [APP])
        refused = await palisade.api_as("psk_" + "x" * 40, origin=APP).start_session({})
        assert_problem(refused, 401, "unauthorized")
        assert "access-control-allow-origin" not in refused.headers

    async def test_a_change_of_origins_reaches_keys_already_remembered(
        self, palisade: Palisade
    ) -> None:
        key = await browser_tenant(palisade, [APP])
        browser = palisade.api_as(key, origin=APP)
        assert "access-control-allow-origin" in (await browser.start_session({})).headers
        await palisade.api.update_tenant("acme", {"cors_origins": []})
        assert "access-control-allow-origin" not in (await browser.start_session({})).headers

    async def test_calls_without_an_origin_are_untouched(self, palisade: Palisade) -> None:
        key = await browser_tenant(palisade, [APP])
        answered = await palisade.api_as(key).start_session({})
        assert answered.status_code == 201
        assert cors_headers(answered) == {}


class TestOriginsOfATenant:
    async def test_origins_are_stored_as_browsers_send_them(self, palisade: Palisade) -> None:
        created = await palisade.api.create_tenant(
            {
                "id": "acme",
                "name": "Acme",
                "cors_origins": [
                    "https://App.Acme.Example",
                    "https://app.acme.example:443",
                    "http://localhost:5173",
                ],
            }
        )
        assert created.status_code == 201, created.text
        assert created.json()["cors_origins"] == [
            "http://localhost:5173",
            "https://app.acme.example",
        ]
        read = await palisade.api.get_tenant("acme")
        assert read.json()["cors_origins"] == ["http://localhost:5173", "https://app.acme.example"]

    @pytest.mark.parametrize(
        "origin",
        [
            "*",
            "null",
            "https://*.acme.example",
            "https://app.acme.example/",
            "https://app.acme.example/path",
            "http://app.acme.example",
            "ftp://app.acme.example",
            "app.acme.example",
            "https://user@app.acme.example",
            "https://app.acme.example:99999",
            "https://bücher.example",
        ],
    )
    async def test_what_is_not_an_origin_is_refused(self, palisade: Palisade, origin: str) -> None:
        refused = await palisade.api.create_tenant(
            {"id": "acme", "name": "Acme", "cors_origins": [origin]}
        )
        problem = assert_problem(refused, 422, "validation_error")
        assert [e["code"] for e in problem["errors"]] == ["invalid_origin"], problem
        assert problem["errors"][0]["loc"][:2] == ["body", "cors_origins"]


class TestApply:
    async def test_a_tenants_file_declares_origins_and_applying_again_changes_nothing(
        self, palisade: Palisade
    ) -> None:
        def document(origins: list[str]) -> TenantsFile:
            return TenantsFile.model_validate(
                {"tenants": [{"id": "acme", "name": "Acme", "cors_origins": origins}]}
            )

        async def apply(origins: list[str]) -> ApplyResult:
            async with palisade.runtime.sessionmaker.begin() as db:
                [result] = await apply_tenants(
                    db,
                    document(origins),
                    box=palisade.runtime.secret_box,
                    pals=palisade.runtime.pals,
                )
            return result

        assert (await apply(["https://APP.acme.example"])).action == "created"
        assert (await apply([APP])).action == "unchanged"
        changed = await apply([APP, "http://127.0.0.1:5500"])
        assert (changed.action, changed.changes) == ("updated", ["cors_origins"])
        assert (await palisade.api.get_tenant("acme")).json()["cors_origins"] == [
            "http://127.0.0.1:5500",
            APP,
        ]
        # The process that applied it is another (the CLI): this one follows within its
        # window; here, once the window is forgotten.
        await palisade.runtime.cors_origins.forget_after_commit()
        assert (await preflight(palisade, "http://127.0.0.1:5500")).status_code == 200

    def test_a_file_with_a_wildcard_origin_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="wildcards are not accepted"):
            TenantsFile.model_validate(
                {"tenants": [{"id": "acme", "name": "Acme", "cors_origins": ["https://*.x.io"]}]}
            )
