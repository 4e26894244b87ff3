"""Signing in to the operator console from a test's HTTP client, as a browser would."""

from __future__ import annotations

import re

import httpx

from app.settings import DEV_ADMIN_TOKEN

HTML = {"Accept": "text/html"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: str) -> str:
    """The CSRF token a console page's forms carry."""
    found = _CSRF.search(page)
    assert found is not None, "no form with a CSRF token on the page"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, token: str = DEV_ADMIN_TOKEN) -> str:
    """Sign ``client`` in (its cookie jar keeps the session); the session's CSRF token."""
    form = await client.get("/console/login", headers=HTML)
    assert form.status_code == 200, form.text
    signed_in = await client.post(
        "/console/login",
        data={"token": token, "csrf_token": csrf_of(form.text), "next": "/console"},
        headers=HTML,
    )
    assert signed_in.status_code == 303, signed_in.text
    overview = await client.get("/console", headers=HTML)
    assert overview.status_code == 200, overview.text
    return csrf_of(overview.text)
