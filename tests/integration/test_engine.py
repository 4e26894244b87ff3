"""The connection pool hands out only live connections, at one round trip per checkout."""

from __future__ import annotations

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.db.engine import create_autocommit_sessionmaker, create_engine


async def test_a_connection_killed_while_pooled_is_replaced_without_an_error(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    opened: list[object] = []
    event.listen(engine.sync_engine.pool, "connect", lambda *_: opened.append(1))
    try:
        async with engine.connect() as connection:
            pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        # As a restarted server would: the pooled connection's backend goes away.
        killer = create_async_engine(database_url, poolclass=NullPool)
        async with killer.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await killer.dispose()
        assert len(opened) == 1
        async with engine.connect() as connection:
            new_pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert new_pid != pid
        assert len(opened) == 2
    finally:
        await engine.dispose()


async def test_a_live_pooled_connection_is_reused(database_url: str) -> None:
    engine = create_engine(database_url)
    opened: list[object] = []
    event.listen(engine.sync_engine.pool, "connect", lambda *_: opened.append(1))
    try:
        pids = set()
        for _ in range(3):
            async with engine.connect() as connection:
                pids.add((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        assert len(pids) == 1
        assert len(opened) == 1
    finally:
        await engine.dispose()


async def test_autocommit_sessions_commit_each_statement(database_url: str) -> None:
    engine = create_engine(database_url)
    autocommit = create_autocommit_sessionmaker(engine)
    try:
        async with autocommit() as db:
            await db.execute(text("CREATE TEMP TABLE t (x int)"))
            await db.execute(text("INSERT INTO t VALUES (1)"))
            # Nothing to roll back: the insert committed by itself.
            await db.rollback()
            assert (await db.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
    finally:
        await engine.dispose()
