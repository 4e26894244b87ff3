"""What each layer between Palisade and PostgreSQL costs, on one connection:

    .venv/bin/python -m bench.db_layers [--database-url URL] [--rounds 400] [--idle-ms 0]

Times the same work through the layers a session start goes through: a transaction of
two single-row inserts and one autocommit insert (the shape of admission and of each
recovery point), each through SQLAlchemy's async ORM session, a Core connection and the
asyncpg connection beneath them; the autocommit insert also as the start path sends it,
through ``app.db.raw``, and once more with its commit not waiting for the disk
(``synchronous_commit`` off, as the start's last write); plus a bare ``SELECT 1`` on
asyncpg. The variants take turns within each round, and a short pause between rounds
lets the processes go idle as they do between paced starts. With ``--idle-ms N``, every
variant is timed after N ms with nothing to do, the state the first statement of a
paced start meets. Prints the median of each, in ms. docs/benchmarks.md quotes it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from statistics import median

from sqlalchemy import text

from app.db.engine import create_autocommit_sessionmaker, create_engine, create_sessionmaker
from app.db.raw import RawConnections
from bench.database import fresh_database

_INSERT = "INSERT INTO probe (n) VALUES (1)"
PAUSE_S = 0.005


async def measure(url: str, rounds: int, idle_s: float = 0.0) -> dict[str, float]:
    engine = create_engine(url)
    transactions = create_sessionmaker(engine)
    autocommit = create_autocommit_sessionmaker(engine)
    autocommit_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    insert = text(_INSERT)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE probe (n int)"))

    async def orm_transaction() -> None:
        async with transactions.begin() as db:
            await db.execute(insert)
            await db.execute(insert)

    async def core_transaction() -> None:
        async with engine.begin() as conn:
            await conn.execute(insert)
            await conn.execute(insert)

    async def driver_transaction() -> None:
        async with engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            async with driver.transaction():
                await driver.execute(_INSERT)
                await driver.execute(_INSERT)

    async def orm_autocommit() -> None:
        async with autocommit() as db:
            await db.execute(insert)

    async def core_autocommit() -> None:
        async with autocommit_engine.connect() as conn:
            await conn.execute(insert)

    async def driver_autocommit() -> None:
        async with engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            await driver.execute(_INSERT)

    raw = RawConnections(engine)

    async def start_path_autocommit() -> None:
        async with raw.connect() as conn:
            await conn.fetchrow(_INSERT)

    # How the start's last write commits: without waiting for the disk.
    lazy_insert = (
        "WITH lazy AS (SELECT set_config('synchronous_commit', 'off', true)) "
        "INSERT INTO probe (n) SELECT 1 FROM lazy"
    )

    async def start_path_lazy_flush() -> None:
        async with raw.connect() as conn:
            await conn.fetchrow(lazy_insert)

    async def driver_select_1() -> None:
        async with engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            began = time.perf_counter()
            await driver.fetchval("SELECT 1")
            select_1.append(time.perf_counter() - began)

    select_1: list[float] = []
    variants: dict[str, Callable[[], Awaitable[None]]] = {
        "transaction of 2 inserts, ORM session": orm_transaction,
        "transaction of 2 inserts, Core connection": core_transaction,
        "transaction of 2 inserts, asyncpg": driver_transaction,
        "autocommit insert, ORM session": orm_autocommit,
        "autocommit insert, Core connection": core_autocommit,
        "autocommit insert, asyncpg": driver_autocommit,
        "autocommit insert, app.db.raw": start_path_autocommit,
        "autocommit insert, app.db.raw, commit not waiting for the disk": (start_path_lazy_flush),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for _ in range(rounds):
            for name, work in variants.items():
                if idle_s:
                    await asyncio.sleep(idle_s)
                began = time.perf_counter()
                await work()
                times[name].append(time.perf_counter() - began)
            await driver_select_1()
            await asyncio.sleep(PAUSE_S)
    finally:
        await engine.dispose()
    medians = {name: 1000 * median(values) for name, values in times.items()}
    medians["SELECT 1 round trip, asyncpg (no checkout)"] = 1000 * median(select_1)
    return medians


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.db_layers", description=__doc__)
    parser.add_argument("--database-url")
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument(
        "--idle-ms", type=float, default=0.0, help="pause before each timed variant"
    )
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="palisade-db-layers-") as tmp,
        fresh_database(args.database_url, Path(tmp)) as database,
    ):
        medians = asyncio.run(measure(database.url, args.rounds, args.idle_ms / 1000))
        where, version = database.where, database.server_version
    idle = f", {args.idle_ms:g} ms idle before each" if args.idle_ms else ""
    lines = [f"PostgreSQL {version} ({where}), {args.rounds} rounds{idle}", "", "| work | p50 |"]
    lines += ["|---|---|"] + [f"| {name} | {ms:.3f} ms |" for name, ms in medians.items()]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
