from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx

from tavus_simulator import SimulatorConfig, build_server
from tests.integration.simulator.conftest import (
    PAL_BODY,
    Served,
    WebhookReceiver,
    eventually,
    eventually_async,
    free_port,
)

REPO = Path(__file__).resolve().parents[3]


async def test_full_session_over_sockets(served: Served, receiver: WebhookReceiver) -> None:
    token, url = receiver.new_url()
    async with served.client(headers={"x-api-key": "k"}, timeout=5) as client:
        pal_id = (await client.post("/v2/pals", json=PAL_BODY)).json()["pal_id"]
        created = await client.post(
            "/v2/conversations", json={"pal_id": pal_id, "callback_url": url}
        )
        conversation_id = created.json()["conversation_id"]

        # The lifespan started the timers: the face joins by itself after 0.05 s.
        await eventually(lambda: receiver.event_types(token) == ["system.replica_joined"])
        ended = await client.post(f"/v2/conversations/{conversation_id}/end")
        deleted = await client.delete(f"/v2/pals/{pal_id}")
        got = await client.get(f"/v2/conversations/{conversation_id}")

    assert (ended.status_code, deleted.status_code) == (200, 204)
    assert got.json()["status"] == "ended"
    await eventually(lambda: len(receiver.bodies(token)) == 3)


async def test_serve_runs_from_the_command_line() -> None:
    port = free_port()
    prefill = '{"api_key": "k", "conversations": 30, "active_conversations": 1, "pals": 2}'
    options = ["--port", str(port), "--seed", "3", "--list-order", "oldest_first"]
    options += ["--list-max-limit", "5", "--list-page-ignored-after", "4", "--list-lag", "2.5"]
    options += ["--conversation-get-shape", "wrapped", "--prefill", prefill]
    options += ["--app-message-rate-limit", "7", "--app-message-rate-window", "30"]
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "tavus_simulator", *options],
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:

            async def state() -> httpx.Response | None:
                try:
                    return await client.get("/_sim/state")
                except httpx.TransportError:
                    return None

            response = await eventually_async(state, within=15, what="simulator listening")
            assert response is not None
            assert response.json()["seed"] == 3
            config = response.json()["config"]
            assert (config["list_order"], config["list_max_limit"]) == ("oldest_first", 5)
            assert (config["list_page_ignored_after"], config["list_lag_s"]) == (4, 2.5)
            assert config["conversation_get_shape"] == "wrapped"
            assert config["app_message_rate_limit"] == 7
            assert config["app_message_rate_window_s"] == 30
            listed = await client.get("/v2/conversations", headers={"x-api-key": "k"})
            assert listed.json()["total_count"] == 30
            assert listed.json()["data"][0]["conversation_name"] == "old-call-00001"
    finally:
        process.terminate()
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=10)
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it captured.
    assert process.returncode in (0, -15), stderr.decode()
    assert "Application shutdown complete" in stderr.decode()


def test_idle_connections_outlive_the_clients_keep_alive() -> None:
    # httpx keeps an idle connection for 5 s. A server closing at the same moment races
    # the client's next request on it: a create whose outcome is unknown.
    server = build_server("127.0.0.1", free_port(), SimulatorConfig())
    client_keep_alive = httpx.Limits().keepalive_expiry or 5.0
    assert server.config.timeout_keep_alive > 2 * client_keep_alive
