"""Exact admission across processes: 50 parallel starts through two `palisade serve`
processes against a tenant cap of 5 give exactly 5 sessions and 45 clean 429s."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import PalisadeProcess, make_tenant, sim_state, simulator_process

pytestmark = pytest.mark.e2e


async def _burst(urls: list[str], key: str, count: int) -> list[httpx.Response]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=60) as client:
        return await asyncio.gather(
            *(
                client.post(f"{urls[i % len(urls)]}/sessions", json={}, headers=headers)
                for i in range(count)
            )
        )


def test_fifty_parallel_starts_against_a_cap_of_five_across_two_processes(
    tmp_path: Path, fresh_database_url: str
) -> None:
    with simulator_process(tmp_path) as simulator, ExitStack() as running:
        replicas = [PalisadeProcess(fresh_database_url, simulator.url, tmp_path) for _ in range(2)]
        procs = [running.enter_context(r.run()) for r in replicas]
        key, _ = make_tenant(procs[0].url, simulator.url, cap=5)
        responses = asyncio.run(_burst([p.url for p in procs], key, 50))
        codes = [r.status_code for r in responses]
        assert codes.count(201) == 5, codes
        assert codes.count(429) == 45, codes
        for response in responses:
            if response.status_code == 429:
                assert response.json()["code"] == "tenant_concurrency_limit"
                assert int(response.headers["retry-after"]) > 0
        created_on = {r.json()["id"] for r in responses if r.status_code == 201}
        assert len(created_on) == 5
        active = [c for c in sim_state(simulator.url)["conversations"] if c["status"] == "active"]
        assert len(active) == 5
