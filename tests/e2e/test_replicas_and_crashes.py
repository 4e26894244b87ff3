"""Real processes, real sockets, real webhooks: several `palisade serve` replicas on one
database run hundreds of sessions to the end while Tavus drops, duplicates and reorders
webhooks; processes are killed at the recovery points of start and cleanup. Afterwards
Tavus holds no ephemeral PAL and no live conversation, every session is terminal, and
no PAL was deleted twice (outside the kill that interrupts a delete)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cluster import PalisadeProcess, make_tenant, sim_state, simulator_process
from tests.support.wait import until_sync

pytestmark = pytest.mark.e2e

FAST_BACKGROUND = {
    "PALISADE_RECONCILER_TICK_SECONDS": "0.1",
    "PALISADE_POLL_INTERVAL_SECONDS": "0.5",
    "PALISADE_RETRY_BACKOFF_SECONDS": "0.1",
    "PALISADE_START_LEASE_SECONDS": "15",
    "PALISADE_SWEEP_INTERVAL_SECONDS": "0",
    # Two cores run three replicas, PostgreSQL and Tavus here: a short client timeout
    # would time out calls that are merely queued, and their retries would show up as
    # second deletes of the same PAL.
    "PALISADE_TAVUS_TIMEOUT_SECONDS": "5",
}
# Simulated time runs 600x: a 60 s call lasts 0.1 s.
SHORT_CALL = {"conversation": {"properties": {"max_call_duration": 60}}}


def _set_webhook_faults(simulator_url: str, faults: list[dict[str, Any]]) -> None:
    response = httpx.put(
        f"{simulator_url}/_sim/faults/webhook", json={"faults": faults}, timeout=10
    )
    assert response.status_code == 200, response.text


def _all_settled(url: str, key: str) -> list[dict[str, Any]] | None:
    sessions: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(
            f"{url}/sessions", params=params, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ).json()
        sessions += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    settled = all(
        s["status"] in ("ended", "failed") and s["cleanup"] != "pending" for s in sessions
    )
    return sessions if settled else None


def _assert_nothing_left(
    simulator_url: str,
    persistent: str,
    *,
    allow_double_delete: int = 0,
    explain: Any = None,
) -> None:
    state = sim_state(simulator_url)
    live_pals = [
        p
        for p in state["pals"]
        if p["deleted_at"] is None and p["pal_type"] == "user" and p["pal_id"] != persistent
    ]
    assert live_pals == []
    assert [c for c in state["conversations"] if c["status"] == "active"] == []
    deleted_twice = [p["pal_id"] for p in state["pals"] if p["delete_calls"] > 1]
    if len(deleted_twice) > allow_double_delete:
        calls = httpx.get(f"{simulator_url}/_sim/calls?operation=pal.delete", timeout=10).json()
        detail = [c for c in calls["data"] if c["object_id"] in deleted_twice]
        extra = explain(set(deleted_twice)) if explain else ""
        raise AssertionError(f"PALs deleted more than once: {detail}\n{extra}")
    persistent_pal = next(p for p in state["pals"] if p["pal_id"] == persistent)
    assert persistent_pal["deleted_at"] is None
    assert persistent_pal["delete_calls"] == 0


async def _start_many(urls: list[str], key: str, count: int) -> list[httpx.Response]:
    headers = {"Authorization": f"Bearer {key}"}
    limit = asyncio.Semaphore(12)

    async def one(i: int, client: httpx.AsyncClient) -> httpx.Response:
        profile = "voices" if i % 3 else "coach"
        async with limit:
            response = await client.post(
                f"{urls[i % len(urls)]}/sessions",
                json={"profile": profile, "external_ref": f"user-{i}", **SHORT_CALL},
                headers={**headers, "Idempotency-Key": f"k-{i}"},
            )
            if i % 5 == 0 and response.status_code == 201:
                # Some users leave early: an explicit end races Tavus's own shutdown.
                await client.post(
                    f"{urls[(i + 1) % len(urls)]}/sessions/{response.json()['id']}/end",
                    headers=headers,
                )
            return response

    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(*(one(i, client) for i in range(count)))


def test_three_replicas_run_hundreds_of_sessions_through_webhook_chaos(
    tmp_path: Path, fresh_database_url: str
) -> None:
    with simulator_process(tmp_path, "--time-scale", "600", "--seed", "7") as simulator:
        replicas = [
            PalisadeProcess(fresh_database_url, simulator.url, tmp_path, env=FAST_BACKGROUND)
            for _ in range(3)
        ]
        with ExitStack() as running:
            procs = [running.enter_context(r.run()) for r in replicas]
            key, persistent = make_tenant(procs[0].url, simulator.url, cap=1000)
            _set_webhook_faults(
                simulator.url,
                [
                    {"kind": "drop", "rate": 0.25},
                    {"kind": "duplicate", "rate": 0.3, "copies": 2},
                    {"kind": "reorder", "rate": 0.2, "max_hold_ms": 200},
                    {
                        "kind": "delay",
                        "rate": 0.2,
                        "distribution": "uniform",
                        "low_ms": 10,
                        "high_ms": 300,
                    },
                ],
            )
            responses = asyncio.run(_start_many([p.url for p in procs], key, 240))
            assert {r.status_code for r in responses} == {201}, {
                r.status_code: r.text for r in responses if r.status_code != 201
            }
            sessions = until_sync(
                lambda: _all_settled(procs[0].url, key),
                within=90,
                interval=0.5,
                message="every session terminal and cleaned",
            )
            assert len(sessions) == 240

            def explain(pal_ids: set[str]) -> str:
                lines = []
                for session in sessions:
                    if session["pal_id"] in pal_ids:
                        log = httpx.get(
                            f"{procs[0].url}/sessions/{session['id']}/events",
                            headers={"Authorization": f"Bearer {key}"},
                            timeout=10,
                        ).json()["items"]
                        lines.append(f"{session['id']}: {log}")
                return "\n".join(lines)

            _assert_nothing_left(simulator.url, persistent, allow_double_delete=0, explain=explain)


@pytest.mark.parametrize(
    ("crash_at", "double_deletes"),
    [
        ("start.pal_created_not_recorded", 0),
        ("start.conversation_created_not_recorded", 0),
        ("cleanup.before_delete", 0),
        # The delete went through but was not recorded: the retry finds the PAL gone.
        ("cleanup.pal_deleted_not_recorded", 1),
    ],
)
def test_killed_at_a_recovery_point_then_restarted_leaves_nothing(
    tmp_path: Path, fresh_database_url: str, crash_at: str, double_deletes: int
) -> None:
    with simulator_process(tmp_path, "--time-scale", "600") as simulator:
        # One replica and no load: short timeouts, so the dead start's lease runs out soon.
        env = {
            **FAST_BACKGROUND,
            "PALISADE_TAVUS_TIMEOUT_SECONDS": "2",
            "PALISADE_START_LEASE_SECONDS": "6",
        }
        service = PalisadeProcess(fresh_database_url, simulator.url, tmp_path, env=env)
        with service.run(PALISADE_CRASH_AT=crash_at) as doomed:
            key, persistent = make_tenant(service.url, simulator.url)
            # No Idempotency-Key: nobody will retry, the reconciler must finish it. The
            # request itself may die with the process.
            with contextlib.suppress(httpx.TransportError):
                httpx.post(
                    f"{service.url}/sessions",
                    json={"profile": "voices", **SHORT_CALL},
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=30,
                )
            assert doomed.process.wait(timeout=60) == -signal.SIGKILL, doomed.log.read_text()

        with service.run():
            sessions = until_sync(
                lambda: _all_settled(service.url, key),
                within=60,
                interval=0.25,
                message="session terminal and cleaned",
            )
            assert len(sessions) == 1
            assert sessions[0]["status"] == "ended"
            _assert_nothing_left(simulator.url, persistent, allow_double_delete=double_deletes)
