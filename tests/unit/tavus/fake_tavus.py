"""A scripted Tavus at the HTTP interface, for httpx.MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

API_KEY = "tvs-global-key-0123456789"
TENANT_KEY = "tvs-tenant-key-abcdefghij"
BASE_URL = "https://tavus.test"

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeTavus:
    """Answers requests from a script in order and records every request it saw."""

    script: list[Reply] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def reply(self, *replies: Reply) -> FakeTavus:
        self.script.extend(replies)
        return self

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.script:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        if isinstance(item, httpx.Response):
            return item
        return item(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self, index: int = -1) -> object:
        return json.loads(self.requests[index].content)


def ok(payload: object = None, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    if payload is None:
        return httpx.Response(status, headers=headers)
    return httpx.Response(status, json=payload, headers=headers)


def fail(status: int, payload: object, headers: dict[str, str] | None = None) -> Reply:
    return httpx.Response(status, json=payload, headers=headers)


def pal_json(pal_id: str = "pcb7a34da5fe", **fields: object) -> dict[str, object]:
    """A PAL the way GET /v2/pals lists it."""
    return {
        "pal_id": pal_id,
        "pal_name": "Life Coach",
        "default_face_id": "r90bbd427f71",
        "system_prompt": "You are a life coach.",
        "conferencing_email": "acme-anna@tavusinvite.com",
        "document_ids": [],
        "document_tags": [],
        "layers": {},
        "created_at": "2026-07-14T17:00:00.000000",
        "updated_at": "2026-07-14T17:00:00.000000",
        **fields,
    }


def conversation_json(conversation_id: str = "c123456", **fields: object) -> dict[str, object]:
    """A conversation the way GET /v2/conversations/{id} returns it."""
    return {
        "conversation_id": conversation_id,
        "conversation_name": "palisade-s-1",
        "conversation_url": f"https://tavus.daily.co/{conversation_id}",
        "callback_url": "https://palisade.test/webhooks/tavus/s-1?token=secret-callback-token",
        "status": "active",
        "pal_id": "pcb7a34da5fe",
        "face_id": "r90bbd427f71",
        "created_at": "2025-07-11T06:45:47.472000Z",
        "updated_at": "2025-07-11T06:45:47.472000Z",
        **fields,
    }


def page_json(items: list[dict[str, object]], total_count: int | None = None) -> dict[str, object]:
    payload: dict[str, object] = {"data": items}
    if total_count is not None:
        payload["total_count"] = total_count
    return payload
