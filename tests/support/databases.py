"""Test databases on a real PostgreSQL server: ``TEST_DATABASE_URL`` or an embedded one."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.db import migrations
from app.db.engine import create_engine


def with_database(server_url: str, name: str) -> str:
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def _admin(server_url: str, statement: str) -> None:
    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def create_database(server_url: str, name: str, template: str | None = None) -> str:
    clause = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
    await _admin(server_url, f'CREATE DATABASE "{name}"{clause}')
    return with_database(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def create_migrated_database(server_url: str, name: str) -> str:
    url = await create_database(server_url, name)
    engine = create_engine(url)
    try:
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()
    return url


async def backend_pid(engine: AsyncEngine) -> int:
    """The server process behind the connection ``engine``'s pool hands out next."""
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def kill_backend(database_url: str, pid: int) -> None:
    """As a restarted server would: the pooled connection's backend goes away."""
    killer = create_async_engine(database_url, poolclass=NullPool)
    async with killer.connect() as connection:
        await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await killer.dispose()
