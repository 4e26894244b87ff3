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
