"""The example page of docs/frontends.md, in a real browser: headless Chromium (Debian's
``chromium``, driven by Playwright) starts a session from a listed origin, and is refused
from another."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.async_api import BrowserContext, Page, async_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from app.api.dev import EXAMPLE_PAGE
from tests.integration.api.test_key_scopes import issue
from tests.integration.api.test_sessions import setup_tenant
from tests.support.stack import Palisade, Served, serve

pytestmark = pytest.mark.e2e

CHROMIUM_PACKAGE = "chromium"
# As the machine's own checks start it: no first-run work, and no background traffic,
# which a closed network would refuse many times over.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Set by .ci/run, which installs Chromium: there, a missing browser is a failure.
REQUIRE_CHROMIUM = "PALISADE_REQUIRE_CHROMIUM"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = (
            f"no Chromium on this machine: install Debian's package "
            f"(apt-get install -y {CHROMIUM_PACKAGE}); .ci/run does"
        )
        if os.environ.get(REQUIRE_CHROMIUM):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


async def example_page(_: Request) -> HTMLResponse:
    return HTMLResponse(EXAMPLE_PAGE.read_text(encoding="utf-8"))


@pytest.fixture
async def site() -> AsyncIterator[Served]:
    """A product's own web server, serving the example page on an origin of its own."""
    served = await serve(Starlette(routes=[Route("/example.html", example_page)]))
    try:
        yield served
    finally:
        await served.stop()


@pytest.fixture
async def other_site() -> AsyncIterator[Served]:
    served = await serve(Starlette(routes=[Route("/example.html", example_page)]))
    try:
        yield served
    finally:
        await served.stop()


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    executable = chromium()
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            tmp_path / "profile",
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        try:
            yield context
        finally:
            await context.close()


async def start_from(page: Page, url: str, key: str) -> tuple[str, str]:
    """Open the page, start a session with ``key``; the outcome and the status line."""
    await page.goto(url)
    await page.fill("#key", key)
    await page.click("#start")
    status = page.locator('#status:not([data-outcome="pending"])[data-outcome]')
    await status.wait_for(timeout=15_000)
    outcome = await status.get_attribute("data-outcome")
    assert outcome is not None
    return outcome, await status.inner_text()


async def test_a_listed_origin_starts_a_session_and_another_is_refused(
    palisade: Palisade, site: Served, other_site: Served, browser: BrowserContext
) -> None:
    full_key, _ = await setup_tenant(palisade)
    listed = await palisade.api.update_tenant("acme", {"cors_origins": [site.url]})
    assert listed.status_code == 200, listed.text
    browser_key = await issue(
        palisade, {"scopes": ["sessions:start"], "profiles": ["coach"], "start_rate": "10/minute"}
    )
    query = urlencode({"api": palisade.url, "profile": "coach"})
    page = await browser.new_page()
    assert site.url != palisade.url  # another origin: the browser applies CORS

    outcome, line = await start_from(page, f"{site.url}/example.html?{query}", browser_key)
    assert (outcome, line[:4]) == ("started", "201:"), line
    assert await page.locator("#join").is_visible()

    refused_preflights: list[str] = []
    page.on("requestfailed", lambda request: refused_preflights.append(request.url))
    outcome, line = await start_from(page, f"{other_site.url}/example.html?{query}", browser_key)
    assert outcome == "blocked", line
    assert refused_preflights == [f"{palisade.url}/sessions"]

    # The preflight was refused, so the start was never sent.
    sessions = await palisade.api_as(full_key).list_sessions()
    assert len(sessions.json()["items"]) == 1


async def test_the_page_dev_mode_serves_calls_its_own_origin(
    palisade: Palisade, browser: BrowserContext
) -> None:
    """On Palisade's own origin no CORS is involved: no tenant lists it."""
    await setup_tenant(palisade)
    key = await issue(palisade, {"scopes": ["sessions:start"]})
    page = await browser.new_page()
    outcome, line = await start_from(page, f"{palisade.url}/dev/example.html", key)
    assert (outcome, line[:4]) == ("started", "201:"), line


async def test_a_refusal_from_a_listed_origin_is_shown_with_its_code(
    palisade: Palisade, site: Served, browser: BrowserContext
) -> None:
    await setup_tenant(palisade)
    await palisade.api.update_tenant("acme", {"cors_origins": [site.url]})
    key = await issue(palisade, {"scopes": ["sessions:start"], "profiles": ["voices"]})
    page = await browser.new_page()
    query = urlencode({"api": palisade.url, "profile": "coach"})
    outcome, line = await start_from(page, f"{site.url}/example.html?{query}", key)
    assert outcome == "refused"
    assert line.startswith("403 profile_not_allowed"), line
