"""How long each operator console page takes on a database with a long history, and which
indexes its queries use:

    .venv/bin/python -m bench.console [--database-url URL] [--sessions 100000]

Fills a fresh, migrated database with ``--sessions`` sessions spread over ``--tenants``
tenants (terminal ones over the past days, with their event logs; live ones; a cleanup
backlog; open and unconfirmed shutdown claims; a month of sweep records; a warm pool),
then serves Palisade in this process (no background work) and, signed in to the console
as a browser is, requests each page ``--rounds`` times after a warm-up. A page's time
runs from the request entering the ASGI app to its last byte: server time, without a
network.

Each page's SQL is captured once and run again under ``EXPLAIN (ANALYZE, BUFFERS)``; the
report names the indexes each page reads and any sequential scan of ``session`` or
``session_event``. With ``--sessions`` at 50,000 or more, the command exits 1 when a page's
p95 exceeds ``--budget-ms`` or a query scans one of those tables whole; below that the
planner rightly prefers scanning a small table, and the report only says so.
docs/benchmarks.md and docs/console.md quote it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import quantiles
from typing import Any

import httpx
from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.migrations import upgrade
from app.db.models import SweepRun
from app.domain.sessions.cursors import encode_session_cursor
from app.main import create_app
from app.settings import DEV_ADMIN_TOKEN, Mode, Settings
from app.tavus.models import PalCreate
from bench import rows
from bench.database import fresh_database
from tavus_simulator import SimulatorConfig
from tests.support.console import HTML, sign_in
from tests.support.stack import start_simulator

# A session list of every tenant ends with the sessions written first; its deep pages and
# rare filters are the worst cases of keyset paging.
BIG_TABLES = frozenset({"session", "session_event"})
STRICT_FROM_SESSIONS = 50_000
WARM_UP = 3
PAL_TEMPLATE = {
    "pal_name": "Coach",
    "default_face_id": "r90bbd427f71",
    "system_prompt": "You are a calm coach.",
    "layers": {"llm": {"model": "custom", "api_key": "sk-bench"}},
}


@dataclass
class Page:
    name: str
    path: str
    times_ms: list[float] = field(default_factory=list)
    statements: list[tuple[str, Any]] = field(default_factory=list)
    indexes: set[str] = field(default_factory=set)
    seq_scans: set[str] = field(default_factory=set)
    sql_ms: float = 0.0

    def percentile(self, which: int) -> float:
        if len(self.times_ms) < 2:
            return self.times_ms[0]
        return quantiles(self.times_ms, n=100, method="inclusive")[which - 1]


# --- the data ----------------------------------------------------------------------------------


async def create_tenants(client: httpx.AsyncClient, count: int, pal_id: str) -> list[str]:
    admin = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
    ids = [f"tenant-{i}" for i in range(count)]
    for index, tenant_id in enumerate(ids):
        profiles: dict[str, Any] = {
            "coach": {"strategy": "reuse", "pal_id": pal_id},
            "voices": {"strategy": "ephemeral", "pal_template": PAL_TEMPLATE},
        }
        if index == 0:
            profiles["voices"]["warm_pool"] = {"size": 5, "ttl_seconds": 600}
        created = await client.post(
            "/tenants",
            json={
                "id": tenant_id,
                "name": f"Tenant {index}",
                "max_concurrent_sessions": 1000,
                "profiles": profiles,
                "default_profile": "coach",
            },
            headers=admin,
        )
        assert created.status_code == 201, created.text
    return ids


async def fill(
    conn: AsyncConnection, tenants: Sequence[str], sessions: int, pal_id: str
) -> dict[str, int]:
    live_per_tenant = 200
    backlog = max(sessions // 200, 10)
    history = max(sessions - live_per_tenant * len(tenants) - backlog, len(tenants))
    for tenant in tenants:
        await rows.insert_history(
            conn,
            tenant_id=tenant,
            rows=history // len(tenants),
            reuse_profile="coach",
            ephemeral_profile="voices",
            pal_id=pal_id,
        )
        await rows.insert_live(
            conn,
            tenant_id=tenant,
            profile="coach",
            pal_id=pal_id,
            rows=live_per_tenant - 5,
            state="active",
        )
        await rows.insert_live(
            conn, tenant_id=tenant, profile="coach", pal_id=pal_id, rows=5, state="ending"
        )
    ids = [str(uuid.uuid4()) for _ in range(backlog)]
    await rows.insert_cleanup_backlog(
        conn,
        tenant_id=tenants[-1],
        profile="voices",
        session_ids=ids,
        pal_ids=[f"p{i:011x}" for i in range(backlog)],
        pal_names=[f"Coach (palisade {i})" for i in ids],
    )
    events = await rows.insert_events(conn)
    # Open claims, and the claims Tavus contradicted over the last day.
    await conn.execute(
        text(
            "UPDATE session SET shutdown_claimed_at = now() WHERE id IN "
            "(SELECT id FROM session WHERE state = 'active' LIMIT 10)"
        )
    )
    await conn.execute(
        text(
            "INSERT INTO session_event (session_id, kind, type, payload, created_at) "
            "SELECT id, 'tavus', 'shutdown.unconfirmed', '{\"tavus_status\": \"active\"}', "
            "now() - make_interval(mins => (row_number() OVER ())::int * 20) "
            "FROM session WHERE state = 'active' LIMIT 60"
        )
    )
    # A month of sweeps, one every ten minutes.
    now = datetime.now(UTC)
    await conn.execute(
        insert(SweepRun),
        [
            {
                "started_at": now - timedelta(minutes=10 * i),
                "finished_at": now - timedelta(minutes=10 * i) + timedelta(seconds=2),
                "accounts": len(tenants),
                "pals_seen": 400,
                "conversations_seen": 200,
                "removed": 0,
                "failed": 0,
                "actions": [],
                "errors": [],
            }
            for i in range(30 * 24 * 6)
        ],
    )
    for table in ("session", "session_event", "sweep_run"):
        await conn.execute(text(f"ANALYZE {table}"))
    total = await conn.execute(text("SELECT count(*) FROM session"))
    return {"sessions": int(total.scalar_one()), "events": events, "backlog": backlog}


async def probe_ids(conn: AsyncConnection) -> dict[str, str]:
    """A session with its log, a reference to find, and a cursor deep in the history."""
    session = await conn.execute(
        text(
            "SELECT id, external_ref FROM session WHERE state = 'ended' ORDER BY created_at LIMIT 1"
        )
    )
    oldest_id, external_ref = session.one()
    deep = await conn.execute(
        text("SELECT created_at, id FROM session ORDER BY created_at, id OFFSET 100 LIMIT 1")
    )
    created_at, deep_id = deep.one()
    return {
        "session": str(oldest_id),
        "external_ref": str(external_ref),
        "deep_cursor": encode_session_cursor(created_at, deep_id),
    }


def pages(tenants: Sequence[str], ids: dict[str, str]) -> list[Page]:
    tenant = tenants[0]
    deep = ids["deep_cursor"]
    return [
        Page("overview", "/console"),
        Page("sessions", "/console/sessions"),
        Page("sessions, one tenant", f"/console/sessions?tenant={tenant}"),
        Page("sessions, failed", "/console/sessions?status=failed"),
        Page("sessions, creating (none)", "/console/sessions?status=creating"),
        Page("sessions, active of a tenant", f"/console/sessions?status=active&tenant={tenant}"),
        Page("sessions, ephemeral", "/console/sessions?strategy=ephemeral"),
        # No failed session is ephemeral here: the whole history is read to find none.
        Page(
            "sessions, failed ephemeral (none)",
            "/console/sessions?status=failed&strategy=ephemeral",
        ),
        Page("sessions, by external_ref", f"/console/sessions?external_ref={ids['external_ref']}"),
        Page("sessions, deepest page", f"/console/sessions?cursor={deep}"),
        Page("sessions, deepest failed page", f"/console/sessions?status=failed&cursor={deep}"),
        Page("session", f"/console/sessions/{ids['session']}"),
        Page("cleanup", "/console/cleanup"),
        Page("deliveries", "/console/deliveries"),
    ]


# --- measuring ---------------------------------------------------------------------------------


@contextmanager
def collector_pauses(into: list[float]) -> Iterator[None]:
    """The wall time of each garbage collection of the oldest generation meanwhile: a
    pause any request of the process may fall into, console or not."""
    started: list[float] = []

    def observe(phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            into.append((time.perf_counter() - started[0]) * 1000)

    gc.callbacks.append(observe)
    try:
        yield
    finally:
        gc.callbacks.remove(observe)


@contextmanager
def captured(engine: AsyncEngine, into: list[tuple[str, Any]]) -> Iterator[None]:
    def record(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        into.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


def walk(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from walk(child)


async def explain(engine: AsyncEngine, page: Page) -> None:
    async with engine.connect() as conn:
        for statement, parameters in page.statements:
            if not re.match(r"\s*(SELECT|WITH)\b", statement, re.IGNORECASE):
                continue
            result = await conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters
            )
            raw = result.scalar_one()
            [document] = json.loads(raw) if isinstance(raw, str) else raw
            read(document, page)
        await conn.rollback()


def read(document: dict[str, Any], page: Page) -> None:
    """Add what one statement's ``EXPLAIN (ANALYZE, FORMAT JSON)`` says to ``page``."""
    page.sql_ms += float(document["Execution Time"])
    for node in walk(document["Plan"]):
        if "Index Name" in node:
            page.indexes.add(node["Index Name"])
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in BIG_TABLES:
            page.seq_scans.add(node["Relation Name"])


