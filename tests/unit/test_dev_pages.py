"""The browser example of docs/frontends.md is served in dev mode only."""

from __future__ import annotations

import httpx

from app.main import create_app
from app.settings import Mode
from tests.conftest import make_settings

DATABASE = "postgresql://palisade@127.0.0.1:9/none"


async def get_example(mode: Mode) -> httpx.Response:
    settings = make_settings(
        DATABASE,
        PALISADE_MODE=mode,
        ADMIN_TOKEN="an-admin-token-for-tests",
        SECRET_KEY="a-secret-key-for-tests-only-0123456789",
    )
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://palisade.test") as client:
        return await client.get("/dev/example.html")


async def test_dev_mode_serves_the_example_page() -> None:
    page = await get_example(Mode.DEV)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "fetch(" in page.text
    assert "Idempotency-Key" in page.text


async def test_production_does_not() -> None:
    assert (await get_example(Mode.PRODUCTION)).status_code == 404
