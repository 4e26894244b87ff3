"""A `palisade serve` process killed with SIGKILL in the middle of a start: the client's
retry with the same Idempotency-Key yields one conversation and no leaked PAL."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import PalisadeProcess, make_tenant, sim_state, simulator_process
from tests.support.wait import until_sync

pytestmark = pytest.mark.e2e

LEASE_SECONDS = "6"


@pytest.mark.parametrize(
    "crash_at", ["start.pal_created_not_recorded", "start.conversation_created_not_recorded"]
)
def test_retry_after_a_kill_mid_start_creates_nothing_twice(
    tmp_path: Path, fresh_database_url: str, crash_at: str
) -> None:
    with simulator_process(tmp_path) as simulator:
        service = PalisadeProcess(
            fresh_database_url,
            simulator.url,
            tmp_path,
            env={"PALISADE_START_LEASE_SECONDS": LEASE_SECONDS},
        )
        body = {"profile": "voices", "external_ref": "crash"}
        with service.run(PALISADE_CRASH_AT=crash_at) as doomed:
            key, persistent = make_tenant(service.url, simulator.url)
            headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "retry-me"}
            with pytest.raises(httpx.TransportError):
                httpx.post(f"{service.url}/sessions", json=body, headers=headers, timeout=30)
            assert doomed.process.wait(timeout=30) == -signal.SIGKILL

        with service.run():

            def retry() -> httpx.Response | None:
                response = httpx.post(
                    f"{service.url}/sessions", json=body, headers=headers, timeout=30
                )
                if response.status_code == 409:
                    assert response.json()["code"] == "idempotency_key_in_flight"
                    return None  # the dead attempt's lease has not run out yet
                return response

            response = until_sync(retry, within=30, interval=0.25, message="retry accepted")
            assert response.status_code == 201, response.text
            session = response.json()
            replay = httpx.post(f"{service.url}/sessions", json=body, headers=headers, timeout=30)
            assert replay.json()["id"] == session["id"]
            _one_of_each(simulator.url, session, persistent)


def _one_of_each(simulator_url: str, session: dict[str, object], persistent: str) -> None:
    state = sim_state(simulator_url)
    ephemeral = [p for p in state["pals"] if p["pal_id"] != persistent and p["pal_type"] == "user"]
    assert [p["pal_id"] for p in ephemeral] == [session["pal_id"]]
    assert [c["conversation_id"] for c in state["conversations"]] == [session["conversation_id"]]
