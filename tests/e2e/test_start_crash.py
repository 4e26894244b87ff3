"""A `palisade serve` process killed with SIGKILL in the middle of a start: the client's
retry with the same Idempotency-Key yields one conversation and no leaked PAL."""

from __future__ import annotations

import signal
import time
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


def test_a_shutdown_that_came_before_the_id_frees_the_pal_soon_after_a_restart(
    tmp_path: Path, fresh_database_url: str
) -> None:
    # The process dies right after Tavus created the conversation, before its id was
    # stored; Tavus's shutdown then reaches the restarted process, which can only store
    # it. Once the dead start's lease runs out, the resumed start finds the conversation
    # through that event, applies it, and the PAL goes within the usual grace.
    with simulator_process(tmp_path) as simulator:
        service = PalisadeProcess(
            fresh_database_url,
            simulator.url,
            tmp_path,
            env={"PALISADE_START_LEASE_SECONDS": LEASE_SECONDS},
        )
        body = {"profile": "voices", "external_ref": "early"}
        with service.run(PALISADE_CRASH_AT="start.conversation_created_not_recorded") as doomed:
            key, persistent = make_tenant(service.url, simulator.url)
            headers = {"Authorization": f"Bearer {key}"}
            with pytest.raises(httpx.TransportError):
                httpx.post(f"{service.url}/sessions", json=body, headers=headers, timeout=30)
            assert doomed.process.wait(timeout=30) == -signal.SIGKILL

        with service.run():
            restarted = time.monotonic()
            (conversation,) = sim_state(simulator.url)["conversations"]
            ended = httpx.post(
                f"{simulator.url}/_sim/conversations/{conversation['conversation_id']}/shutdown",
                json={"reason": "participant_absent_timeout reached"},
                timeout=10,
            )
            assert ended.status_code == 200, ended.text

            def pal_deleted() -> bool:
                pals = sim_state(simulator.url)["pals"]
                ephemeral = [p for p in pals if p["pal_id"] != persistent]
                return bool(ephemeral) and all(p["deleted_at"] for p in ephemeral)

            until_sync(pal_deleted, within=30, interval=0.25, message="the PAL was deleted")
            assert time.monotonic() - restarted < 30
            listed = httpx.get(
                f"{service.url}/sessions", headers=headers, params={"external_ref": "early"}
            ).json()["items"]
            assert [s["status"] for s in listed] == ["ended"]
            assert listed[0]["end_reason"] == "participant_absent_timeout"
            assert len(sim_state(simulator.url)["conversations"]) == 1
