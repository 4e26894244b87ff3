"""Who gets into the console: sign-in, the session cookie, CSRF on every POST."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie

import httpx
import pytest
from fastapi import FastAPI

from app.console.auth import COOKIE
from app.console.rendering import SECURITY_HEADERS
from app.settings import DEV_ADMIN_TOKEN
from tests.support.console import HTML, csrf_of, sign_in

PAGES = [
    "/console",
    "/console/sessions",
    "/console/sessions?status=active&tenant=acme",
    f"/console/sessions/{uuid.uuid4()}",
    "/console/cleanup",
    "/console/deliveries",
    "/console/no-such-page",
]
ACTIONS = [
    f"/console/sessions/{uuid.uuid4()}/end",
    "/console/deliveries/d1/retry",
    "/console/logout",
]


def set_cookie(response: httpx.Response) -> SimpleCookie:
    cookie = SimpleCookie()
    cookie.load(response.headers["set-cookie"])
    return cookie


@pytest.fixture
async def https_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://palisade.test") as c:
        yield c


class TestWithoutASession:
    @pytest.mark.parametrize("path", PAGES)
    async def test_a_page_sends_the_browser_to_sign_in_and_back(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        response = await client.get(path, headers=HTML)
        assert response.status_code == 303
        sign_in_page = httpx.URL(response.headers["location"])
        assert sign_in_page.path == "/console/login"
        assert sign_in_page.params["next"] == path

    @pytest.mark.parametrize("path", ACTIONS)
    async def test_an_action_sends_the_browser_to_sign_in(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        response = await client.post(path, data={"csrf_token": "x"}, headers=HTML)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/console/login")

    async def test_a_cookie_it_did_not_make_is_no_session(self, client: httpx.AsyncClient) -> None:
        await sign_in(client)
        value = client.cookies[COOKIE]
        client.cookies.set(COOKIE, value[:-4] + ("AAAA" if value[-4:] != "AAAA" else "BBBB"))
        response = await client.get("/console", headers=HTML)
        assert response.status_code == 303

    async def test_the_sign_in_page_is_not_a_signed_in_session(
        self, client: httpx.AsyncClient
    ) -> None:
        await client.get("/console/login", headers=HTML)
        assert COOKIE in client.cookies
        response = await client.get("/console", headers=HTML)
        assert response.status_code == 303


class TestSignIn:
    async def test_the_admin_token_signs_in_with_a_strict_http_only_cookie(
        self, client: httpx.AsyncClient
    ) -> None:
        form = await client.get("/console/login?next=/console/cleanup", headers=HTML)
        response = await client.post(
            "/console/login",
            data={
                "token": DEV_ADMIN_TOKEN,
                "csrf_token": csrf_of(form.text),
                "next": "/console/cleanup",
            },
            headers=HTML,
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/console/cleanup"
        morsel = set_cookie(response)[COOKIE]
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "strict"
        assert morsel["path"] == "/console"
        assert morsel["max-age"] == str(8 * 3600)
        assert not morsel["secure"]  # plain HTTP here
        assert DEV_ADMIN_TOKEN not in morsel.value
        assert (await client.get("/console/cleanup", headers=HTML)).status_code == 200

    async def test_over_https_the_cookie_is_secure(self, https_client: httpx.AsyncClient) -> None:
        form = await https_client.get("/console/login", headers=HTML)
        assert set_cookie(form)[COOKIE]["secure"] is True
        response = await https_client.post(
            "/console/login",
            data={"token": DEV_ADMIN_TOKEN, "csrf_token": csrf_of(form.text)},
            headers=HTML,
        )
        assert response.status_code == 303
        assert set_cookie(response)[COOKIE]["secure"] is True

    async def test_another_token_is_refused_with_the_form_again(
        self, client: httpx.AsyncClient
    ) -> None:
        form = await client.get("/console/login", headers=HTML)
        response = await client.post(
            "/console/login",
            data={"token": "not-the-token", "csrf_token": csrf_of(form.text)},
            headers=HTML,
        )
        assert response.status_code == 401
        assert "That is not the admin token." in response.text
        assert 'name="token"' in response.text
        assert (await client.get("/console", headers=HTML)).status_code == 303

    async def test_a_sign_in_without_its_forms_token_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        await client.get("/console/login", headers=HTML)
        response = await client.post(
            "/console/login", data={"token": DEV_ADMIN_TOKEN}, headers=HTML
        )
        assert response.status_code == 403
        assert "form had expired" in response.text
        assert (await client.get("/console", headers=HTML)).status_code == 303

    async def test_a_sign_in_from_a_page_it_did_not_serve_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        """No cookie of the sign-in page: a form posted from anywhere else."""
        response = await client.post(
            "/console/login",
            data={"token": DEV_ADMIN_TOKEN, "csrf_token": "forged"},
            headers=HTML,
        )
        assert response.status_code == 403
        assert (await client.get("/console", headers=HTML)).status_code == 303

    @pytest.mark.parametrize(
        ("asked", "sent_to"),
        [
            ("/console/sessions?status=active", "/console/sessions?status=active"),
            ("https://elsewhere.example/console", "/console"),
            ("//elsewhere.example/console", "/console"),
            ("/console//elsewhere.example", "/console"),
            ("/consoleevil", "/console"),
            ("/console/login", "/console"),
            ("/metrics", "/console"),
        ],
    )
    async def test_it_returns_only_to_a_console_page(
        self, client: httpx.AsyncClient, asked: str, sent_to: str
    ) -> None:
        form = await client.get("/console/login", headers=HTML)
        response = await client.post(
            "/console/login",
            data={"token": DEV_ADMIN_TOKEN, "csrf_token": csrf_of(form.text), "next": asked},
            headers=HTML,
        )
        assert response.headers["location"] == sent_to

    async def test_signed_in_the_sign_in_page_goes_on(self, client: httpx.AsyncClient) -> None:
        await sign_in(client)
        response = await client.get("/console/login?next=/console/cleanup", headers=HTML)
        assert response.status_code == 303
        assert response.headers["location"] == "/console/cleanup"

    async def test_signing_out_removes_the_cookie(self, client: httpx.AsyncClient) -> None:
        token = await sign_in(client)
        response = await client.post("/console/logout", data={"csrf_token": token}, headers=HTML)
        assert response.status_code == 303
        assert response.headers["location"] == "/console/login?notice=signed-out"
        assert set_cookie(response)[COOKIE]["max-age"] == "0"
        assert COOKIE not in client.cookies
        assert (await client.get("/console", headers=HTML)).status_code == 303


class TestCsrf:
    async def test_a_post_without_the_token_is_refused(self, client: httpx.AsyncClient) -> None:
        await sign_in(client)
        response = await client.post(
            "/console/logout", data={"next": "/console"}, headers={"Accept": "application/json"}
        )
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "csrf_token_invalid"
        # Still signed in: the refused sign-out did nothing.
        assert (await client.get("/console", headers=HTML)).status_code == 200

    async def test_a_browser_is_shown_the_refusal_with_its_code(
        self, client: httpx.AsyncClient
    ) -> None:
        await sign_in(client)
        response = await client.post("/console/logout", data={"csrf_token": ""}, headers=HTML)
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("text/html")
        assert '<code id="problem-code">csrf_token_invalid</code>' in response.text

    async def test_the_token_of_another_session_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://palisade.test") as other:
            others_token = await sign_in(other)
        await sign_in(client)
        response = await client.post(
            "/console/logout", data={"csrf_token": others_token}, headers=HTML
        )
        assert response.status_code == 403

    async def test_the_token_in_a_header_or_the_query_does_not_count(
        self, client: httpx.AsyncClient
    ) -> None:
        token = await sign_in(client)
        response = await client.post(
            f"/console/logout?csrf_token={token}",
            data={"next": "/console"},
            headers={**HTML, "X-CSRF-Token": token},
        )
        assert response.status_code == 403

    @pytest.mark.parametrize(
        ("content_type", "body", "status", "code"),
        [
            ("application/json", b'{"csrf_token": "x"}', 415, "form_expected"),
            ("text/plain", b"csrf_token=x", 415, "form_expected"),
            ("application/x-www-form-urlencoded", b"csrf_token=%ff%fe", 400, "malformed_form"),
            ("application/x-www-form-urlencoded", b"csrf_token=a%00b", 400, "malformed_form"),
            (
                "application/x-www-form-urlencoded",
                "&".join(f"f{i}=1" for i in range(100)).encode(),
                400,
                "malformed_form",
            ),
        ],
    )
    async def test_a_post_that_is_not_a_plain_form_is_refused(
        self, client: httpx.AsyncClient, content_type: str, body: bytes, status: int, code: str
    ) -> None:
        await sign_in(client)
        response = await client.post(
            "/console/logout",
            content=body,
            headers={"Content-Type": content_type, "Accept": "application/json"},
        )
        assert response.status_code == status
        assert response.json()["code"] == code


class TestHeaders:
    @pytest.mark.parametrize("path", ["/console", "/console/login", "/console/no-such-page"])
    async def test_console_answers_are_not_cached_framed_or_scripted(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        await sign_in(client)
        response = await client.get(path, headers=HTML)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value

    async def test_the_stylesheet_is_served_without_a_session(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/console/static/console.css")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/css")

    async def test_the_console_is_not_in_the_api_document(self, client: httpx.AsyncClient) -> None:
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert not [path for path in paths if path.startswith("/console")]