def failures(measured: Sequence[Page], budget_ms: float, sessions: int) -> list[str]:
    """The pages over budget or scanning a big table, at a size where that matters."""
    if sessions < STRICT_FROM_SESSIONS:
        return []
    return [p.name for p in measured if p.percentile(95) > budget_ms or p.seq_scans]


async def measure(
    url: str, sessions: int, tenant_count: int, rounds: int
) -> tuple[dict[str, int], list[Page], list[float]]:
    # Tenants are created through the admin API, which checks their persistent PAL on Tavus.
    simulator = await start_simulator(SimulatorConfig(replica_join_delay_s=None))
    try:
        return await _measure(url, simulator.url, sessions, tenant_count, rounds)
    finally:
        await simulator.served.stop()


async def _measure(
    url: str, tavus_url: str, sessions: int, tenant_count: int, rounds: int
) -> tuple[dict[str, int], list[Page], list[float]]:
    settings = Settings.model_validate(
        {
            "DATABASE_URL": url,
            "PALISADE_MODE": Mode.DEV,
            "PALISADE_RECONCILER": False,
            "TAVUS_BASE_URL": tavus_url,
        }
    )
    api = create_app(settings)
    async with api.router.lifespan_context(api):
        runtime = api.state.runtime
        await upgrade(runtime.engine)
        pal = await runtime.tavus.create_pal(
            PalCreate(default_face_id="r90bbd427f71", pal_name="Persistent", system_prompt="hi")
        )
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://console.bench"
        ) as client:
            tenants = await create_tenants(client, tenant_count, pal.pal_id)
            async with runtime.engine.connect() as conn:
                filled = await fill(conn, tenants, sessions, pal.pal_id)
                ids = await probe_ids(conn)
                await conn.commit()
            await sign_in(client)
            measured = pages(tenants, ids)
            pauses: list[float] = []
            for page in measured:
                with captured(runtime.engine, page.statements):
                    first = await client.get(page.path, headers=HTML)
                assert first.status_code == 200, (page.path, first.status_code, first.text[:500])
                for _ in range(WARM_UP):
                    await client.get(page.path, headers=HTML)
                with collector_pauses(pauses):
                    for _ in range(rounds):
                        started = time.perf_counter()
                        response = await client.get(page.path, headers=HTML)
                        page.times_ms.append((time.perf_counter() - started) * 1000)
                        assert response.status_code == 200
                await explain(runtime.engine, page)
    return filled, measured, pauses


