"""Hostile input against every operation of the OpenAPI document, on the live stack.

The schema-driven fuzzer (`test_openapi.py`) only sends what a JSON Schema can describe.
This stage sends what none does: `NaN`, `Infinity` and `1e999` tokens in the JSON text,
integers of hundreds of digits, nesting deeper than any limit, lone surrogates, U+0000,
right-to-left marks and 4-byte emoji, bytes that are not UTF-8, cursors forged from all
of these, a wrong JSON type at every field of a valid body, and bodies over the size
limit, declared and sent chunked. Requests carry valid credentials (and the webhook
route its valid token) and name a tenant, key and session that exist, so the input
reaches the handler. Every answer must be below 500, and every 4xx a problem document
(`application/problem+json`) with a `code`.

Hypothesis is synchronous and the stack lives on the test's event loop: the requests
are sent from a worker thread while the loop serves them.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain.strict_json import MAX_JSON_DEPTH
from app.main import create_app
from app.settings import DEV_ADMIN_TOKEN
from tests.conftest import make_settings
from tests.fuzz import budget
from tests.integration.api.test_sessions import setup_tenant, start
from tests.support.stack import PAL_TEMPLATE, Palisade

PROBLEM_JSON = "application/problem+json"
# A profile whose sessions may override free-form PAL fields, where any JSON is allowed.
FREE_FORM_PROFILE = "free"
FREE_FORM_PATHS = ["system_prompt", "layers.llm.extra_body"]
_DOCUMENT = create_app(make_settings(None)).openapi()
OPERATIONS = [
    (method.upper(), path) for path, item in _DOCUMENT["paths"].items() for method in item
]

# --- pieces of JSON text outside every schema (and often outside JSON) -----------------

NON_FINITE = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b"1E400", b"-0.5e9999"]
HUGE_INTEGERS = [
    str(10**400).encode(),
    str(-(10**400)).encode(),
    b"9" * 5000,
    str(2**63).encode(),
    str(-(2**63) - 1).encode(),
    str(2**31).encode(),
]
ODD_TEXT = [
    b'"\\ud800"',
    b'"lone low \\udfff"',
    b'"\\ud83d"',
    b'"\\ud83d\\ude00"',
    b'"\\u0000"',
    b'"a\\u0000b"',
    '"\u202eevil\u200f \u061c"'.encode(),
    '"\U0001f600\U0001f9d1\u200d\U0001f680"'.encode(),
    '"\ufeff\ufffe\uffff"'.encode(),
    b'"' + b"x" * 20_000 + b'"',
]
NOT_UTF8 = [
    b'"\xff"',
    b'"\xc0\xaf"',
    b'"\xed\xa0\x80"',
    b'"\xf4\x90\x80\x80"',
    b'"\xe2\x82"',
    b"\xfe\xff",
]
WRONG_TYPES = [
    b"null",
    b"true",
    b"false",
    b"0",
    b"-1",
    b"1.5",
    b'""',
    b"[]",
    b"{}",
    b'[1, "a", null]',
    b'{"a": {"b": []}}',
]
DEPTHS = [MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 300, 3000]

# Query and path values, already percent-encoded: bytes that are not UTF-8 once decoded.
RAW_ESCAPES = ["%FF", "%00", "%ED%A0%80", "%C0%AF", "a%00b", "%E2%80%AE", "%F0%9F%98%80"]
QUERY_WORDS = ["", "0", "-1", "1" * 400, "1e999", "NaN", "Infinity", "true", "null", "[]", "{}"]


def nested(depth: int, as_object: bool) -> bytes:
    if as_object:
        return b'{"a":' * depth + b"0" + b"}" * depth
    return b"[" * depth + b"]" * depth


def json_text(text: str, ascii_only: bool) -> bytes:
    """A JSON string for ``text``: escaped (lone surrogates as \\udxxx), or raw, where a
    lone surrogate becomes bytes that are not UTF-8."""
    return json.dumps(text, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


ANY_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec=None, exclude_categories=()),
        st.sampled_from(["\x00", "\ud800", "\udfff", "\u202e", "\U0001f600", "\ufeff"]),
    ),
    max_size=40,
)
PLAIN_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)

# One value, as JSON text, that no schema of Palisade's describes: each kind of trouble is
# one branch, drawn as often as any other.
HOSTILE_VALUE: st.SearchStrategy[bytes] = st.one_of(
    st.sampled_from(NON_FINITE),
    st.floats().map(lambda f: json.dumps(f).encode()),  # NaN and Infinity included
    st.sampled_from(HUGE_INTEGERS),
    st.integers(min_value=-(10**500), max_value=10**500).map(lambda i: str(i).encode()),
    st.builds(nested, st.sampled_from(DEPTHS), st.booleans()),
    st.sampled_from(ODD_TEXT),
    st.builds(json_text, ANY_TEXT, st.booleans()),
    st.sampled_from(NOT_UTF8),
    st.binary(max_size=20).map(lambda b: b'"' + b.replace(b'"', b"").replace(b"\\", b"") + b'"'),
    st.sampled_from(WRONG_TYPES),
    PLAIN_JSON.map(lambda v: json.dumps(v).encode()),
)


@dataclass(frozen=True)
class Known:
    """Objects that exist, and the credentials that reach them."""

    tenant_key: str
    session_id: str
    conversation_id: str
    token: str
    spare_key_id: str

    def path_values(self) -> dict[str, str]:
        return {
            "tenant_id": "acme",
            "name": "voices",
            "session_id": self.session_id,
            # A key of its own: revoking the one the fuzzer uses would stop it at 401.
            "key_id": self.spare_key_id,
        }

    def query_values(self) -> dict[str, str]:
        return {"token": self.token, "limit": "2", "status": "active"}


def valid_body(method: str, path: str, known: Known) -> Any:
    """A body the operation accepts, to aim hostile values at each of its fields."""
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/tenants"): {
            "id": "fuzzed",
            "name": "Fuzzed",
            "max_concurrent_sessions": 3,
            "profiles": {
                "p": {
                    "strategy": "ephemeral",
                    "pal_template": PAL_TEMPLATE,
                    "allowed_overrides": ["layers.llm.extra_body"],
                    "conversation": {"properties": {"max_call_duration": 60}},
                }
            },
            "default_profile": "p",
        },
        ("PATCH", "/tenants/{tenant_id}"): {"name": "Acme", "max_concurrent_sessions": 1000},
        ("POST", "/tenants/{tenant_id}/api-keys"): {"label": "fuzz"},
        ("POST", "/sessions"): {
            "profile": FREE_FORM_PROFILE,
            "external_ref": "user-1",
            "conversational_context": "context",
            "custom_greeting": "hi",
            "overrides": {
                "system_prompt": "Be brief.",
                "layers": {"llm": {"extra_body": {"temperature": 0.5, "stop": ["x"]}}},
            },
            "conversation": {
                "conversation_name": "c",
                "properties": {"max_call_duration": 60, "enable_recording": False},
            },
        },
        ("POST", "/webhooks/tavus/{session_id}"): {
            "event_type": "application.recording_ready",
            "conversation_id": known.conversation_id,
            "message_type": "application",
            "timestamp": "2026-11-23T10:00:00Z",
            "properties": {"bucket_name": "b", "s3_key": "k", "duration": 3},
        },
    }
    return copy.deepcopy(bodies.get((method, path), {}))


def locations(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every place in ``value`` a hostile value can go: each field and item, and a new
    key in each object."""
    yield path
    if isinstance(value, dict):
        yield (*path, "unexpected")
        for key, item in value.items():
            yield from locations(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from locations(item, (*path, index))


def with_values_at(body: Any, values: dict[tuple[str | int, ...], bytes]) -> bytes:
    """``body`` as JSON text with each of ``values`` (raw JSON text) at its location."""
    if () in values:
        return values[()]
    body = copy.deepcopy(body)
    placeholders: dict[bytes, bytes] = {}
    for number, (where, value) in enumerate(values.items()):
        parent: Any = body
        for step in where[:-1]:
            parent = _child(parent, step)
        if not isinstance(parent, dict | list):
            continue  # an earlier replacement took the place of an ancestor
        marker = f"@@hostile-{number}@@"
        if isinstance(parent, dict):
            parent[where[-1]] = marker
        else:
            parent[int(where[-1])] = marker
        placeholders[json.dumps(marker).encode()] = value
    encoded = json.dumps(body, ensure_ascii=False).encode()
    for placeholder, value in placeholders.items():
        encoded = encoded.replace(placeholder, value)
    return encoded


def _child(parent: Any, step: str | int) -> Any:
    if isinstance(parent, dict):
        return parent.get(step)
    if isinstance(parent, list):
        return parent[int(step)]
    return None


@st.composite
def hostile_body(draw: st.DrawFn, body: Any, attack: str, limit: int) -> bytes:
    """``body`` as JSON text, attacked: hostile values in one or two of its places, bytes
    that break it, or padding past the size limit."""
    valid = json.dumps(body).encode()
    if attack == "field":
        chosen = draw(st.lists(st.sampled_from(list(locations(body))), min_size=1, max_size=2))
        # Deepest first, so that a replaced parent never hides a child's value.
        places = sorted(set(chosen), key=len, reverse=True)
        return with_values_at(body, {where: draw(HOSTILE_VALUE) for where in places})
    if attack == "corrupt":
        at = draw(st.integers(min_value=0, max_value=len(valid)))
        junk = draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\x00", b"NaN", b"", b"\xed\xa0\x80"]))
        return valid[:at] + junk + valid[at + (1 if junk == b"" else 0) :]
    if attack == "oversize":
        # Valid JSON up to one byte past the limit.
        return valid + b" " * (limit + 1 - len(valid))
    return valid


EDGE_TIMES = st.sampled_from(
    [
        b'"2026-12-31T00:00:00+00:00"',
        b'"0001-01-01T00:00:00+23:59"',
        b'"9999-12-31T23:59:59-23:59"',
        b'"2026-12-31T00:00:00"',
        b'"2026-13-45T99:00:00Z"',
        b"1e308",
    ]
)
EDGE_IDS = st.sampled_from(
    [
        b'"00000000-0000-0000-0000-000000000000"',
        b'"not-a-uuid"',
        b"123",
        b"0",
        b"-1",
        str(2**63).encode(),
        b"5.0",
        b"true",
        b"null",
    ]
)
# Mostly the edge values, whose shape gets them furthest into decoding.
CURSOR_TIMES = st.one_of(EDGE_TIMES, EDGE_TIMES, EDGE_TIMES, HOSTILE_VALUE)
CURSOR_IDS = st.one_of(EDGE_IDS, EDGE_IDS, EDGE_IDS, HOSTILE_VALUE)


def cursor_of(members: tuple[bytes, ...] | list[bytes]) -> str:
    return base64.urlsafe_b64encode(b"[" + b",".join(members) + b"]").decode().rstrip("=")


SHAPED_LIKE_A_SESSION_CURSOR = st.tuples(CURSOR_TIMES, CURSOR_IDS).map(cursor_of)
SHAPED_LIKE_AN_EVENT_CURSOR = st.tuples(CURSOR_IDS).map(cursor_of)
FORGED_CURSORS = st.one_of(
    SHAPED_LIKE_A_SESSION_CURSOR,
    SHAPED_LIKE_A_SESSION_CURSOR,
    SHAPED_LIKE_AN_EVENT_CURSOR,
    SHAPED_LIKE_AN_EVENT_CURSOR,
    st.lists(st.one_of(CURSOR_TIMES, CURSOR_IDS), max_size=3).map(cursor_of),
    HOSTILE_VALUE.map(lambda v: base64.urlsafe_b64encode(v).decode()),
)


@st.composite
def query_value(draw: st.DrawFn, name: str) -> str:
    options: list[st.SearchStrategy[str]] = [
        st.sampled_from(QUERY_WORDS + RAW_ESCAPES),
        ANY_TEXT.map(lambda t: quote(t.encode("utf-8", "surrogatepass"), safe="")),
        HOSTILE_VALUE.map(lambda v: quote(v, safe="")),
    ]
    if name == "cursor":
        options.append(FORGED_CURSORS)
    return draw(st.one_of(options))


@dataclass(frozen=True)
class HostileRequest:
    attack: str
    method: str
    url: str
    headers: dict[str, bytes]
    body: bytes
    chunked: bool
    reads_body: bool
    is_webhook: bool

    def send(self, http: httpx.Client) -> httpx.Response:
        content: bytes | Iterator[bytes] = self.body
        if self.chunked:
            content = (self.body[i : i + 16_384] for i in range(0, len(self.body), 16_384))
        headers = [(name.encode(), value) for name, value in self.headers.items()]
        return http.request(self.method, self.url, headers=headers, content=content)


def attacks_on(operation: dict[str, Any]) -> list[str]:
    """The kinds of attack an operation is open to. Each request makes one, and the rest
    of it is sane, so that the attack is what the server has to deal with."""
    parameters = operation.get("parameters", [])
    attacks = ["oversize", "query", "header", "none"]
    if "requestBody" in operation:
        attacks += ["field", "field", "field", "corrupt"]
    if any(p["in"] == "query" and p["name"] == "cursor" for p in parameters):
        attacks += ["cursor", "cursor", "cursor"]
    if any(p["in"] == "path" for p in parameters):
        attacks += ["path", "path"]
    return attacks


HOSTILE_SEGMENTS = st.one_of(
    st.sampled_from([*RAW_ESCAPES, "x" * 300, "%2F..%2F", "%20", "0" * 40]),
    ANY_TEXT.filter(bool).map(lambda t: quote(t.encode("utf-8", "surrogatepass"), safe="")),
)
ODD_CONTENT_TYPES = [
    None,
    b"text/plain",
    b"application/json; charset=utf-16",
    b"application/merge-patch+json",
    b"application/x-www-form-urlencoded",
]


@st.composite
def hostile_requests(
    draw: st.DrawFn, method: str, template: str, known: Known, limit: int
) -> HostileRequest:
    operation = _DOCUMENT["paths"][template][method.lower()]
    parameters = operation.get("parameters", [])
    attack = draw(st.sampled_from(attacks_on(operation)))

    path = template
    in_path = [name for name in known.path_values() if "{" + name + "}" in path]
    aimed_segment = draw(st.sampled_from(in_path)) if attack == "path" and in_path else None
    for name in in_path:
        segment = quote(known.path_values()[name], safe="")
        if name == aimed_segment:
            segment = draw(HOSTILE_SEGMENTS)
        path = path.replace("{" + name + "}", segment)

    query: list[str] = []
    names = [p["name"] for p in parameters if p["in"] == "query" and p["name"] != "token"]
    aimed_parameter = None
    if attack == "cursor":
        aimed_parameter = "cursor" if "cursor" in names else "unexpected"
    elif attack == "query":
        aimed_parameter = draw(st.sampled_from([*names, "unexpected"]))
    for name in [*names, "unexpected"]:
        if name == aimed_parameter:
            value = draw(FORGED_CURSORS if attack == "cursor" else query_value(name))
        else:
            value = draw(st.sampled_from([None, known.query_values().get(name)]))
        if value is not None:
            query.append(f"{name}={value}")
    if any(p["name"] == "token" for p in parameters):
        # The token stays valid: a wrong one is refused before the body is read.
        query.append(f"token={known.token}")

    headers: dict[str, bytes] = {"Content-Type": b"application/json"}
    schemes = {name for requirement in operation.get("security", []) for name in requirement}
    if "AdminToken" in schemes:
        headers["Authorization"] = f"Bearer {DEV_ADMIN_TOKEN}".encode()
    if "TenantApiKey" in schemes:
        headers["Authorization"] = f"Bearer {known.tenant_key}".encode()
    if attack == "header":
        content_type = draw(st.sampled_from(ODD_CONTENT_TYPES))
        if content_type is None:
            del headers["Content-Type"]
        else:
            headers["Content-Type"] = content_type
        if any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in parameters):
            headers["Idempotency-Key"] = draw(
                st.one_of(
                    st.sampled_from([b"", b"k" * 300, b"a b", b"\xff\xfe", b"caf\xc3\xa9"]),
                    # Anything HTTP lets a header carry: visible ASCII and bytes above 0x7f.
                    st.binary(min_size=1, max_size=20)
                    .map(lambda b: bytes(c for c in b if c > 0x20 and c != 0x7F))
                    .filter(bool),
                )
            )

    body = draw(hostile_body(valid_body(method, template, known), attack, limit))
    return HostileRequest(
        attack,
        method,
        f"{path}?{'&'.join(query)}" if query else path,
        headers,
        body,
        chunked=draw(st.booleans()),
        reads_body="requestBody" in operation,
        is_webhook=template.startswith("/webhooks/"),
    )


