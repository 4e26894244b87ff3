"""No secret reaches the logs during a whole lifecycle, and every line says whose it is."""

from __future__ import annotations

import copy
import json
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from app.observability.logging import UVICORN_ACCESS_LOGGER
from app.settings import Mode
from app.tavus.models import PalCreate
from tavus_simulator import ErrorFault
from tests.conftest import PalisadeFactory
from tests.integration.api import test_pal_credentials as credentials
from tests.integration.api.test_sessions import setup_tenant, start
from tests.integration.api.test_webhooks import callback, wait_status
from tests.support.stack import ADMIN_HEADERS, PAL_TEMPLATE, Palisade, SimulatorHandle
from tests.unit.observability.capture import CapturedLogs, captured_logs

GLOBAL_TAVUS_KEY = "global-tavus-key-7d1e0c9b55"
TENANT_TAVUS_KEY = "tenant-tavus-key-3f8a26e4c1"
UUID_IN_PATH = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SESSION_ROUTES = {
    "/sessions/{session_id}",
    "/sessions/{session_id}/end",
    "/sessions/{session_id}/events",
    "/webhooks/tavus/{session_id}",
}


@pytest.fixture
async def palisade(palisade_factory: PalisadeFactory) -> Palisade:
    return await palisade_factory(TAVUS_API_KEY=GLOBAL_TAVUS_KEY)


@pytest.fixture
def logs(palisade: Palisade) -> Iterator[CapturedLogs]:
    """Everything the process logs at DEBUG, as production writes it (JSON lines)."""
    settings = palisade.runtime.settings.model_copy(
        update={"mode": Mode.PRODUCTION, "log_level": "debug"}
    )
    access = logging.getLogger(UVICORN_ACCESS_LOGGER)
    level = access.level
    with captured_logs(settings) as captured:
        # Palisade silences uvicorn's access log; let it through here to show the safety
        # net scrubbing the webhook token from the URLs it prints.
        access.setLevel(logging.INFO)
        access.propagate = True
        try:
            yield captured
        finally:
            access.setLevel(level)


async def tenant_with_own_key(palisade: Palisade) -> str:
    own = palisade.runtime.tavus.with_api_key(TENANT_TAVUS_KEY)
    pal = await own.create_pal(PalCreate(default_face_id="r1", pal_name="Own", system_prompt="x"))
    body = {
        "id": "ownkey",
        "name": "Own Key",
        "max_concurrent_sessions": 5,
        "tavus_api_key": TENANT_TAVUS_KEY,
        "profiles": {
            "coach": {"strategy": "reuse", "pal_id": pal.pal_id},
            "voices": {"strategy": "ephemeral", "pal_template": copy.deepcopy(PAL_TEMPLATE)},
        },
        "default_profile": "coach",
    }
    return await palisade.create_tenant(body)


async def lifecycle(
    palisade: Palisade, simulator: SimulatorHandle, key: str, profile: str
) -> dict[str, Any]:
    response = await start(palisade, key, {"profile": profile}, idempotency_key=uuid.uuid4().hex)
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    simulator.sim.join_face(session["conversation_id"])
    simulator.sim.shutdown_conversation(session["conversation_id"], "participant_left_timeout")
    cleanup = "done" if session["pal_ephemeral"] else None
    await wait_status(palisade, key, session["id"], "ended", cleanup=cleanup)
    return session


