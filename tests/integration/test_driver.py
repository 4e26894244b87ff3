"""Statements sent by the driver itself (``app.db.driver``): the same SQL and parameter
conversions as SQLAlchemy, autocommit, the same error tree, and a pool that never hands
out a connection a failure may have broken."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import JSON, Integer, bindparam, column, exc, select, table, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.driver import Driver, DriverStatement
from app.db.engine import create_engine
from app.db.errors import is_database_unreachable
from tests.support.databases import backend_pid, kill_backend

_PROBE = table("driver_probe", column("id"), column("doc"))


@pytest.fixture
async def engine(fresh_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(fresh_database_url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE driver_probe (id uuid PRIMARY KEY, doc jsonb)"))
    yield engine
    await engine.dispose()


def _insert() -> Any:
    return text(
        "INSERT INTO driver_probe (id, doc) VALUES (:id, :doc) RETURNING id, doc"
    ).bindparams(bindparam("doc", type_=JSONB))


async def test_a_statement_runs_with_the_dialects_conversions_and_commits_by_itself(
    engine: AsyncEngine,
) -> None:
    driver = Driver(engine)
    session_id = uuid.uuid4()
    async with driver.connect() as conn:
        row = await conn.fetchrow(_insert(), {"id": session_id, "doc": {"a": [1, "b"]}})
    assert row is not None
    assert row["id"] == session_id
    assert row["doc"] == {"a": [1, "b"]}  # JSONB in as SQLAlchemy serialises it, out decoded
    # Another connection sees it: nothing was left in an open transaction.
    async with engine.connect() as other:
        count = await other.scalar(text("SELECT count(*) FROM driver_probe"))
    assert count == 1


async def test_literals_in_the_statement_are_sent_without_being_passed(
    engine: AsyncEngine,
) -> None:
    driver = Driver(engine)
    probe = select(bindparam("n", type_=Integer) + 1).where(column("x") == "yes")
    query = probe.select_from(text("(SELECT 'yes'::text AS x) AS t"))
    async with driver.connect() as conn:
        row = await conn.fetchrow(query, {"n": 41})
    assert row is not None
    assert next(iter(row.values())) == 42


def test_a_missing_parameter_is_named(engine: AsyncEngine) -> None:
    compiled = DriverStatement.compile(_insert(), engine.dialect)
    with pytest.raises(ValueError, match="doc"):
        compiled.arguments({"id": uuid.uuid4()})


def test_each_statement_is_compiled_once(engine: AsyncEngine) -> None:
    driver = Driver(engine)
    statement = select(_PROBE.c.doc).where(_PROBE.c.id == bindparam("id"))
    assert driver.compiled(statement) is driver.compiled(statement)
    sql = driver.compiled(statement).sql
    assert "$1" in sql  # asyncpg's positional style, as SQLAlchemy renders it


def test_json_parameters_go_as_the_dialect_serialises_them(engine: AsyncEngine) -> None:
    statement = select(bindparam("doc", type_=JSON))
    compiled = DriverStatement.compile(statement, engine.dialect)
    assert compiled.arguments({"doc": {"k": 1}}) == ['{"k": 1}']


async def test_observers_see_each_statement_before_it_is_sent(engine: AsyncEngine) -> None:
    driver = Driver(engine)
    seen: list[str] = []
    driver.observers.append(seen.append)
    async with driver.connect() as conn:
        await conn.fetchrow(_insert(), {"id": uuid.uuid4(), "doc": {}})
    assert len(seen) == 1
    assert seen[0].startswith("INSERT INTO driver_probe")


async def test_a_server_error_is_a_dbapi_error_and_the_connection_stays_in_use(
    engine: AsyncEngine,
) -> None:
    driver = Driver(engine)
    session_id = uuid.uuid4()
    pid = await backend_pid(engine)
    async with driver.connect() as conn:
        await conn.fetchrow(_insert(), {"id": session_id, "doc": {}})
    with pytest.raises(exc.DBAPIError) as raised:
        async with driver.connect() as conn:
            await conn.fetchrow(_insert(), {"id": session_id, "doc": {}})  # duplicate key
    assert not is_database_unreachable(raised.value)  # a bug: 500, not 503
    assert not raised.value.connection_invalidated
    assert await backend_pid(engine) == pid  # the same connection, still pooled


async def test_a_lost_connection_is_unreachable_and_replaced(
    engine: AsyncEngine, fresh_database_url: str
) -> None:
    driver = Driver(engine)
    pid = await backend_pid(engine)
    await kill_backend(fresh_database_url, pid)
    # Returned a moment ago: handed out untested, as the start path gets it under load.
    with pytest.raises(exc.DBAPIError) as raised:
        async with driver.connect() as conn:
            await conn.fetchrow(_insert(), {"id": uuid.uuid4(), "doc": {}})
    assert is_database_unreachable(raised.value)  # answered 503 database_unavailable
    assert await backend_pid(engine) != pid


async def test_a_statement_cancelled_midway_does_not_return_its_connection(
    engine: AsyncEngine,
) -> None:
    driver = Driver(engine)
    pid = await backend_pid(engine)

    async def slow() -> None:
        async with driver.connect() as conn:
            await conn.fetchrow(text("SELECT pg_sleep(30)"), {})

    task = asyncio.create_task(slow())
    deadline = asyncio.get_running_loop().time() + 10
    async with engine.connect() as watcher:
        while True:
            running = await watcher.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'")
            )
            if running or asyncio.get_running_loop().time() > deadline:
                break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await backend_pid(engine) != pid