def check(request: HostileRequest, response: httpx.Response, limit: int) -> None:
    where = (
        f"{request.attack}: {request.method} {request.url} "
        f"({len(request.body)} bytes, chunked={request.chunked})"
    )
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:500]}"
    if len(request.body) > limit and (not request.chunked or request.reads_body):
        # Refused before anything else, unless the webhook's token (checked before the
        # body is read) does not match a hostile session id.
        allowed = {413, 401} if request.is_webhook else {413}
        assert response.status_code in allowed, f"{where}: {response.status_code}"
    if response.status_code >= 400:
        assert response.headers.get("content-type") == PROBLEM_JSON, f"{where}: {response.headers}"
        problem = response.json()
        assert isinstance(problem.get("code"), str), f"{where}: {problem}"
        assert problem.get("status") == response.status_code, f"{where}: {problem}"


def _fuzz(palisade: Palisade, method: str, path: str, known: Known) -> None:
    limit = palisade.runtime.settings.max_body_bytes

    with httpx.Client(base_url=palisade.url, timeout=30) as http:

        @budget.seeded
        @settings(
            budget.hypothesis_settings(max_examples=budget.hostile_examples_per_operation()),
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.filter_too_much,
                HealthCheck.data_too_large,
                HealthCheck.large_base_example,
            ],
        )
        @given(request=hostile_requests(method, path, known, limit))
        def never_a_server_error(request: HostileRequest) -> None:
            check(request, request.send(http), limit)

        never_a_server_error()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
async def test_hostile_input_never_gets_a_server_error(
    method: str, path: str, palisade: Palisade
) -> None:
    tenant_key, _ = await setup_tenant(palisade, cap=1000)
    free_form = {
        "strategy": "ephemeral",
        "pal_template": PAL_TEMPLATE,
        "allowed_overrides": FREE_FORM_PATHS,
    }
    patched = await palisade.admin(
        "PATCH", "/tenants/acme", json={"profiles": {FREE_FORM_PROFILE: free_form}}
    )
    assert patched.status_code == 200, patched.text
    session = await start(palisade, tenant_key, {"profile": FREE_FORM_PROFILE})
    assert session.status_code == 201, session.text
    spare = await palisade.admin("POST", "/tenants/acme/api-keys", json={"label": "spare"})
    known = Known(
        tenant_key=tenant_key,
        session_id=session.json()["id"],
        conversation_id=session.json()["conversation_id"],
        token=palisade.runtime.webhook_tokens.token_for(session.json()["id"]),
        spare_key_id=spare.json()["id"],
    )
    await asyncio.to_thread(_fuzz, palisade, method, path, known)
