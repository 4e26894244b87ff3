"""Tenant webhooks end to end: real `palisade serve` processes, the simulator, and a
receiver process; each delivery verified with the standardwebhooks library."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.support.cluster import (
    PalisadeProcess,
    admin,
    make_tenant,
    simulator_process,
)
from tests.support.receiver import Receiver, receiver_process
from tests.support.wait import until_sync

pytestmark = pytest.mark.e2e

FAST = {
    "PALISADE_WEBHOOK_RETRY_SECONDS": "[0.2, 0.2, 0.2]",
    "PALISADE_WEBHOOK_TIMEOUT_SECONDS": "1",
    "PALISADE_WEBHOOK_TICK_SECONDS": "0.2",
    "PALISADE_RECONCILER_TICK_SECONDS": "0.2",
    "PALISADE_RETRY_BACKOFF_SECONDS": "0.2",
}


def add_endpoint(url: str, receiver: Receiver, events: list[str] | None = None) -> str:
    # Production mode: the receiver is on loopback over http, which the endpoint allows.
    body: dict[str, Any] = {
        "url": f"{receiver.url}/hook",
        "allow_http": True,
        "allow_private": True,
    }
    if events is not None:
        body["events"] = events
    created = admin(url, "POST", "/tenants/acme/webhook-endpoints", json=body)
    assert created.status_code == 201, created.text
    secret: str = created.json()["secret"]
    return secret


def verified(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    return [Webhook(secret).verify(r["raw"], r["headers"]) for r in receiver.requests_sync()]


def end(url: str, key: str, session_id: str) -> None:
    response = httpx.post(
        f"{url}/sessions/{session_id}/end",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 202, response.text


def test_a_sessions_life_arrives_in_order_and_verified(
    tmp_path: Path, fresh_database_url: str
) -> None:
    with (
        simulator_process(tmp_path) as simulator,
        receiver_process(tmp_path) as receiver,
    ):
        service = PalisadeProcess(fresh_database_url, simulator.url, tmp_path, env=FAST)
        with service.run():
            key, _ = make_tenant(service.url, simulator.url)
            secret = add_endpoint(service.url, receiver)
            session = httpx.post(
                f"{service.url}/sessions",
                json={"profile": "voices"},
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            ).json()
            end(service.url, key, session["id"])

            def life() -> list[dict[str, Any]] | None:
                events = verified(receiver, secret)
                types = {e["type"] for e in events}
                wanted = {"session.active", "session.ended", "session.cleanup_done"}
                return events if wanted <= types else None

            events = until_sync(life, within=30, interval=0.2, message="the session's life")
            ordered = sorted(events, key=lambda e: e["sequence"])
            types = [e["type"] for e in ordered]
            assert types[0] == "session.active"
            assert types.index("session.ended") < types.index("session.cleanup_done")
            assert len(set(types)) == len(types)
            assert all(e["data"]["id"] == session["id"] for e in events)
            assert ordered[types.index("session.ended")]["data"]["status"] == "ended"
            assert ordered[types.index("session.cleanup_done")]["data"]["cleanup"] == "done"


def test_500_twice_then_200_is_received_three_times_with_one_id(
    tmp_path: Path, fresh_database_url: str
) -> None:
    with (
        simulator_process(tmp_path) as simulator,
        receiver_process(tmp_path, "--fail-first", "500,500") as receiver,
    ):
        service = PalisadeProcess(fresh_database_url, simulator.url, tmp_path, env=FAST)
        with service.run():
            key, _ = make_tenant(service.url, simulator.url)
            secret = add_endpoint(service.url, receiver, ["session.active"])
            httpx.post(
                f"{service.url}/sessions",
                json={"profile": "coach"},
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )

            def three() -> list[dict[str, Any]] | None:
                got = receiver.requests_sync()
                return got if len(got) >= 3 else None

            requests = until_sync(three, within=30, interval=0.2, message="three requests")
            assert [r["answered"] for r in requests] == [500, 500, 200]
            assert len({r["headers"]["webhook-id"] for r in requests}) == 1
            for request in requests:
                Webhook(secret).verify(request["raw"], request["headers"])


def test_a_sender_killed_mid_delivery_loses_nothing(
    tmp_path: Path, fresh_database_url: str
) -> None:
    # One request at a time: the only one in flight when the process dies is the one it
    # dies on, and that is the only event the receiver may get twice.
    env = {**FAST, "PALISADE_WEBHOOK_ENDPOINT_CONCURRENCY": "1"}
    with (
        simulator_process(tmp_path) as simulator,
        receiver_process(tmp_path) as receiver,
    ):
        service = PalisadeProcess(fresh_database_url, simulator.url, tmp_path, env=env)
        with service.run():
            key, _ = make_tenant(service.url, simulator.url)
            secret = add_endpoint(service.url, receiver)
        with service.run(PALISADE_CRASH_AT="webhook.sent") as doomed:
            try:
                session = httpx.post(
                    f"{service.url}/sessions",
                    json={"profile": "voices"},
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=30,
                ).json()
            except httpx.TransportError:
                session = None
            # The receiver answered; the process dies before it records that.
            assert doomed.process.wait(timeout=30) == -signal.SIGKILL
        assert len(receiver.requests_sync()) == 1

        with service.run():
            sessions = httpx.get(
                f"{service.url}/sessions", headers={"Authorization": f"Bearer {key}"}, timeout=30
            ).json()["items"]
            [listed] = sessions
            if session is not None:
                assert listed["id"] == session["id"]
            end(service.url, key, listed["id"])

            def settled() -> list[dict[str, Any]] | None:
                page = admin(service.url, "GET", "/tenants/acme/webhook-deliveries").json()
                items: list[dict[str, Any]] = page["items"]
                types = {d["event_type"] for d in items}
                done = all(d["status"] == "delivered" for d in items)
                wanted = {"session.active", "session.ended", "session.cleanup_done"}
                return items if done and wanted <= types else None

            deliveries = until_sync(settled, within=60, interval=0.25, message="all delivered")
            events = verified(receiver, secret)
            sent = Counter(e["id"] for e in events)
            # Nothing lost: every event of the outbox reached the receiver...
            assert set(sent) == {d["event_id"] for d in deliveries}
            # ...and only the one in flight at the kill came twice.
            assert sorted(sent.values()) == [1] * (len(sent) - 1) + [2]
            [twice] = [e for e, n in sent.items() if n == 2]
            assert next(e for e in events if e["id"] == twice)["type"] == "session.active"