async def test_no_secret_is_ever_logged(
    palisade: Palisade, simulator: SimulatorHandle, logs: CapturedLogs
) -> None:
    key, _ = await setup_tenant(palisade)
    own_key = await tenant_with_own_key(palisade)
    sessions = [
        await lifecycle(palisade, simulator, key, "voices"),
        await lifecycle(palisade, simulator, own_key, "voices"),
        await lifecycle(palisade, simulator, own_key, "coach"),
    ]
    # A failed start with a tenant's key: Tavus's error goes through the client's log line.
    simulator.sim.add_fault("conversation.create", ErrorFault(preset="server_error", times=1))
    failed = await start(palisade, own_key, {"profile": "coach"})
    assert failed.status_code == 502
    # Admin calls, and the tenant API listing its sessions.
    assert (await palisade.admin("GET", "/tenants")).status_code == 200
    renamed = await palisade.admin("PATCH", "/tenants/ownkey", json={"name": "Own"})
    assert renamed.status_code == 200
    assert (await palisade.as_tenant(own_key, "GET", "/sessions")).status_code == 200
    # Webhooks as Tavus sends them (the real token, a replayed event), and forged ones.
    first = sessions[0]
    url = callback(simulator, first["conversation_id"])
    event = {
        "event_type": "application.transcription_ready",
        "conversation_id": first["conversation_id"],
        "properties": {"transcript": []},
        "webhook_url": url,
    }
    assert (await palisade.client.post(url, json=event)).status_code == 200
    forged = f"/webhooks/tavus/{first['id']}?token=forged-{uuid.uuid4().hex}"
    assert (await palisade.client.post(forged, json=event)).status_code == 401
    wrong_session = f"/webhooks/tavus/{sessions[1]['id']}?{urlsplit(url).query}"
    assert (await palisade.client.post(wrong_session, json=event)).status_code == 401
    # Wrong credentials are logged as refusals, never echoed.
    bad_key = key[:-4] + "abcd"
    assert (await palisade.as_tenant(bad_key, "GET", "/sessions")).status_code == 401
    bad_admin = {"Authorization": f"Bearer {ADMIN_HEADERS['Authorization'][7:]}-nope"}
    assert (await palisade.client.get("/tenants", headers=bad_admin)).status_code == 401

    secrets = {
        "tenant API key": key,
        "other tenant API key": own_key,
        "admin token": ADMIN_HEADERS["Authorization"].removeprefix("Bearer "),
        "tenant Tavus key": TENANT_TAVUS_KEY,
        "global Tavus key": GLOBAL_TAVUS_KEY,
        "secret key": palisade.runtime.settings.secret_key_value,
        **{
            f"webhook token of {s['id']}": palisade.runtime.webhook_tokens.token_for(s["id"])
            for s in sessions
        },
    }
    text = logs.text
    assert len(logs.lines()) > 50
    leaked = [name for name, secret in secrets.items() if secret in text]
    assert leaked == []
    # The bad credentials are not secrets, but echoing them would leak near-misses.
    assert bad_key not in text
    # Fragments a scrubbing mistake could leave behind.
    assert key[8:] not in text
    assert "?token=" not in text.replace("?token=[REDACTED]", "")


async def test_request_and_session_lines_say_whose_they_are(
    palisade: Palisade, simulator: SimulatorHandle, logs: CapturedLogs
) -> None:
    key, _ = await setup_tenant(palisade)
    session = await lifecycle(palisade, simulator, key, "voices")
    traced = await palisade.as_tenant(
        key, "GET", f"/sessions/{session['id']}", headers={"X-Request-ID": "trace-0042"}
    )
    assert traced.headers["x-request-id"] == "trace-0042"
    untraced = await palisade.as_tenant(
        key, "GET", "/sessions", headers={"X-Request-ID": "not a token"}
    )
    assert untraced.headers["x-request-id"] != "not a token"

    records = logs.records()
    requests = [r for r in records if r["logger"] == "palisade.http"]
    assert requests
    assert all(r.get("request_id") for r in requests)
    for record in requests:
        if record["route"] in SESSION_ROUTES and record["status"] < 400:
            path_id = UUID_IN_PATH.search(record["path"])
            assert path_id is not None
            assert record["session_id"] == path_id.group(0)
    [created] = [r for r in requests if r["route"] == "/sessions" and r["status"] == 201]
    assert created["session_id"] == session["id"]
    [traced_line] = [r for r in requests if r["request_id"] == "trace-0042"]
    assert traced_line["route"] == "/sessions/{session_id}"
    assert traced_line["path"] == f"/sessions/{session['id']}"
    assert untraced.headers["x-request-id"] in {r["request_id"] for r in requests}

    # Lines logged while serving the start carry its ids: the Tavus calls it made.
    during_start = [
        r
        for r in records
        if r.get("request_id") == created["request_id"] and r["logger"] == "app.tavus._http"
    ]
    assert {r["session_id"] for r in during_start} == {session["id"]}
    assert len(during_start) >= 2  # the PAL, then the conversation
    webhooks = [r for r in records if r["logger"] == "app.api.webhooks"]
    assert webhooks
    assert all(r["session_id"] == session["id"] and r["request_id"] for r in webhooks)
    reconciled = [r for r in records if r["logger"] == "app.domain.sessions.reconcile"]
    assert reconciled
    assert all(r["session_id"] == session["id"] for r in reconciled)
    assert all(json.dumps(r) for r in records)


async def test_credentials_inside_pal_bodies_are_never_logged(
    palisade: Palisade, simulator: SimulatorHandle, logs: CapturedLogs
) -> None:
    key = await credentials.make_tenant(palisade)
    body = {"profile": "voices", "overrides": credentials.session_overrides()}
    started = await start(palisade, key, body, idempotency_key="credentials")
    assert started.status_code == 201, started.text
    # A PAL create Tavus refuses: its error goes through the client's log lines.
    simulator.sim.add_fault("pal.create", ErrorFault(preset="server_error", times=3))
    assert (await start(palisade, key, body)).status_code == 502
    assert (await palisade.admin("GET", "/tenants/acme")).status_code == 200

    assert len(logs.lines()) > 10
    leaked = [secret for secret in credentials.SECRETS if secret in logs.text]
    assert leaked == []
