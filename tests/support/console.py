"""Signing in to the operator console from a test's HTTP client, as a browser would."""

from __future__ import annotations

import re
from html.parser import HTMLParser

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


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(
                named.get("id") or named.get("aria-labelledby") or f"table-{len(self.tables)}", []
            )
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._table is not None and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(page: str) -> dict[str, list[list[str]]]:
    """Each table of a console page, by its id (or the heading that labels it): its rows
    (the header row first), each a list of cell texts with whitespace collapsed."""
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def rows(page: str, table: str) -> list[list[str]]:
    """The body rows of one table of ``page``."""
    return tables(page)[table][1:]
