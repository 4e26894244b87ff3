"""Tenant webhooks under a burst: ``--sessions`` sessions end at once and a receiver answers
each delivery in ``--receiver-ms``; how long until every ``session.ended`` is delivered.

Processes as in the benchmark suite (``bench/stack.py``): the Tavus simulator, N
``palisade serve`` processes in production mode on a fresh database, a receiver process
(``tests/support/receiver.py``) for the tenant's one endpoint, and this script. Each round
inserts ``--sessions`` active sessions, then ends them all with one ``UPDATE`` (what as
many moves would write, in one commit: the trigger queues every event and delivery in
it), and reads, on the database's clock, from that commit to the last delivery recorded.

Beside it, interleaved round by round, the floor: the same number of POSTs of the same
body to the same receiver from a bare httpx client, with the concurrency the senders have
together (``PALISADE_WEBHOOK_ENDPOINT_CONCURRENCY`` per process, one endpoint). The ratio
is what the outbox, signing and bookkeeping cost over sending alone.

    .venv/bin/python -m bench.webhooks
    .venv/bin/python -m bench.webhooks --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from bench import machine
from bench.database import fresh_database
from bench.monitor import ProcessMonitor
from bench.report import progress, table
from bench.stack import PROFILE_NAMES, TENANT_ID, Stack, running_stack
from tests.support.receiver import receiver_process

# The default of PALISADE_WEBHOOK_ENDPOINT_CONCURRENCY, which the run does not change.
ENDPOINT_CONCURRENCY = 10

_INSERT = """
INSERT INTO session (id, tenant_id, profile, state, strategy, strategy_reason, cleanup,
                     pal_id, conversation_id, conversation_url, request, resolved,
                     active_at)
SELECT s.id::uuid, :tenant, :profile, 'active', 'reuse', 'written by the benchmark',
       'not_needed', :pal_id, 'c' || substr(md5(s.id), 1, 15),
       'https://tavus.daily.co/c' || substr(md5(s.id), 1, 15), '{}'::jsonb, '{}'::jsonb, now()
FROM unnest(CAST(:ids AS text[])) AS s(id)
"""
_END = """
UPDATE session SET state = 'ended', ended_at = now(), end_reason = 'ended_by_client'
WHERE id = ANY(CAST(:ids AS uuid[]))
"""
_DELIVERED = """
SELECT count(*) FILTER (WHERE d.status = 'delivered'), max(d.updated_at)
FROM webhook_delivery d WHERE d.session_id = ANY(CAST(:ids AS uuid[]))
"""


def end_at_once(stack: Stack, ids: list[str]) -> datetime:
    """Insert the sessions live, then end them in one commit; the commit's time."""

    async def work(conn: AsyncConnection) -> datetime:
        parameters = {"ids": ids}
        await conn.execute(
            text(_INSERT),
            {
                **parameters,
                "tenant": TENANT_ID,
                "profile": PROFILE_NAMES["reuse"],
                "pal_id": stack.persistent_pal_id,
            },
        )
        await conn.commit()
        await conn.execute(text(_END), parameters)
        await conn.commit()
        ended: datetime = (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()
        return ended

    return stack.sql(work)


def wait_delivered(stack: Stack, ids: list[str], within_s: float = 600) -> datetime:
    """When the last of the sessions' deliveries was recorded delivered."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:

        async def read(conn: AsyncConnection) -> tuple[int, datetime | None]:
            row = (await conn.execute(text(_DELIVERED), {"ids": ids})).one()
            return int(row[0]), row[1]

        delivered, last = stack.sql(read)
        if delivered == len(ids) and last is not None:
            return last
        time.sleep(0.05)
    raise RuntimeError(f"not every delivery was delivered within {within_s:.0f} s")


async def floor(url: str, body: bytes, requests: int, concurrency: int) -> float:
    """Seconds for a bare client to POST ``requests`` bodies, ``concurrency`` at a time."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one(n: int) -> None:
            async with gate:
                headers = {"webhook-id": f"floor-{uuid.uuid4().hex}-{n}"}
                (await client.post(url, content=body, headers=headers)).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(requests)))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL server to create bench_<hex> on")
    parser.add_argument("--sessions", type=int, default=1000, help="sessions ending at once")
    parser.add_argument("--receiver-ms", type=float, default=50.0, help="receiver's answer time")
    parser.add_argument("--processes", default="1,2", help="Palisade process counts to run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per process count")
    args = parser.parse_args()
    command = shlex.join([".venv/bin/python", "-m", "bench.webhooks", *sys.argv[1:]])
    host = machine.describe()
    results: list[tuple[int, list[float], list[float]]] = []
    where = ""
    for processes in [int(p) for p in args.processes.split(",") if p]:
        with (
            tempfile.TemporaryDirectory(prefix="palisade-bench-") as tmp,
            ProcessMonitor() as monitor,
            fresh_database(args.database_url, Path(tmp)) as database,
            running_stack(
                database, processes=processes, sim_latency_ms=0, workdir=Path(tmp), monitor=monitor
            ) as stack,
            receiver_process(Path(tmp), "--delay-ms", str(args.receiver_ms)) as receiver,
        ):
            where = f"PostgreSQL {database.server_version} ({database.where})"
            admin = {"Authorization": f"Bearer {stack.env['ADMIN_TOKEN']}"}
            created = httpx.post(
                f"{stack.palisade_urls[0]}/tenants/{TENANT_ID}/webhook-endpoints",
                headers=admin,
                json={
                    "url": f"{receiver.url}/hook",
                    "events": ["session.ended"],
                    "allow_http": True,
                    "allow_private": True,
                },
                timeout=30,
            )
            created.raise_for_status()
            palisade_s: list[float] = []
            floor_s: list[float] = []
            body = b""
            for number in range(1, args.rounds + 1):
                ids = [str(uuid.uuid4()) for _ in range(args.sessions)]
                ended = end_at_once(stack, ids)
                last = wait_delivered(stack, ids)
                palisade_s.append((last - ended).total_seconds())
                if not body:
                    body = receiver.requests_sync()[-1]["raw"]
                concurrency = ENDPOINT_CONCURRENCY * processes
                floor_s.append(
                    asyncio.run(floor(f"{receiver.url}/floor", body, args.sessions, concurrency))
                )
                progress(
                    f"{processes} process(es), round {number}: palisade {palisade_s[-1]:.2f} s, "
                    f"floor {floor_s[-1]:.2f} s"
                )
            results.append((processes, palisade_s, floor_s))

    lines = [
        f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Machine: {host.cores} cores, "
        f"{host.cpu_model}, {host.kernel}, {host.python}, {where}.",
        f"Command: `{command}`",
        f"{args.sessions} sessions end in one commit; the receiver answers in "
        f"{args.receiver_ms:.0f} ms; one endpoint, {ENDPOINT_CONCURRENCY} requests at a time "
        f"per process; medians of {args.rounds} rounds, floor interleaved.",
        "",
        *table(
            [
                "processes",
                "ended → all delivered",
                "deliveries/s",
                "floor (bare client, same concurrency)",
                "ratio",
            ],
            [
                (
                    str(processes),
                    f"{statistics.median(p):.2f} s",
                    f"{args.sessions / statistics.median(p):.0f}",
                    f"{statistics.median(f):.2f} s",
                    f"{statistics.median(p) / statistics.median(f):.2f}x",
                )
                for processes, p, f in results
            ],
        ),
    ]
    for line in lines:
        progress(line)


if __name__ == "__main__":
    main()
