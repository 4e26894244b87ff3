"""The connection pool hands out live connections: one that sat idle is tested first, in
one round trip; one returned a moment ago is not tested, and if it died, the statement
that finds out fails as "database unreachable" and the pool replaces it."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import event, exc, text

from app.db.engine import create_autocommit_sessionmaker, create_engine
from app.db.errors import is_database_unreachable
from tests.support.databases import backend_pid, kill_backend


async def test_a_connection_killed_while_idle_in_the_pool_is_replaced_without_an_error(
    database_url: str,
) -> None:
    # A zero bypass window: every checkout counts as coming after a long idle spell.
    engine = create_engine(database_url, liveness_bypass_seconds=0)
    opened: list[object] = []
    event.listen(engine.sync_engine.pool, "connect", lambda *_: opened.append(1))
    try:
        pid = await backend_pid(engine)
        await kill_backend(database_url, pid)
        assert len(opened) == 1
        async with engine.connect() as connection:
            new_pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert new_pid != pid
        assert len(opened) == 2
    finally:
        await engine.dispose()


async def test_a_connection_returned_a_moment_ago_is_not_tested(database_url: str) -> None:
    engine = create_engine(database_url, liveness_bypass_seconds=3600)
    try:
        pid = await backend_pid(engine)
        await kill_backend(database_url, pid)
        with pytest.raises(exc.DBAPIError) as raised:
            await backend_pid(engine)
        # Answered 503 database_unavailable by the API, as any connection loss is.
        assert is_database_unreachable(raised.value)
        # The pool discarded the dead connection: the next checkout opens a live one.
        assert await backend_pid(engine) != pid
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


SECRET_PARAMETER = "webhook-token-4e9b1d7c2a"


async def test_statement_parameters_are_never_logged_nor_put_in_errors(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine(database_url)
    # As an operator debugging with SQL echo would: every statement and its parameters.
    engine.echo = "debug"
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT length(:value)"), {"value": SECRET_PARAMETER})
            with pytest.raises(exc.DBAPIError) as failed:
                await connection.execute(
                    text("SELECT 1 / 0 WHERE :value <> ''"), {"value": SECRET_PARAMETER}
                )
    finally:
        await engine.dispose()
    assert "SELECT length($1)" in caplog.text  # the statements were logged
    assert SECRET_PARAMETER not in caplog.text
    assert SECRET_PARAMETER not in str(failed.value)
    assert "division by zero" in str(failed.value)
