"""`palisade worker` as a dedicated pod runs it: background work, probes and metrics only."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import databases
from tests.support.processes import clean_env, free_port, palisade, running, wait_ready
from tests.support.wait import until_sync as until

pytestmark = pytest.mark.e2e


def last_reconciler_cycle(base: str) -> float:
    scrape = httpx.get(f"{base}/metrics", timeout=10)
    scrape.raise_for_status()
    for family in text_string_to_metric_families(scrape.text):
        for sample in family.samples:
            if sample.name == "palisade_reconciler_last_success_timestamp_seconds":
                return sample.value
    return 0.0


@pytest.fixture
def migrated_database(postgres_server_url: str) -> Iterator[str]:
    name = databases.unique_name("palisade_worker")
    url = asyncio.run(databases.create_migrated_database(postgres_server_url, name))
    try:
        yield url
    finally:
        asyncio.run(databases.drop_database(postgres_server_url, name))


def test_a_worker_serves_probes_and_metrics_but_no_api_and_stops_cleanly(
    tmp_path: Path, migrated_database: str
) -> None:
    port = free_port()
    env = clean_env(
        {
            "DATABASE_URL": migrated_database,
            "TAVUS_API_KEY": "tk",
            "TAVUS_BASE_URL": f"http://127.0.0.1:{free_port()}",
            "PALISADE_MODE": "dev",
            # What the API pods may be told; a worker runs the reconciler regardless.
            "PALISADE_RECONCILER": "false",
        }
    )
    log = tmp_path / "worker.log"
    base = f"http://127.0.0.1:{port}"
    with running(palisade("worker", "--port", str(port)), env, tmp_path, log) as process:
        wait_ready(f"{base}/readyz", process, log)
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        # The reconciler runs, and the dashboard can see it cycle.
        until(lambda: last_reconciler_cycle(base) > 0, within=30, message="a reconciler cycle")
        assert httpx.get(f"{base}/sessions", timeout=5).status_code == 404

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    assert "claims released" in log.read_text()
