"""A `palisade serve` process killed with SIGKILL between a warm-pool PAL's create and
the write that records it: the next process finds the PAL by its tag, pools it, and
neither creates a second one nor leaks it."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.domain.sessions import tags
from tests.support.cluster import (
    METRICS_HEADERS,
    PalisadeProcess,
    admin,
    sim_state,
    simulator_process,
)
from tests.support.wait import until_sync

pytestmark = pytest.mark.e2e

LEASE_SECONDS = "6"
PROFILE = {
    "strategy": "ephemeral",
    "pal_template": {"pal_name": "Coach", "default_face_id": "r1", "system_prompt": "Be kind."},
    "warm_pool": {"size": 1},
}


def pool_pals(simulator_url: str) -> list[dict[str, Any]]:
    return [p for p in sim_state(simulator_url)["pals"] if tags.pool_id_from_name(p["pal_name"])]


def test_a_kill_after_a_pool_create_leaves_one_pooled_pal(
    tmp_path: Path, fresh_database_url: str
) -> None:
    with simulator_process(tmp_path) as simulator:
        service = PalisadeProcess(
            fresh_database_url,
            simulator.url,
            tmp_path,
            env={
                "PALISADE_START_LEASE_SECONDS": LEASE_SECONDS,
                "PALISADE_POOL_TICK_SECONDS": "0.1",
            },
        )
        with service.run(PALISADE_CRASH_AT="pool.pal_created_not_recorded") as doomed:
            body = {"id": "acme", "name": "Acme", "profiles": {"voices": PROFILE}}
            created = admin(service.url, "POST", "/tenants", json=body)
            assert created.status_code == 201, created.text
            # The refill sends the create, which succeeds, then the process dies.
            assert doomed.process.wait(timeout=30) == -signal.SIGKILL
        [made] = pool_pals(simulator.url)

        with service.run():
            key = admin(service.url, "POST", "/tenants/acme/api-keys", json={}).json()["key"]
            headers = {"Authorization": f"Bearer {key}"}

            # Once the dead process's lease runs out, its row is resolved by lookup.
            until_sync(
                lambda: ready_in_pool(service.url) == 1,
                within=30,
                interval=0.25,
                message="the PAL pooled",
            )
            # Found, not made again: the pool is full with the PAL made before the kill.
            assert [p["pal_id"] for p in pool_pals(simulator.url)] == [made["pal_id"]]
            session = httpx.post(f"{service.url}/sessions", json={}, headers=headers, timeout=30)
            assert session.status_code == 201, session.text
            assert session.json()["pal_id"] == made["pal_id"]


def ready_in_pool(url: str) -> float:
    text = httpx.get(f"{url}/metrics", headers=METRICS_HEADERS, timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "palisade_warm_pool_pals" and sample.labels == {
                "tenant": "acme",
                "profile": "voices",
                "state": "ready",
            }:
                return sample.value
    return 0.0
