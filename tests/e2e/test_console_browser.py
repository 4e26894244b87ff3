"""The operator console in a real browser (headless Chromium, driven by Playwright): sign
in, read the overview, find a session by its external reference, read its timeline, end
it and watch it end; no cookie means the sign-in page; a forged POST is refused.

Each page is photographed into ``$PALISADE_CONSOLE_SCREENSHOTS`` (the test's temporary
directory when unset); docs/console.md shows one run's pictures.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, expect

from app.domain.sessions import tags
from app.settings import DEV_ADMIN_TOKEN
from tavus_simulator import ErrorFault
from tests.e2e.test_browser import browser  # noqa: F401 - the Chromium fixture
from tests.integration.api.test_sessions import setup_tenant, start
from tests.integration.api.test_sweep import make_pal, run
from tests.integration.api.test_warm_pool import pooled_profile
from tests.integration.api.test_webhooks import wait_status
from tests.support.stack import Palisade, SimulatorHandle
from tests.support.wait import until

pytestmark = pytest.mark.e2e

SCREENSHOTS = "PALISADE_CONSOLE_SCREENSHOTS"
EXTERNAL_REF = "ana-from-checkout"


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    where = Path(os.environ.get(SCREENSHOTS) or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


async def photograph(page: Page, where: Path, name: str) -> None:
    await page.screenshot(path=where / f"{name}.png", full_page=True)


async def some_history(palisade: Palisade, simulator: SimulatorHandle) -> tuple[str, str, str]:
    """A tenant with a few sessions of each kind, a failed start, one whose PAL Tavus
    does not delete, a sweep that removed an orphan and a webhook endpoint that refuses
    every delivery; another tenant with a warm pool. The API key, the session to find,
    and the session owing its PAL's deletion."""
    key, _ = await setup_tenant(palisade, cap=5)
    # A receiver that refuses every connection: its deliveries stay pending, retried.
    created = await palisade.api.create_webhook_endpoint(
        "acme", {"url": "http://127.0.0.1:9/palisade-events", "events": ["session.active"]}
    )
    assert created.status_code == 201, created.text
    await palisade.create_tenant(
        {
            "id": "globex",
            "name": "Globex",
            "max_concurrent_sessions": 20,
            "profiles": {"voices": pooled_profile(size=2)},
        }
    )
    wanted = await start(palisade, key, {"external_ref": EXTERNAL_REF})
    assert wanted.status_code == 201, wanted.text
    for body in (
        {"external_ref": "ben-from-onboarding", "profile": "voices"},
        {"external_ref": "cho-from-support", "profile": "smart"},
    ):
        assert (await start(palisade, key, body)).status_code == 201
    simulator.sim.add_fault("conversation.create", ErrorFault(status=400, times=1))
    assert (await start(palisade, key, {"external_ref": "dan-from-trial"})).status_code == 502
    await make_pal(palisade, tags.pal_name("Coach", uuid.uuid4()))  # an orphan to sweep
    await run(palisade, dry_run=False)
    # An ended session whose PAL Tavus will not delete yet: the cleanup backlog.
    owing = await start(palisade, key, {"external_ref": "eve-from-webinar", "profile": "voices"})
    simulator.sim.add_fault("pal.delete", ErrorFault(preset="server_error"))
    await palisade.as_tenant(key, "POST", f"/sessions/{owing.json()['id']}/end")
    await wait_status(palisade, key, owing.json()["id"], "ended", cleanup="pending")
    return key, str(wanted.json()["id"]), str(owing.json()["id"])


