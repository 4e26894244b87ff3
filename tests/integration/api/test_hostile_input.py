"""Hostile input at every door: a tenant, an admin or whoever holds a webhook token.

Each item is input a careful client never sends but an attacker (or a broken client)
will: JSON that is not quite JSON, bodies too deep or too large, forged cursors,
timestamps out of any calendar. Every one must get a 4xx problem document with a stable
`code`, change nothing, and never reach the database as a value it refuses (a 500).
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.domain.strict_json import MAX_JSON_DEPTH
from tests.integration.api.test_sessions import setup_tenant, start
from tests.support.stack import ADMIN_HEADERS, PAL_TEMPLATE, Palisade

PROBLEM_JSON = "application/problem+json"
JSON_AS_ADMIN = {**ADMIN_HEADERS, "content-type": "application/json"}
FREE_FORM = "layers.llm.extra_body"
TENANT = "hostile"


@dataclass(frozen=True)
class Doors:
    """A tenant whose profile accepts a free-form override, and one live session."""

    key: str
    session_id: str
    conversation_id: str
    token: str


@pytest.fixture
async def doors(palisade: Palisade) -> Doors:
    await setup_tenant(palisade)
    created = await palisade.admin(
        "POST",
        "/tenants",
        json={
            "id": TENANT,
            "name": "Hostile",
            "max_concurrent_sessions": 50,
            "profiles": {
                "free": {
                    "strategy": "ephemeral",
                    "pal_template": PAL_TEMPLATE,
                    "allowed_overrides": [FREE_FORM],
                }
            },
            "default_profile": "free",
        },
    )
    assert created.status_code == 201, created.text
    key = (await palisade.admin("POST", f"/tenants/{TENANT}/api-keys", json={})).json()["key"]
    session = (await start(palisade, key, {"profile": "free"})).json()
    return Doors(
        key,
        session["id"],
        session["conversation_id"],
        palisade.runtime.webhook_tokens.token_for(session["id"]),
    )


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == code, response.text


async def row_counts(palisade: Palisade) -> dict[str, int]:
    async with palisade.runtime.engine.connect() as connection:
        return {
            table: (await connection.execute(text(f'SELECT count(*) FROM "{table}"'))).scalar_one()
            for table in ("tenant", "profile", "session", "session_event", "tenant_api_key")
        }


# --- bodies that are not strict JSON -------------------------------------------------

# Each is spliced where a free-form value goes; none is JSON PostgreSQL (or RFC 8259) takes.
NOT_STRICT_VALUES = {
    "NaN": b"NaN",
    "Infinity": b"Infinity",
    "-Infinity": b"-Infinity",
    "overflows to inf": b"1e999",
    "overflows to -inf": b"-1e999",
    "too deep": b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
    "deeper than Python recurses": b"[" * 5000 + b"]" * 5000,
    "invalid UTF-8": b'"caf\xc3"',
    "overlong UTF-8": b'"\xc0\xaf"',
    "more digits than int() reads": b"1" * 5000,
}


PLACEHOLDER = b'"<value>"'
FREE_FORM_OVERRIDE = {"layers": {"llm": {"extra_body": {"x": "<value>"}}}}


def splice(body: dict[str, Any], value: bytes) -> bytes:
    """``body`` as JSON with ``value``, raw bytes, where the placeholder string was."""
    encoded = json.dumps(body).encode()
    assert encoded.count(PLACEHOLDER) == 1
    return encoded.replace(PLACEHOLDER, value)


def session_body(value: bytes) -> bytes:
    return splice({"profile": "free", "overrides": FREE_FORM_OVERRIDE}, value)


# A profile whose template carries the placeholder in a free-form object.
PROFILE_WITH_VALUE = {
    "strategy": "ephemeral",
    "pal_template": {
        **PAL_TEMPLATE,
        "layers": {**PAL_TEMPLATE["layers"], "llm": {"extra_body": {"x": "<value>"}}},
    },
}


def tenant_body(value: bytes) -> bytes:
    body = {"id": "nan-tenant", "name": "N", "profiles": {"p": PROFILE_WITH_VALUE}}
    return splice(body, value)


def patch_body(value: bytes) -> bytes:
    return splice({"profiles": {"free": PROFILE_WITH_VALUE}}, value)


def webhook_body(conversation_id: str, value: bytes) -> bytes:
    event = {
        "event_type": "application.recording_ready",
        "conversation_id": conversation_id,
        "properties": {"x": "<value>"},
    }
    return splice(event, value)


@pytest.mark.parametrize("value", NOT_STRICT_VALUES.values(), ids=NOT_STRICT_VALUES.keys())
class TestNotStrictJson:
    async def test_tenant_start(self, palisade: Palisade, doors: Doors, value: bytes) -> None:
        before = await row_counts(palisade)
        response = await palisade.as_tenant(
            doors.key,
            "POST",
            "/sessions",
            content=session_body(value),
            headers={"content-type": "application/json"},
        )
        assert_problem(response, 400, "malformed_json")
        assert await row_counts(palisade) == before

    async def test_admin_create(self, palisade: Palisade, doors: Doors, value: bytes) -> None:
        before = await row_counts(palisade)
        response = await palisade.client.post(
            "/tenants", content=tenant_body(value), headers=JSON_AS_ADMIN
        )
        assert_problem(response, 400, "malformed_json")
        assert await row_counts(palisade) == before

    async def test_admin_patch(self, palisade: Palisade, doors: Doors, value: bytes) -> None:
        response = await palisade.client.patch(
            f"/tenants/{TENANT}", content=patch_body(value), headers=JSON_AS_ADMIN
        )
        assert_problem(response, 400, "malformed_json")
        # The profile is unchanged: the next start on it works.
        assert (await start(palisade, doors.key, {"profile": "free"})).status_code == 201

    async def test_webhook(self, palisade: Palisade, doors: Doors, value: bytes) -> None:
        before = await row_counts(palisade)
        response = await palisade.client.post(
            f"/webhooks/tavus/{doors.session_id}",
            params={"token": doors.token},
            content=webhook_body(doors.conversation_id, value),
            headers={"content-type": "application/json"},
        )
        assert_problem(response, 400, "malformed_json")
        assert await row_counts(palisade) == before


def operations_with_a_body(
    palisade: Palisade, doors: Doors
) -> list[tuple[str, str, dict[str, str]]]:
    """Every operation of the OpenAPI document that takes a body, aimed at objects that
    exist, with the credentials it needs."""
    known = {"tenant_id": TENANT, "session_id": doors.session_id}
    found: list[tuple[str, str, dict[str, str]]] = []
    for template, item in palisade.app.openapi()["paths"].items():
        for method, operation in item.items():
            if "requestBody" not in operation:
                continue
            path = template.format(**known)
            if template.startswith("/webhooks/"):
                found.append((method.upper(), f"{path}?token={doors.token}", {}))
            elif template.startswith("/tenants"):
                found.append((method.upper(), path, ADMIN_HEADERS))
            else:
                found.append((method.upper(), path, {"Authorization": f"Bearer {doors.key}"}))
    return found


async def test_every_operation_with_a_body_decodes_it_strictly(
    palisade: Palisade, doors: Doors
) -> None:
    operations = operations_with_a_body(palisade, doors)
    assert len(operations) >= 5
    for method, path, auth in operations:
        response = await palisade.client.request(
            method,
            path,
            content=b'{"x": NaN}',
            headers={**auth, "content-type": "application/json"},
        )
        assert_problem(response, 400, "malformed_json")


@pytest.mark.parametrize(("levels", "status"), [(MAX_JSON_DEPTH, 200), (MAX_JSON_DEPTH + 1, 400)])
async def test_the_depth_limit_counts_every_level(
    palisade: Palisade, doors: Doors, levels: int, status: int
) -> None:
    # The event object and its "properties" object are two levels.
    arrays = levels - 2
    value = b"[" * arrays + b"0" + b"]" * arrays
    response = await palisade.client.post(
        f"/webhooks/tavus/{doors.session_id}",
        params={"token": doors.token},
        content=webhook_body(doors.conversation_id, value),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == status, response.text


async def test_a_deep_webhook_logs_no_traceback(
    palisade: Palisade, doors: Doors, caplog: pytest.LogCaptureFixture
) -> None:
    value = b'{"a":' * 500 + b"0" + b"}" * 500
    with caplog.at_level(logging.DEBUG):
        response = await palisade.client.post(
            f"/webhooks/tavus/{doors.session_id}",
            params={"token": doors.token},
            content=webhook_body(doors.conversation_id, value),
            headers={"content-type": "application/json"},
        )
    assert_problem(response, 400, "malformed_json")
    assert not [r for r in caplog.records if r.exc_info]
    assert sum(len(r.getMessage()) for r in caplog.records) < 10_000


# --- oversize bodies, with and without Content-Length -------------------------------


async def chunks(total: int, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b" " * piece


def oversize_doors(doors: Doors) -> Iterator[tuple[str, str, dict[str, str], dict[str, str]]]:
    admin = ADMIN_HEADERS
    tenant = {"Authorization": f"Bearer {doors.key}"}
    yield "POST", "/sessions", tenant, {}
    yield "POST", "/tenants", admin, {}
    yield "PATCH", f"/tenants/{TENANT}", admin, {}
    yield "POST", f"/webhooks/tavus/{doors.session_id}", {}, {"token": doors.token}


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_oversize_bodies_are_413(palisade: Palisade, doors: Doors, declared: bool) -> None:
    limit = palisade.runtime.settings.max_body_bytes
    before = await row_counts(palisade)
    for method, path, auth, params in oversize_doors(doors):
        content: bytes | AsyncIterator[bytes] = (
            b" " * (limit + 1) if declared else chunks(limit + 1)
        )
        response = await palisade.client.request(
            method,
            path,
            params=params,
            content=content,
            headers={**auth, "content-type": "application/json"},
        )
        assert_problem(response, 413, "payload_too_large")
        if not declared:
            assert "content-length" not in response.request.headers
    assert await row_counts(palisade) == before


# --- forged cursors --------------------------------------------------------------------


def forged(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


SESSION_CURSORS = {
    "a number for the id": forged(["2026-12-31T00:00:00+00:00", 123]),
    "year 1 east of UTC": forged(["0001-01-01T00:00:00+23:59", str(uuid.uuid4())]),
    "year 9999 west of UTC": forged(["9999-12-31T23:59:59-23:59", str(uuid.uuid4())]),
    "no offset": forged(["2026-12-31T00:00:00", str(uuid.uuid4())]),
    "a number for the time": forged([1e308, str(uuid.uuid4())]),
    "three members": forged(["2026-12-31T00:00:00+00:00", str(uuid.uuid4()), 1]),
    "an object": forged({"created_at": "2026-12-31T00:00:00+00:00"}),
    "null": forged(None),
    "a nested list": forged([["2026-12-31T00:00:00+00:00"], [str(uuid.uuid4())]]),
    "not a uuid": forged(["2026-12-31T00:00:00+00:00", "not-a-uuid"]),
    "NaN": forged(b'[NaN, "x"]'),
    "not UTF-8": forged(b'["\xff", "x"]'),
    "not base64": "!!!!",
    "one base64 char too many": "A",
    "an event cursor": forged([5]),
}
EVENT_CURSORS = {
    **{k: v for k, v in SESSION_CURSORS.items() if k != "an event cursor"},
    "a session cursor": forged(["2026-12-31T00:00:00+00:00", str(uuid.uuid4())]),
    "zero": forged([0]),
    "negative": forged([-1]),
    "past bigint": forged([2**63]),
    "a float": forged([5.0]),
    "a boolean": forged([True]),
    "a string": forged(["5"]),
}


@pytest.mark.parametrize("cursor", SESSION_CURSORS.values(), ids=SESSION_CURSORS.keys())
async def test_forged_session_cursors_are_400(
    palisade: Palisade, doors: Doors, cursor: str
) -> None:
    response = await palisade.as_tenant(doors.key, "GET", "/sessions", params={"cursor": cursor})
    assert_problem(response, 400, "invalid_cursor")


@pytest.mark.parametrize("cursor", EVENT_CURSORS.values(), ids=EVENT_CURSORS.keys())
async def test_forged_event_cursors_are_400(palisade: Palisade, doors: Doors, cursor: str) -> None:
    response = await palisade.as_tenant(
        doors.key, "GET", f"/sessions/{doors.session_id}/events", params={"cursor": cursor}
    )
    assert_problem(response, 400, "invalid_cursor")


# --- webhook timestamps outside any sane window --------------------------------------

ABSURD_TIMESTAMPS = [
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "1970-01-01T00:00:00Z",
    "3000-01-01T00:00:00Z",
    "+275760-09-13T00:00:00Z",
]


@pytest.mark.parametrize("timestamp", ABSURD_TIMESTAMPS)
@pytest.mark.parametrize("event_type", ["system.replica_joined", "application.recording_ready"])
async def test_absurd_webhook_timestamps_are_kept_without_a_time(
    palisade: Palisade, doors: Doors, timestamp: str, event_type: str
) -> None:
    event = {
        "event_type": event_type,
        "conversation_id": doors.conversation_id,
        "timestamp": timestamp,
        "properties": {},
    }
    response = await palisade.client.post(
        f"/webhooks/tavus/{doors.session_id}", params={"token": doors.token}, json=event
    )
    assert response.status_code == 200, response.text
    events = await palisade.as_tenant(doors.key, "GET", f"/sessions/{doors.session_id}/events")
    [stored] = [e for e in events.json()["items"] if e["type"] == event_type]
    assert stored["occurred_at"] is None
    assert stored["payload"]["timestamp"] == timestamp
    session = (await palisade.as_tenant(doors.key, "GET", f"/sessions/{doors.session_id}")).json()
    assert session["status"] == "active"
