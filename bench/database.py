"""The run's database: a fresh one on the PostgreSQL server given, or on an embedded one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app.db.embedded import EmbeddedPostgres
from app.settings import normalise_database_url
from tests.support import databases

T = TypeVar("T")


@dataclass(frozen=True)
class BenchDatabase:
    url: str
    server_version: str
    where: str  # which server, and how Palisade reaches it


@contextmanager
def fresh_database(server_url: str | None, workdir: Path) -> Iterator[BenchDatabase]:
    """A new, empty database, dropped afterwards (with the embedded server, if one ran)."""
    with ExitStack() as stack:
        if server_url is None:
            embedded = EmbeddedPostgres(workdir / "pgdata")
            embedded.start()
            stack.callback(embedded.stop)
            server = embedded.url("postgres")
            where = "embedded server, Unix socket"
        else:
            server = normalise_database_url(server_url)
            parsed = make_url(server)
            where = f"server at {parsed.host}:{parsed.port or 5432}, TCP"
        name = databases.unique_name("bench")
        url = asyncio.run(databases.create_database(server, name))
        stack.callback(lambda: asyncio.run(databases.drop_database(server, name)))
        version = with_connection(url, _server_version)
        yield BenchDatabase(url, version, where)


async def _server_version(conn: AsyncConnection) -> str:
    return str((await conn.execute(text("SHOW server_version"))).scalar_one())


def with_connection(url: str, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run ``work`` on one autocommit connection of its own (each statement commits)."""

    async def run() -> T:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    return asyncio.run(run())