def report(
    filled: dict[str, int],
    measured: list[Page],
    pauses: list[float],
    budget_ms: float,
    where: str,
) -> str:
    lines = [
        f"{filled['sessions']:,} sessions, {filled['events']:,} events, cleanup backlog "
        f"{filled['backlog']:,}; PostgreSQL {where}",
        "",
        "| page | p50 | p95 | max | SQL (EXPLAIN ANALYZE) | statements | indexes | seq scan of |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for page in measured:
        indexes = ", ".join(sorted(page.indexes)) or "-"
        scans = ", ".join(sorted(page.seq_scans)) or "-"
        lines.append(
            f"| {page.name} | {page.percentile(50):.1f} ms | {page.percentile(95):.1f} ms | "
            f"{max(page.times_ms):.1f} ms | {page.sql_ms:.1f} ms | {len(page.statements)} | "
            f"{indexes} | {scans} |"
        )
    slowest = max(measured, key=lambda p: p.percentile(95))
    if pauses:
        lines += [
            "",
            f"full garbage collections while timing: {len(pauses)}, longest "
            f"{max(pauses):.0f} ms (a max above the p95 is usually one of them)",
        ]
    lines += [
        "",
        f"slowest p95: {slowest.name}, {slowest.percentile(95):.1f} ms (budget {budget_ms:.0f} ms)",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__)
    parser.add_argument("--database-url")
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--budget-ms", type=float, default=200.0)
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="palisade-console-") as tmp,
        fresh_database(args.database_url, Path(tmp)) as database,
    ):
        filled, measured, pauses = asyncio.run(
            measure(database.url, args.sessions, args.tenants, args.rounds)
        )
        where = f"{database.server_version} ({database.where})"
    sys.stdout.write(report(filled, measured, pauses, args.budget_ms, where))
    failed = failures(measured, args.budget_ms, args.sessions)
    if failed:
        sys.stdout.write(f"over budget or scanning a big table: {', '.join(failed)}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
