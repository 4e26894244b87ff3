"""A session's webhook token never leaves Palisade except in the callback URL sent to
Tavus: not stored, not logged, not returned.

Sessions live through the real stack (a start, the face joining, a shutdown delivered by
webhook; another whose webhooks are lost, ended by the reconciler's polling; events
replayed, and some sent by hand with the token in odd places). Then every row of every
table, every log line and every response is searched for each session's token.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.observability.logging import UVICORN_ACCESS_LOGGER
from app.settings import Mode
from tavus_simulator import DropFault
from tests.conftest import PalisadeFactory
from tests.integration.api.test_sessions import setup_tenant, start
from tests.integration.api.test_webhooks import callback, wait_status
from tests.support.stack import Palisade, SimulatorHandle
from tests.unit.observability.capture import CapturedLogs, captured_logs


@pytest.fixture
async def palisade(palisade_factory: PalisadeFactory) -> Palisade:
    return await palisade_factory(PALISADE_POLL_INTERVAL_SECONDS=0.2)


@pytest.fixture
def logs(palisade: Palisade) -> Iterator[CapturedLogs]:
    """Everything the process logs at DEBUG, uvicorn's access log included."""
    settings = palisade.runtime.settings.model_copy(
        update={"mode": Mode.PRODUCTION, "log_level": "debug"}
    )
    access = logging.getLogger(UVICORN_ACCESS_LOGGER)
    level = access.level
    with captured_logs(settings) as captured:
        access.setLevel(logging.INFO)
        access.propagate = True
        try:
            yield captured
        finally:
            access.setLevel(level)


@pytest.fixture
def responses(palisade: Palisade) -> list[str]:
    """The body and headers of every response Palisade gives the test's client."""
    seen: list[str] = []

    async def keep(response: httpx.Response) -> None:
        await response.aread()
        seen.append(f"{response.headers}\n{response.text}")

    palisade.client.event_hooks["response"].append(keep)
    return seen


async def every_stored_row(palisade: Palisade) -> dict[str, list[str]]:
    """Each table of the database (Alembic's included), its rows as text: every text,
    varchar, json and jsonb column of each row."""
    async with palisade.runtime.engine.connect() as connection:
        tables = (
            await connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            )
        ).scalars()
        return {
            table: list(
                (await connection.execute(text(f'SELECT t::text FROM "{table}" t'))).scalars()
            )
            for table in list(tables)
        }


async def read_back(palisade: Palisade, key: str, session_id: str) -> list[dict[str, Any]]:
    """The session, and its whole event log a page at a time."""
    assert (await palisade.as_tenant(key, "GET", f"/sessions/{session_id}")).status_code == 200
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = await palisade.as_tenant(key, "GET", f"/sessions/{session_id}/events", params=params)
        assert page.status_code == 200
        events += page.json()["items"]
        if not page.json()["next_cursor"]:
            return events
        params["cursor"] = page.json()["next_cursor"]


async def test_the_token_is_never_stored_logged_or_returned(
    palisade: Palisade,
    simulator: SimulatorHandle,
    logs: CapturedLogs,
    responses: list[str],
) -> None:
    key, _ = await setup_tenant(palisade)

    # A session ended by Tavus's webhooks.
    by_webhook = await start(palisade, key, {"profile": "voices"}, idempotency_key="life-1")
    assert by_webhook.status_code == 201, by_webhook.text
    first: dict[str, Any] = by_webhook.json()
    simulator.sim.join_face(first["conversation_id"])
    simulator.sim.shutdown_conversation(first["conversation_id"], "participant_left_timeout")
    await wait_status(palisade, key, first["id"], "ended", cleanup="done")

    # A session whose webhooks are lost: the reconciler polls Tavus, whose conversation
    # (and its events) carry the callback URL too.
    simulator.sim.add_fault("webhook", DropFault())
    second: dict[str, Any] = (await start(palisade, key, {"profile": "voices"})).json()
    simulator.sim.join_face(second["conversation_id"])
    simulator.sim.shutdown_conversation(second["conversation_id"], "max_call_duration reached")
    await wait_status(palisade, key, second["id"], "ended", cleanup="done")
    simulator.sim.clear_faults()

    # Replays, and events that carry the callback URL and the token in other places.
    url = callback(simulator, first["conversation_id"])
    token = palisade.runtime.webhook_tokens.token_for(first["id"])
    assert url.endswith(f"?token={token}")
    odd = {
        "event_type": "application.perception_analysis",
        "conversation_id": first["conversation_id"],
        "webhook_url": url,
        "callback_url": url.replace("?token=", "?v=2&token=") + "&x=1",
        "properties": {
            "analysis": f"the callback was {url}",
            "links": [{"href": url}, f"{url}#frag"],
            token: "the token as a key",
            "raw": token,
        },
    }
    assert (await palisade.client.post(url, json=odd)).status_code == 200
    assert (await palisade.client.post(url, json=odd)).status_code == 200  # replayed
    [shutdown] = [
        e
        for e in simulator.sim.conversation(first["conversation_id"]).events
        if e["event_type"] == "system.shutdown"
    ]
    assert (await palisade.client.post(url, json=shutdown)).status_code == 200  # replayed

    stored_events = [
        *await read_back(palisade, key, first["id"]),
        *await read_back(palisade, key, second["id"]),
    ]
    assert (await palisade.as_tenant(key, "GET", "/sessions")).status_code == 200
    webhooks = [e for e in stored_events if e["kind"] == "webhook"]
    assert {e["type"] for e in webhooks} >= {
        "system.replica_joined",
        "system.shutdown",
        "application.perception_analysis",
    }
    # The callback URL is kept, without its token.
    [kept] = [e for e in webhooks if e["type"] == "application.perception_analysis"]
    assert kept["payload"]["webhook_url"] == url.removesuffix(f"?token={token}")
    assert kept["payload"]["callback_url"].endswith("?v=2&x=1")

    tokens = {
        session["id"]: palisade.runtime.webhook_tokens.token_for(session["id"])
        for session in (first, second)
    }
    rows = await every_stored_row(palisade)
    assert rows["session_event"]
    for session_id, secret in tokens.items():
        assert [table for table, texts in rows.items() if any(secret in t for t in texts)] == [], (
            f"the token of {session_id} is stored"
        )
        assert secret not in logs.text, f"the token of {session_id} is logged"
        assert [r for r in responses if secret in r] == [], f"the token of {session_id} is returned"
    assert len(responses) > 10
    assert len(logs.lines()) > 20
    assert str(uuid.UUID(first["id"])) in logs.text
