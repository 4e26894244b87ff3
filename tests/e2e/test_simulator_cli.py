"""`palisade simulator` as an operator runs it: a real process, real sockets, real signals."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.support.processes import clean_env, free_port, palisade, running, wait_ready

pytestmark = pytest.mark.e2e

PAL_BODY = {
    "pal_name": "Life Coach",
    "default_face_id": "r90bbd427f71",
    "system_prompt": "You are a calm life coach.",
}


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_simulator_serves_the_options_it_was_given_and_stops_cleanly(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "simulator.log"
    command = palisade(
        "simulator",
        "--port",
        str(port),
        "--seed",
        "7",
        "--api-key",
        "k1",
        "--public-base-url",
        "https://rooms.example",
        "--webhook-timeout",
        "2.5",
    )
    with running(command, clean_env(), tmp_path, log) as process:
        wait_ready(f"{url}/_sim/healthz", process, log)
        assert httpx.get(f"{url}/_sim/healthz", timeout=5).json() == {"status": "ok"}

        headers = {"x-api-key": "k1"}
        created = httpx.post(f"{url}/v2/pals", json=PAL_BODY, headers=headers, timeout=5)
        assert created.status_code == 200, created.text
        pal_id = created.json()["pal_id"]
        conversation = httpx.post(
            f"{url}/v2/conversations", json={"pal_id": pal_id}, headers=headers, timeout=5
        )
        assert conversation.status_code == 200, conversation.text
        body = conversation.json()
        assert body["conversation_url"] == f"https://rooms.example/{body['conversation_id']}"
        refused = httpx.post(
            f"{url}/v2/pals", json=PAL_BODY, headers={"x-api-key": "k2"}, timeout=5
        )
        assert refused.status_code == 401

        state = httpx.get(f"{url}/_sim/state", timeout=5).json()
        assert state["seed"] == 7
        assert state["config"]["webhook_timeout_s"] == 2.5
        assert state["config"]["public_base_url"] == "https://rooms.example"

        process.send_signal(stop_signal)
        assert process.wait(timeout=30) == 0, log.read_text()

    assert "Application shutdown complete" in log.read_text()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/_sim/healthz", timeout=2)


def test_simulator_lists_and_prefills_as_told(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "simulator.log"
    prefill = '{"api_key": "k1", "conversations": 50, "active_conversations": 2, "pals": 3}'
    command = palisade(
        "simulator",
        "--port",
        str(port),
        "--list-order",
        "oldest_first",
        "--list-max-limit",
        "20",
        "--list-page-ignored-after",
        "0",
        "--list-lag",
        "5",
        "--conversation-get-shape",
        "wrapped",
        "--app-message-rate-limit",
        "10",
        "--app-message-rate-window",
        "15",
        "--prefill",
        prefill,
    )
    with running(command, clean_env(), tmp_path, log) as process:
        wait_ready(f"{url}/_sim/healthz", process, log)
        headers = {"x-api-key": "k1"}

        page = httpx.get(f"{url}/v2/conversations?limit=100&page=2", headers=headers, timeout=5)
        active = httpx.get(f"{url}/v2/conversations?status=active", headers=headers, timeout=5)
        config = httpx.get(f"{url}/_sim/state", timeout=5).json()["config"]

        assert page.json()["total_count"] == 50
        names = [c["conversation_name"] for c in page.json()["data"]]
        assert names == [f"old-call-{n:05d}" for n in range(1, 21)]
        assert active.json()["total_count"] == 2
        assert config["list_lag_s"] == 5
        assert config["conversation_get_shape"] == "wrapped"
        assert (config["app_message_rate_limit"], config["app_message_rate_window_s"]) == (10, 15)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()


def test_simulator_refuses_a_malformed_prefill(tmp_path: Path) -> None:
    bad = '{"api_key": "k1", "conversations": 1, "active_conversations": 2}'
    command = palisade("simulator", "--port", str(free_port()), "--prefill", bad)
    log = tmp_path / "simulator.log"
    with running(command, clean_env(), tmp_path, log) as process:
        assert process.wait(timeout=30) == 2
    assert "active_conversations cannot exceed conversations" in log.read_text()