async def test_an_operator_finds_a_session_reads_its_timeline_and_ends_it(
    palisade: Palisade,
    simulator: SimulatorHandle,
    browser: BrowserContext,  # noqa: F811
    screenshots: Path,
) -> None:
    key, session_id, owing = await some_history(palisade, simulator)
    page = await browser.new_page()
    await page.set_viewport_size({"width": 1280, "height": 900})

    # Without a session, the console sends the browser to sign in, and back afterwards.
    await page.goto(f"{palisade.url}/console/sessions")
    await expect(page).to_have_url(re.compile(r"/console/login\?next=%2Fconsole%2Fsessions$"))
    await expect(page.get_by_label("Admin token")).to_be_focused()
    await photograph(page, screenshots, "login")

    # By keyboard alone: the token field has the focus; Enter submits the form.
    await page.keyboard.type("not the token")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("alert")).to_have_text("That is not the admin token.")
    await page.get_by_label("Admin token").fill(DEV_ADMIN_TOKEN)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{palisade.url}/console/sessions")

    await page.get_by_role("link", name="Overview").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    acme = page.get_by_role("row").filter(has=page.get_by_role("link", name="acme", exact=True))
    await expect(acme.get_by_role("cell").nth(0)).to_have_text("3 of 5")
    await expect(acme.get_by_role("cell").nth(3)).to_have_text("1")
    await expect(acme).to_contain_text("1 failed")
    await photograph(page, screenshots, "overview")

    # The first Tab reaches the skip link, which moves the focus to the page's content.
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "content"

    await page.get_by_role("link", name="Sessions", exact=True).click()
    await page.get_by_label("External reference").fill(EXTERNAL_REF)
    await page.get_by_label("Tenant").select_option("acme")
    await page.get_by_role("button", name="Show sessions").click()
    table = page.locator("#sessions tbody tr")
    await expect(table).to_have_count(1)
    await expect(table).to_contain_text("active")
    await photograph(page, screenshots, "sessions")

    await page.get_by_role("link", name=session_id).click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text(session_id)
    timeline = page.locator("#timeline-events tbody")
    await expect(timeline).to_contain_text("session.admitted")
    await expect(timeline).to_contain_text("admitted → active")
    await photograph(page, screenshots, "session")

    # A form posted without the CSRF token, with the session cookie: refused.
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.evaluate(
            """(path) => {
                const form = document.createElement("form");
                form.method = "post";
                form.action = path;
                const field = document.createElement("input");
                field.name = "reason";
                field.value = "forged";
                form.appendChild(field);
                document.body.appendChild(form);
                form.submit();
            }""",
            f"/console/sessions/{session_id}/end",
        )
    assert (await posted.value).status == 403
    await expect(page.locator("#problem-code")).to_have_text("csrf_token_invalid")
    await photograph(page, screenshots, "refused")
    status = await palisade.as_tenant(key, "GET", f"/sessions/{session_id}")
    assert status.json()["status"] == "active"
    await page.go_back()

    await page.get_by_role("button", name="End session").click()
    await expect(page.get_by_role("status")).to_contain_text("The end was asked for")

    async def shows_ended() -> bool:
        await page.reload()
        return "ended" in await page.locator("p.lead").first.inner_text()

    await until(shows_ended, within=20, interval=0.2, message="the console shows ended")
    await expect(timeline).to_contain_text("session.ended")
    await expect(timeline).to_contain_text("system.shutdown")
    await expect(page.get_by_role("button", name="End session")).to_have_count(0)
    ended = (await palisade.as_tenant(key, "GET", f"/sessions/{session_id}")).json()
    assert (ended["status"], ended["end_reason"]) == ("ended", "ended_by_operator")
    await photograph(page, screenshots, "session-ended")

    await page.get_by_role("link", name="Cleanup").click()
    backlog = page.get_by_role("table").first
    await expect(backlog.get_by_role("row").filter(has_text=owing)).to_contain_text("retrying")
    await expect(page.locator("#sweeps")).to_be_visible()
    await expect(page.get_by_role("table").last).to_contain_text("removed orphans")
    await photograph(page, screenshots, "cleanup")

    await page.get_by_role("link", name="Webhook deliveries").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Webhook deliveries")
    await expect(page.locator("#deliveries tbody")).to_contain_text("session.active")
    await expect(page.locator("#deliveries tbody")).to_contain_text("ConnectError")
    await photograph(page, screenshots, "deliveries")

    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/console/login\?notice=signed-out$"))
    await page.goto(f"{palisade.url}/console/cleanup")
    await expect(page).to_have_url(re.compile(r"/console/login\?next=%2Fconsole%2Fcleanup$"))


async def test_without_the_cookie_every_page_is_the_sign_in_page(
    palisade: Palisade,
    browser: BrowserContext,  # noqa: F811
) -> None:
    page = await browser.new_page()
    await page.goto(f"{palisade.url}/console/login")
    await page.get_by_label("Admin token").fill(DEV_ADMIN_TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Overview")

    await browser.clear_cookies()
    for path in ("/console", "/console/sessions?status=active", "/console/cleanup"):
        await page.goto(f"{palisade.url}{path}")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to the console")
