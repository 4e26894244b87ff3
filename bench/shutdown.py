"""From Tavus's end of a conversation to the deletion of its ephemeral PAL.

What the cleanup guarantee costs in time: Tavus ends a conversation and posts
``system.shutdown``; Palisade confirms the end with Tavus, ends the session and deletes
the PAL. This starts ``--sessions`` ephemeral sessions one after the other, ends each
conversation on the simulator (which sends the webhook) and reads, on the simulator's
own clock (turned into real time by its time scale), how long after the conversation
ended its PAL's ``DELETE`` was answered.

Processes as in the benchmark suite (``bench/stack.py``): the Tavus simulator with a
fixed latency of ``--tavus-ms`` on every API call, one ``palisade serve`` in production
mode on a fresh database, and this script as the client.

    .venv/bin/python -m bench.shutdown
    .venv/bin/python -m bench.shutdown --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench import machine
from bench.database import fresh_database
from bench.monitor import ProcessMonitor
from bench.report import progress
from bench.stack import PROFILE_NAMES, running_stack

REASON = "participant_left_timeout reached"


def deleted_at(http: httpx.Client, pal_id: str, within_s: float = 30.0) -> datetime:
    """When the simulator answered the DELETE of ``pal_id``."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        calls = http.get("/_sim/calls", params={"operation": "pal.delete"}).json()["data"]
        for call in calls:
            if call["object_id"] == pal_id and call["status"] == 204:
                return _parse(call["at"])
        time.sleep(0.005)
    raise RuntimeError(f"PAL {pal_id} was not deleted within {within_s:.0f} s")


def _parse(stamp: str) -> datetime:
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL server to create bench_<hex> on")
    parser.add_argument("--tavus-ms", type=float, default=20.0, help="latency of every Tavus call")
    parser.add_argument("--sessions", type=int, default=40, help="sessions ended and measured")
    args = parser.parse_args()
    command = shlex.join([".venv/bin/python", "-m", "bench.shutdown", *sys.argv[1:]])
    host = machine.describe()
    delays_ms: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="palisade-bench-") as tmp,
        ProcessMonitor() as monitor,
        fresh_database(args.database_url, Path(tmp)) as database,
        running_stack(
            database,
            processes=1,
            sim_latency_ms=args.tavus_ms,
            workdir=Path(tmp),
            monitor=monitor,
        ) as stack,
        httpx.Client(base_url=stack.palisade_urls[0], timeout=60) as palisade,
        httpx.Client(base_url=stack.simulator_url, timeout=60) as simulator,
    ):
        headers = {"Authorization": f"Bearer {stack.api_key}"}
        # Simulated seconds per real second: the suite's simulator runs its clock slowly.
        scale = float(simulator.get("/_sim/state").json()["config"]["time_scale"])
        for i in range(args.sessions):
            started = palisade.post(
                "/sessions",
                json={"profile": PROFILE_NAMES["ephemeral"], "external_ref": f"end-{i}"},
                headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
            )
            if started.status_code != 201:
                raise RuntimeError(f"start failed: {started.status_code} {started.text[:300]}")
            session = started.json()
            ended = simulator.post(
                f"/_sim/conversations/{session['conversation_id']}/shutdown",
                json={"reason": REASON},
            )
            ended.raise_for_status()
            end = _parse(ended.json()["ended_at"])
            gone = deleted_at(simulator, session["pal_id"])
            delays_ms.append((gone - end).total_seconds() / scale * 1000.0)
        where = f"PostgreSQL {database.server_version} ({database.where})"

    quantiles = statistics.quantiles(delays_ms, n=10, method="inclusive")
    lines = [
        f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Machine: {host.cores} cores, "
        f"{host.cpu_model}, {host.kernel}, {host.python}, {where}.",
        f"Command: `{command}`",
        f"Every Tavus call takes {args.tavus_ms:.0f} ms; {len(delays_ms)} ephemeral sessions.",
        "",
        "| conversation ended on Tavus → its PAL deleted | p50 | p90 | max |",
        "|---|---|---|---|",
        f"| | {statistics.median(delays_ms):.1f} ms | {quantiles[8]:.1f} ms "
        f"| {max(delays_ms):.1f} ms |",
    ]
    for line in lines:
        progress(line)


if __name__ == "__main__":
    main()
